package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const kubernetesDir = "kubernetes"

// object is what every Kubernetes API type decoded here has.
type object interface {
	GetName() string
	GetLabels() map[string]string
}

// newObject returns an empty value of the API type for apiVersion and kind,
// or an error for a kind this test does not know, so that a new manifest
// cannot slip in unchecked.
func newObject(apiVersion, kind string) (object, error) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, nil
	}
	return nil, fmt.Errorf("apiVersion %q kind %q: no Go type registered in newObject", apiVersion, kind)
}

var documentSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// decodeManifests decodes every YAML document in data strictly: an unknown
// or misspelled field, a duplicated key or an unknown kind is an error.
func decodeManifests(name string, data []byte) ([]object, error) {
	var objs []object
	for i, doc := range documentSeparator.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		obj, err := newObject(tm.APIVersion, tm.Kind)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i, err)
		}
		if err := strictUnmarshal([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("%s: document %d (%s): %w", name, i, tm.Kind, err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// strictUnmarshal decodes YAML into v as the API server's strict field
// validation does: field names match case-sensitively (encoding/json alone
// would take readOnlyRootFileSystem for readOnlyRootFilesystem), and unknown
// or duplicated fields are errors.
func strictUnmarshal(doc []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := sigsjson.UnmarshalStrict(js, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// manifests holds every object under deploy/kubernetes, by file.
type manifests struct {
	files   map[string][]object
	objects []object
}

func loadManifests(tb testing.TB) manifests {
	tb.Helper()
	m := manifests{files: map[string][]object{}}
	err := filepath.WalkDir(kubernetesDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
			return fmt.Errorf("%s: manifests must end in .yaml", path)
		}
		objs, err := decodeManifests(path, mustRead(tb, path))
		if err != nil {
			return err
		}
		if len(objs) == 0 {
			return fmt.Errorf("%s: no Kubernetes object", path)
		}
		m.files[path] = objs
		m.objects = append(m.objects, objs...)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// only returns the one object of type T, failing unless there is exactly one.
func only[T object](tb testing.TB, m manifests) T {
	tb.Helper()
	var found []T
	for _, o := range m.objects {
		if t, ok := o.(T); ok {
			found = append(found, t)
		}
	}
	if len(found) != 1 {
		var zero T
		tb.Fatalf("want exactly one %T in %s, have %d", zero, kubernetesDir, len(found))
	}
	return found[0]
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)
	wantFiles := []string{
		"kubernetes/deployment.yaml",
		"kubernetes/service.yaml",
		"kubernetes/pvc.yaml",
		"kubernetes/secret.yaml",
		"kubernetes/prometheus-operator/servicemonitor.yaml",
	}
	for _, f := range wantFiles {
		if _, ok := m.files[filepath.FromSlash(f)]; !ok {
			t.Errorf("%s: missing", f)
		}
	}
	for _, o := range m.objects {
		if errs := validation.IsDNS1123Subdomain(o.GetName()); len(errs) > 0 {
			t.Errorf("%T name %q: %v", o, o.GetName(), errs)
		}
		for k, v := range o.GetLabels() {
			if errs := validation.IsQualifiedName(k); len(errs) > 0 {
				t.Errorf("%T %s: label key %q: %v", o, o.GetName(), k, errs)
			}
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("%T %s: label %s value %q: %v", o, o.GetName(), k, v, errs)
			}
		}
	}
}

// TestDecodeRejects proves the decoder the other tests rely on is strict: a
// manifest with a mistake in it must not decode.
func TestDecodeRejects(t *testing.T) {
	deployment := mustRead(t, "kubernetes/deployment.yaml")
	tests := []struct {
		name      string
		data      []byte
		wantInErr string
	}{
		{
			name:      "misspelled field",
			data:      bytes.Replace(deployment, []byte("readOnlyRootFilesystem:"), []byte("readOnlyRootFileSystem:"), 1),
			wantInErr: "readOnlyRootFileSystem",
		},
		{
			name:      "field at the wrong level",
			data:      bytes.Replace(deployment, []byte("  replicas: 1\n"), []byte("  replicas: 1\n  terminationGracePeriodSeconds: 30\n"), 1),
			wantInErr: "terminationGracePeriodSeconds",
		},
		{
			name:      "duplicated key",
			data:      bytes.Replace(deployment, []byte("  replicas: 1\n"), []byte("  replicas: 1\n  replicas: 2\n"), 1),
			wantInErr: "replicas",
		},
		{
			name:      "unknown kind",
			data:      []byte("apiVersion: v1\nkind: Pod2\nmetadata:\n  name: x\n"),
			wantInErr: "Pod2",
		},
		{
			name:      "wrong type",
			data:      bytes.Replace(deployment, []byte("  replicas: 1\n"), []byte("  replicas: one\n"), 1),
			wantInErr: "replicas",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Equal(tt.data, deployment) {
				t.Fatal("the mutation did not apply: deployment.yaml changed shape, update this test")
			}
			_, err := decodeManifests(tt.name, tt.data)
			if err == nil {
				t.Fatal("decoded without error")
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not name %q", err, tt.wantInErr)
			}
		})
	}
}

func container(tb testing.TB, d *appsv1.Deployment) corev1.Container {
	tb.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		tb.Fatalf("deployment %s: want one container, have %d", d.Name, len(cs))
	}
	return cs[0]
}

func envValue(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func TestDeploymentRunsOneWriter(t *testing.T) {
	d := only[*appsv1.Deployment](t, loadManifests(t))
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas = %v, want 1 (the store has a single writer)", d.Spec.Replicas)
	}
	if got := d.Spec.Strategy.Type; got != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy = %q, want Recreate so two pods never share the volume", got)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		t.Fatalf("selector: %v", err)
	}
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %s does not match the pod template's labels %v", sel, d.Spec.Template.Labels)
	}
}

func TestDeploymentSecurity(t *testing.T) {
	d := only[*appsv1.Deployment](t, loadManifests(t))
	pod := d.Spec.Template.Spec
	c := container(t, d)

	psc := pod.SecurityContext
	if psc == nil {
		t.Fatal("pod securityContext missing")
	}
	csc := c.SecurityContext
	if csc == nil {
		t.Fatal("container securityContext missing")
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	isFalse := func(b *bool) bool { return b != nil && !*b }
	checks := []struct {
		name string
		ok   bool
	}{
		{"pod runAsNonRoot", isTrue(psc.RunAsNonRoot)},
		{"pod runAsUser is not root", psc.RunAsUser != nil && *psc.RunAsUser != 0},
		{"pod fsGroup set, so the volume is writable by the user", psc.FSGroup != nil && *psc.FSGroup != 0},
		{"pod seccompProfile RuntimeDefault", psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"container runAsNonRoot", isTrue(csc.RunAsNonRoot)},
		{"container runAsUser is the image's nonroot user 65532", csc.RunAsUser != nil && *csc.RunAsUser == 65532},
		{"container readOnlyRootFilesystem", isTrue(csc.ReadOnlyRootFilesystem)},
		{"container allowPrivilegeEscalation false", isFalse(csc.AllowPrivilegeEscalation)},
		{"container not privileged", csc.Privileged == nil || !*csc.Privileged},
		{"container drops ALL capabilities", csc.Capabilities != nil && len(csc.Capabilities.Drop) == 1 && csc.Capabilities.Drop[0] == "ALL"},
		{"container adds no capabilities", csc.Capabilities != nil && len(csc.Capabilities.Add) == 0},
		{"container seccompProfile RuntimeDefault", csc.SeccompProfile != nil && csc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"no service account token mounted", isFalse(pod.AutomountServiceAccountToken)},
		{"no service links in the BACKPROPD_ environment", isFalse(pod.EnableServiceLinks)},
		{"not on the host network", !pod.HostNetwork && !pod.HostPID && !pod.HostIPC},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !c.ok {
				t.Errorf("%s: not so in deployment.yaml", c.name)
			}
		})
	}
}

func TestDeploymentProbes(t *testing.T) {
	d := only[*appsv1.Deployment](t, loadManifests(t))
	c := container(t, d)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	tests := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"liveness", c.LivenessProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
		{"startup", c.StartupProbe, "/healthz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.probe == nil || tt.probe.HTTPGet == nil {
				t.Fatalf("%s probe: want an httpGet probe", tt.name)
			}
			g := tt.probe.HTTPGet
			if g.Path != tt.path {
				t.Errorf("%s probe path = %q, want %q", tt.name, g.Path, tt.path)
			}
			if port := resolvePort(g.Port, ports); port != 8080 {
				t.Errorf("%s probe port %s resolves to %d, want the server's 8080", tt.name, g.Port.String(), port)
			}
			if tt.probe.TimeoutSeconds < 1 || tt.probe.PeriodSeconds < tt.probe.TimeoutSeconds {
				t.Errorf("%s probe: timeout %ds, period %ds: want 1 <= timeout <= period", tt.name, tt.probe.TimeoutSeconds, tt.probe.PeriodSeconds)
			}
		})
	}
}

// resolvePort returns the container port a probe or Service port refers to,
// by number or by name, or 0.
func resolvePort(p intstr.IntOrString, named map[string]int32) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	return named[p.StrVal]
}

func TestDeploymentConfiguration(t *testing.T) {
	m := loadManifests(t)
	d := only[*appsv1.Deployment](t, m)
	c := container(t, d)
	pod := d.Spec.Template.Spec

	t.Run("grace period longer than the shutdown timeout", func(t *testing.T) {
		v, ok := envValue(c, "BACKPROPD_SHUTDOWN_TIMEOUT")
		if !ok {
			t.Fatal("BACKPROPD_SHUTDOWN_TIMEOUT not set: the grace period must be compared with an explicit value")
		}
		timeout, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("BACKPROPD_SHUTDOWN_TIMEOUT %q: %v", v, err)
		}
		if pod.TerminationGracePeriodSeconds == nil {
			t.Fatal("terminationGracePeriodSeconds not set (the default, 30 s, must be stated)")
		}
		grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
		// 5 s of headroom for the kubelet's own steps before SIGTERM reaches the process.
		if grace < timeout+5*time.Second {
			t.Errorf("terminationGracePeriodSeconds %v, shutdown timeout %v: want grace >= timeout + 5s", grace, timeout)
		}
	})

	t.Run("listens on the container port", func(t *testing.T) {
		addr, _ := envValue(c, "BACKPROPD_ADDR")
		if addr != ":8080" {
			t.Errorf("BACKPROPD_ADDR = %q, want \":8080\"", addr)
		}
		if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 8080 || c.Ports[0].Name != "http" {
			t.Errorf("ports = %+v, want one port named http on 8080", c.Ports)
		}
		ann := d.Spec.Template.Annotations
		want := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}
		for k, v := range want {
			if ann[k] != v {
				t.Errorf("pod annotation %s = %q, want %q", k, ann[k], v)
			}
		}
	})

	t.Run("workers follow the CPU limit", func(t *testing.T) {
		var from *corev1.ResourceFieldSelector
		for _, e := range c.Env {
			if e.Name == "BACKPROPD_WORKERS" && e.ValueFrom != nil {
				from = e.ValueFrom.ResourceFieldRef
			}
		}
		if from == nil || from.Resource != "limits.cpu" || from.Divisor.Cmp(resource.MustParse("1")) != 0 {
			t.Errorf("BACKPROPD_WORKERS: want valueFrom resourceFieldRef limits.cpu, divisor 1 (have %+v)", from)
		}
	})

	t.Run("resources", func(t *testing.T) {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, okReq := c.Resources.Requests[name]
			lim, okLim := c.Resources.Limits[name]
			if !okReq || !okLim {
				t.Errorf("%s: want both a request and a limit, have request %v limit %v", name, okReq, okLim)
				continue
			}
			if req.Sign() <= 0 || req.Cmp(lim) > 0 {
				t.Errorf("%s: request %s, limit %s: want 0 < request <= limit", name, req.String(), lim.String())
			}
		}
		if mem := c.Resources.Limits[corev1.ResourceMemory]; mem.Cmp(resource.MustParse("256Mi")) < 0 {
			t.Errorf("memory limit %s is too small to train on anything", mem.String())
		}
	})

	t.Run("volumes", func(t *testing.T) {
		dataDir, _ := envValue(c, "BACKPROPD_DATA_DIR")
		mounts := map[string]corev1.VolumeMount{}
		for _, vm := range c.VolumeMounts {
			mounts[vm.MountPath] = vm
		}
		volumes := map[string]corev1.Volume{}
		for _, v := range pod.Volumes {
			volumes[v.Name] = v
		}
		data, ok := mounts[dataDir]
		if dataDir != "/data" || !ok || data.ReadOnly {
			t.Fatalf("BACKPROPD_DATA_DIR %q: want /data with a writable mount, mounts %v", dataDir, mounts)
		}
		pvc := only[*corev1.PersistentVolumeClaim](t, m)
		if v := volumes[data.Name]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != pvc.Name {
			t.Errorf("/data volume %q: want the claim %s", data.Name, pvc.Name)
		}
		if len(pvc.Spec.AccessModes) != 1 || pvc.Spec.AccessModes[0] != corev1.ReadWriteOnce {
			t.Errorf("claim access modes %v, want [ReadWriteOnce]", pvc.Spec.AccessModes)
		}
		if _, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
			t.Error("claim requests no storage")
		}
		tmp, ok := mounts["/tmp"]
		if !ok || volumes[tmp.Name].EmptyDir == nil {
			t.Error("/tmp: want an emptyDir, since the root file system is read-only")
		}
	})

	t.Run("token from the Secret", func(t *testing.T) {
		if v, ok := envValue(c, "BACKPROPD_AUTH_TOKEN"); ok {
			t.Errorf("BACKPROPD_AUTH_TOKEN = %q in the manifest: the token belongs in the Secret", v)
		}
		file, ok := envValue(c, "BACKPROPD_AUTH_TOKEN_FILE")
		if !ok {
			t.Fatal("BACKPROPD_AUTH_TOKEN_FILE not set: the server would refuse to start on :8080")
		}
		secret := only[*corev1.Secret](t, m)
		if _, ok := secret.StringData["token"]; !ok {
			t.Fatalf("secret %s has no stringData.token", secret.Name)
		}
		var found bool
		for _, vm := range c.VolumeMounts {
			for _, v := range pod.Volumes {
				if v.Name != vm.Name || v.Secret == nil || v.Secret.SecretName != secret.Name {
					continue
				}
				if !vm.ReadOnly {
					t.Errorf("secret mount %s is writable", vm.MountPath)
				}
				if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o440 {
					t.Errorf("secret defaultMode %v, want 0440 (readable by fsGroup, not by others)", v.Secret.DefaultMode)
				}
				for _, item := range v.Secret.Items {
					if item.Key == "token" && filepath.Join(vm.MountPath, item.Path) == file {
						found = true
					}
				}
			}
		}
		if !found {
			t.Errorf("BACKPROPD_AUTH_TOKEN_FILE %s is not the Secret's token key mounted in the container", file)
		}
	})

	t.Run("placeholder token is marked for replacement", func(t *testing.T) {
		raw := string(mustRead(t, "kubernetes/secret.yaml"))
		if !strings.Contains(raw, "REPLACE") {
			t.Error("secret.yaml: the placeholder token must say REPLACE")
		}
	})
}

func TestServiceAndMonitor(t *testing.T) {
	m := loadManifests(t)
	d := only[*appsv1.Deployment](t, m)
	svc := only[*corev1.Service](t, m)
	sm := only[*monitoringv1.ServiceMonitor](t, m)
	c := container(t, d)
	named := map[string]int32{}
	for _, p := range c.Ports {
		named[p.Name] = p.ContainerPort
	}

	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
		t.Errorf("service selector %v does not select the pod labels %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	svcPorts := map[string]corev1.ServicePort{}
	for _, p := range svc.Spec.Ports {
		svcPorts[p.Name] = p
		if got := resolvePort(p.TargetPort, named); got != 8080 {
			t.Errorf("service port %s targets %s, which resolves to %d, want 8080", p.Name, p.TargetPort.String(), got)
		}
	}

	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatalf("servicemonitor selector: %v", err)
	}
	if sel.Empty() || !sel.Matches(labels.Set(svc.Labels)) {
		t.Errorf("servicemonitor selector %s does not select the service's labels %v", sel, svc.Labels)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("servicemonitor: want one endpoint, have %d", len(sm.Spec.Endpoints))
	}
	ep := sm.Spec.Endpoints[0]
	if _, ok := svcPorts[ep.Port]; !ok {
		t.Errorf("servicemonitor endpoint port %q is not a port name of the service", ep.Port)
	}
	if ep.Path != "/metrics" {
		t.Errorf("servicemonitor path = %q, want /metrics", ep.Path)
	}
	interval, err := time.ParseDuration(string(ep.Interval))
	if err != nil || interval < 5*time.Second || interval > 15*time.Second {
		t.Errorf("servicemonitor interval %q: want 5s to 15s (%v)", ep.Interval, err)
	}
	if timeout, err := time.ParseDuration(string(ep.ScrapeTimeout)); err != nil || timeout > interval {
		t.Errorf("servicemonitor scrapeTimeout %q: want a duration no longer than the interval (%v)", ep.ScrapeTimeout, err)
	}
	if port, err := strconv.Atoi(d.Spec.Template.Annotations["prometheus.io/port"]); err != nil || int32(port) != named[ep.Port] {
		t.Errorf("prometheus.io/port annotation and the ServiceMonitor's port %q disagree", ep.Port)
	}
}
