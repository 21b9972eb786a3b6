package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// launch is what a shipped manifest gives the server's container: its
// environment, its arguments, and the files mounted into it that the
// environment may point at (container path to content).
type launch struct {
	env   map[string]string
	args  []string
	files map[string][]byte
	// token is the bearer token the server must then require.
	token string
}

// composeTestToken stands in for the operator's BACKPROPD_AUTH_TOKEN, which
// docker-compose.yml demands with ${BACKPROPD_AUTH_TOKEN:?...}.
const composeTestToken = "compose-test-token-0123456789abcdef"

// imageTestToken is the token given to the bare image, as `docker run -e`
// or a Docker secret would.
const imageTestToken = "image-test-token-0123456789abcdef"

// TestShippedEnvironmentsStart builds the server and runs it with the
// environment each shipped manifest gives its container, read from the
// manifests as they stand: the Dockerfile's ENV (the base of every
// container, since compose and the Deployment run that image), the
// Deployment's env on top of it, and the compose service's environment on
// top of it. Only what cannot be used outside a container is changed:
//   - BACKPROPD_ADDR becomes 127.0.0.1:0, a loopback port the kernel picks;
//   - BACKPROPD_DATA_DIR becomes a temporary directory, and so does the
//     working directory;
//   - a file the container would find on a mounted Secret (the token file
//     under /run/secrets/...) is written, with the Secret's content, under
//     a temporary directory at the same relative path, and only the
//     variables naming it are rewritten to point there;
//   - values the platform fills in (valueFrom, compose's ${VAR}) are
//     computed as Kubernetes and compose would, from a test token and the
//     manifest's own resource limits.
//
// Each must start, answer 200 with the token and 401 without it, and exit 0
// on SIGTERM. The image's environment alone must make the server refuse
// to start, since it listens on every interface with no token.
func TestShippedEnvironmentsStart(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds and runs the server")
	}
	bin := buildServer(t)
	image := imageLaunch(t)

	tests := []struct {
		name string
		l    launch
	}{
		{"kubernetes/deployment.yaml", kubernetesLaunch(t, image)},
		{"docker-compose.yml", composeLaunch(t, image)},
		{"Dockerfile with BACKPROPD_AUTH_TOKEN", image.with(map[string]string{"BACKPROPD_AUTH_TOKEN": imageTestToken}, nil, imageTestToken)},
		// Where `docker run --secret` or a compose secret mounts it.
		{"Dockerfile with BACKPROPD_AUTH_TOKEN_FILE", image.with(
			map[string]string{"BACKPROPD_AUTH_TOKEN_FILE": "/run/secrets/backpropd-token"},
			map[string][]byte{"/run/secrets/backpropd-token": []byte(imageTestToken + "\n")}, imageTestToken)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkServes(t, bin, tt.l)
		})
	}

	t.Run("Dockerfile without a token refuses to start", func(t *testing.T) {
		if _, ok := image.env["BACKPROPD_AUTH_TOKEN"]; ok {
			t.Fatal("the image sets BACKPROPD_AUTH_TOKEN")
		}
		if _, ok := image.env["BACKPROPD_AUTH_TOKEN_FILE"]; ok {
			t.Fatal("the image sets BACKPROPD_AUTH_TOKEN_FILE")
		}
		// The environment exactly as the image gives it, address included:
		// a server that refuses never listens, and one that wrongly starts
		// is killed at once.
		cmd := exec.Command(bin, image.args...)
		cmd.Env = environ(image.env)
		cmd.Dir = t.TempDir()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("exit status 0 without a token, want a refusal:\n%s", out.String())
			}
			if !strings.Contains(out.String(), "--auth-token") {
				t.Errorf("the refusal does not name --auth-token:\n%s", out.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("still running after 20 s without a token, want a refusal:\n%s", out.String())
		}
	})
}

// with returns a copy of l with env and files added and token required.
func (l launch) with(env map[string]string, files map[string][]byte, token string) launch {
	out := launch{env: maps.Clone(l.env), args: slices.Clone(l.args), files: maps.Clone(l.files), token: token}
	if out.files == nil {
		out.files = map[string][]byte{}
	}
	maps.Copy(out.env, env)
	maps.Copy(out.files, files)
	return out
}

var (
	serverOnce sync.Once
	serverBin  string
	serverErr  error
)

// buildServer builds ./cmd/server of the parent module, once per test
// binary, the way the Dockerfile's static variant does; the configuration
// code is the same in both variants.
func buildServer(t *testing.T) string {
	t.Helper()
	goTool := requireProgram(t, "go")
	root := repoRoot(t)
	serverOnce.Do(func() {
		dir, err := os.MkdirTemp("", "backpropd-deploy-test-")
		if err != nil {
			serverErr = err
			return
		}
		serverBin = filepath.Join(dir, "backpropd")
		cmd := exec.Command(goTool, "build", "-trimpath", "-o", serverBin, "./cmd/server")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			serverErr = fmt.Errorf("go build ./cmd/server: %v\n%s", err, out)
		}
	})
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return serverBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if serverBin != "" {
		_ = os.RemoveAll(filepath.Dir(serverBin))
	}
	os.Exit(code)
}

// imageLaunch is what the Dockerfile's final stage gives a container: its
// ENV and its CMD, if any, as arguments to the ENTRYPOINT.
func imageLaunch(t *testing.T) launch {
	t.Helper()
	_, stages, err := parseDockerfile(mustRead(t, "../Dockerfile"))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	final := stages[len(stages)-1]
	env := envOf(final)
	for k, v := range env {
		if strings.Contains(v, "$") {
			t.Fatalf("Dockerfile: ENV %s=%s refers to a variable; this test does not expand them", k, v)
		}
	}
	var args []string
	if cmds := final.find("cmd"); len(cmds) > 0 {
		c := cmds[len(cmds)-1]
		if !c.json {
			t.Fatalf("Dockerfile line %d: CMD in shell form needs /bin/sh, which the image does not have", c.line)
		}
		args = c.args
	}
	return launch{env: env, args: args, files: map[string][]byte{}}
}

// plausibleNode is what the kubelet puts in place of a resource limit the
// container leaves unset (the node's allocatable resources), for a small
// node: 4 CPUs, 8 GiB of memory, 20 GiB of ephemeral storage.
var plausibleNode = corev1.ResourceList{
	corev1.ResourceCPU:              resource.MustParse("4"),
	corev1.ResourceMemory:           resource.MustParse("8Gi"),
	corev1.ResourceEphemeralStorage: resource.MustParse("20Gi"),
}

// plausiblePod holds the fieldRef values the kubelet fills in from the pod.
var plausiblePod = map[string]string{
	"metadata.name":      "backpropd-7d9f8c6b5-x2k4q",
	"metadata.namespace": "default",
	"metadata.uid":       "0b6f4a52-1c1e-4c4e-9a51-6f1d2f0e7a10",
	"spec.nodeName":      "node-1",
	"status.podIP":       "10.0.0.12",
	"status.hostIP":      "192.168.0.3",
}

// kubernetesLaunch is the Deployment's container on the image: the image's
// ENV with the container's env on top, valueFrom resolved as the kubelet
// resolves it, and the Secret volumes projected into files.
func kubernetesLaunch(t *testing.T, image launch) launch {
	t.Helper()
	m := loadManifests(t)
	d := only[*appsv1.Deployment](t, m)
	c := container(t, d)
	secrets := map[string]*corev1.Secret{}
	for _, o := range m.objects {
		if s, ok := o.(*corev1.Secret); ok {
			secrets[s.Name] = s
		}
	}
	secretData := func(s *corev1.Secret, key string) ([]byte, bool) {
		if v, ok := s.StringData[key]; ok {
			return []byte(v), true
		}
		v, ok := s.Data[key]
		return v, ok
	}

	if len(c.Command) > 0 {
		t.Fatalf("deployment.yaml: command %q replaces the image's ENTRYPOINT; teach this test what it runs", c.Command)
	}
	if len(c.EnvFrom) > 0 {
		t.Fatalf("deployment.yaml: envFrom %+v: this test resolves env only; teach it envFrom", c.EnvFrom)
	}
	l := image.with(nil, nil, "")
	if len(c.Args) > 0 {
		l.args = slices.Clone(c.Args)
	}
	for _, a := range l.args {
		if strings.Contains(a, "$(") {
			t.Fatalf("deployment.yaml: argument %q refers to a variable; this test does not expand $(VAR)", a)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			if strings.Contains(e.Value, "$(") {
				t.Fatalf("deployment.yaml: env %s=%q refers to a variable; this test does not expand $(VAR)", e.Name, e.Value)
			}
			l.env[e.Name] = e.Value
			continue
		}
		switch from := e.ValueFrom; {
		case from.ResourceFieldRef != nil:
			v, err := resourceFieldValue(from.ResourceFieldRef, c)
			if err != nil {
				t.Fatalf("deployment.yaml: env %s: %v", e.Name, err)
			}
			l.env[e.Name] = v
		case from.FieldRef != nil:
			v, ok := plausiblePod[from.FieldRef.FieldPath]
			if !ok {
				t.Fatalf("deployment.yaml: env %s: fieldRef %s has no plausible value in plausiblePod", e.Name, from.FieldRef.FieldPath)
			}
			l.env[e.Name] = v
		case from.SecretKeyRef != nil:
			s, ok := secrets[from.SecretKeyRef.Name]
			if !ok {
				t.Fatalf("deployment.yaml: env %s: no Secret %s in %s", e.Name, from.SecretKeyRef.Name, kubernetesDir)
			}
			v, ok := secretData(s, from.SecretKeyRef.Key)
			if !ok {
				t.Fatalf("deployment.yaml: env %s: Secret %s has no key %s", e.Name, s.Name, from.SecretKeyRef.Key)
			}
			l.env[e.Name] = string(v)
		default:
			t.Fatalf("deployment.yaml: env %s: valueFrom %+v: teach this test to resolve it", e.Name, from)
		}
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, vm := range c.VolumeMounts {
		v := volumes[vm.Name]
		if v.Secret == nil {
			continue
		}
		if vm.SubPath != "" {
			t.Fatalf("deployment.yaml: mount %s uses subPath; teach this test to project it", vm.MountPath)
		}
		s, ok := secrets[v.Secret.SecretName]
		if !ok {
			t.Fatalf("deployment.yaml: volume %s: no Secret %s in %s", v.Name, v.Secret.SecretName, kubernetesDir)
		}
		items := v.Secret.Items
		if len(items) == 0 {
			for _, k := range slices.Sorted(maps.Keys(s.StringData)) {
				items = append(items, corev1.KeyToPath{Key: k, Path: k})
			}
			for _, k := range slices.Sorted(maps.Keys(s.Data)) {
				items = append(items, corev1.KeyToPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			content, ok := secretData(s, it.Key)
			if !ok {
				t.Fatalf("deployment.yaml: volume %s: Secret %s has no key %s", v.Name, s.Name, it.Key)
			}
			// The kubelet writes the value's bytes as they are.
			l.files[filepath.Join(vm.MountPath, it.Path)] = content
		}
	}

	tok, ok := l.env["BACKPROPD_AUTH_TOKEN"]
	if file, isFile := l.env["BACKPROPD_AUTH_TOKEN_FILE"]; isFile {
		content, mounted := l.files[file]
		if !mounted {
			t.Fatalf("deployment.yaml: BACKPROPD_AUTH_TOKEN_FILE %s is no file of a mounted Secret", file)
		}
		tok, ok = strings.TrimSpace(string(content)), true
	}
	if !ok || tok == "" {
		t.Fatal("deployment.yaml gives the container no token")
	}
	l.token = tok
	return l
}

// resourceFieldValue is the value the kubelet gives a resourceFieldRef: the
// quantity divided by the divisor (default 1) and rounded up, CPU counted in
// millicores. It follows ExtractContainerResourceValue in Kubernetes'
// pkg/api/v1/resource/helpers.go; an unset limit is the node's allocatable
// amount, here plausibleNode.
func resourceFieldValue(fs *corev1.ResourceFieldSelector, c corev1.Container) (string, error) {
	if fs.ContainerName != "" && fs.ContainerName != c.Name {
		return "", fmt.Errorf("resourceFieldRef names container %s, not %s", fs.ContainerName, c.Name)
	}
	divisor := fs.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	kind, name, ok := strings.Cut(fs.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("resourceFieldRef %s: want limits.* or requests.*", fs.Resource)
	}
	q, ok := c.Resources.Limits[corev1.ResourceName(name)]
	if kind == "requests" {
		// An unset request defaults to the limit.
		if r, has := c.Resources.Requests[corev1.ResourceName(name)]; has {
			q, ok = r, true
		}
	}
	if !ok {
		q, ok = plausibleNode[corev1.ResourceName(name)]
	}
	if !ok {
		return "", fmt.Errorf("resourceFieldRef %s: neither the container nor plausibleNode sets it", fs.Resource)
	}
	if name == "cpu" {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}

// composeLaunch is the compose service backpropd on the image: the image's
// ENV with the service's environment on top, interpolated as compose does
// with BACKPROPD_AUTH_TOKEN set to composeTestToken and nothing else set.
func composeLaunch(t *testing.T, image launch) launch {
	t.Helper()
	var raw struct {
		Services map[string]map[string]any `json:"services"`
	}
	if err := yaml.Unmarshal(mustRead(t, composeFile), &raw); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	for _, key := range []string{"entrypoint", "env_file", "secrets", "configs"} {
		if _, ok := raw.Services["backpropd"][key]; ok {
			t.Fatalf("%s: service backpropd sets %s; teach this test what it gives the container", composeFile, key)
		}
	}
	s := loadCompose(t).Services["backpropd"]
	shell := map[string]string{"BACKPROPD_AUTH_TOKEN": composeTestToken}
	l := image.with(nil, nil, "")
	for k, v := range s.Environment {
		iv, err := interpolate(v, shell)
		if err != nil {
			t.Fatalf("%s: environment %s: %v", composeFile, k, err)
		}
		l.env[k] = iv
	}
	if len(s.Command) > 0 {
		l.args = nil
		for _, a := range s.Command {
			ia, err := interpolate(a, shell)
			if err != nil {
				t.Fatalf("%s: command %q: %v", composeFile, a, err)
			}
			l.args = append(l.args, ia)
		}
	}
	if _, ok := l.env["BACKPROPD_AUTH_TOKEN_FILE"]; ok {
		t.Fatalf("%s: BACKPROPD_AUTH_TOKEN_FILE with no file mounted for it", composeFile)
	}
	l.token = l.env["BACKPROPD_AUTH_TOKEN"]
	if l.token == "" {
		t.Fatalf("%s gives the container no token", composeFile)
	}
	return l
}

var interpolation = regexp.MustCompile(`\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))`)

// interpolate expands a compose value as the Compose Specification's
// interpolation does: $$ is a dollar sign; $VAR and ${VAR} are the variable
// or empty; ${VAR:-default} and ${VAR-default} the default when it is unset
// (or, with the colon, empty); ${VAR:?error} and ${VAR?error} an error; and
// ${VAR:+other} and ${VAR+other} the other value when it is set.
func interpolate(s string, shell map[string]string) (string, error) {
	var err error
	out := interpolation.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sub := interpolation.FindStringSubmatch(m)
		name, op, arg := sub[1], sub[2], sub[3]
		if name == "" {
			name = sub[4]
		}
		if strings.Contains(arg, "$") {
			err = fmt.Errorf("%s: nested interpolation is not handled by this test", m)
			return m
		}
		v, set := shell[name]
		present := set && (v != "" || !strings.HasPrefix(op, ":"))
		switch strings.TrimPrefix(op, ":") {
		case "-":
			if !present {
				return arg
			}
		case "?":
			if !present {
				err = fmt.Errorf("%s: compose refuses: %s", name, arg)
			}
		case "+":
			if present {
				return arg
			}
			return ""
		}
		return v
	})
	return out, err
}

// listening matches the server's start-up log line, JSON or text, and takes
// the address it listens on.
var listening = regexp.MustCompile(`backpropd listening.*?\baddr"?[=:]"?(127\.0\.0\.1:\d+)`)

// checkServes runs the server with l, adapted to the test as
// TestShippedEnvironmentsStart describes, and checks that it requires
// l.token and shuts down cleanly.
func checkServes(t *testing.T, bin string, l launch) {
	t.Helper()
	env := maps.Clone(l.env)
	env["BACKPROPD_ADDR"] = "127.0.0.1:0"
	if _, ok := env["BACKPROPD_DATA_DIR"]; ok {
		env["BACKPROPD_DATA_DIR"] = t.TempDir()
	}
	mounts := t.TempDir()
	for path, content := range l.files {
		local := filepath.Join(mounts, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(local, content, 0o400); err != nil {
			t.Fatal(err)
		}
		for k, v := range env {
			if v == path {
				env[k] = local
			}
		}
	}

	cmd := exec.Command(bin, l.args...)
	cmd.Env = environ(env)
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var log syncLog
	addr := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			log.add(lines.Text())
			if m := listening.FindStringSubmatch(lines.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		done <- cmd.Wait()
	}()
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill()
			<-done
		}
	}()

	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		exited = true
		t.Fatalf("exited before listening (%v); environment %s, log:\n%s", err, redacted(cmd.Env, l.token), log.String())
	// As long as the Deployment's startupProbe allows (30 × 2 s).
	case <-time.After(60 * time.Second):
		t.Fatalf("not listening after 60 s; log:\n%s", log.String())
	}

	for _, tc := range []struct {
		path, auth, desc string
		want             int
	}{
		{"/v1/datasets", "Bearer " + l.token, "with the manifest's token", http.StatusOK},
		{"/v1/datasets", "", "without a token", http.StatusUnauthorized},
		{"/v1/datasets", "Bearer not-" + l.token, "with a wrong token", http.StatusUnauthorized},
		{"/v2/health/live", "Bearer " + l.token, "with the manifest's token", http.StatusOK},
		{"/v2/health/live", "", "without a token", http.StatusUnauthorized},
		{"/healthz", "", "without a token", http.StatusOK},
	} {
		req, err := http.NewRequest(http.MethodGet, base+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("GET %s %s: %d, want %d", tc.path, tc.desc, res.StatusCode, tc.want)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	timeout := 15 * time.Second
	if v, ok := env["BACKPROPD_SHUTDOWN_TIMEOUT"]; ok {
		if timeout, err = time.ParseDuration(v); err != nil {
			t.Fatalf("BACKPROPD_SHUTDOWN_TIMEOUT %q: %v", v, err)
		}
	}
	select {
	case err := <-done:
		exited = true
		if err != nil {
			t.Errorf("after SIGTERM: %v, want exit status 0; log:\n%s", err, log.String())
		}
	// The shutdown timeout and 5 s for the process to wind down.
	case <-time.After(timeout + 5*time.Second):
		t.Errorf("still running %v after SIGTERM; log:\n%s", timeout+5*time.Second, log.String())
	}
	if strings.Contains(log.String(), l.token) {
		t.Error("the token appears in the log")
	}
}

// environ turns env into a process environment holding nothing else, as a
// container's holds only what the image and the manifest set.
func environ(env map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// redacted is env with the token replaced, for failure messages.
func redacted(env []string, token string) string {
	return strings.ReplaceAll(strings.Join(env, " "), token, "<token>")
}

// syncLog collects a server's log lines from the goroutine reading them.
type syncLog struct {
	mu    sync.Mutex
	lines []string
}

func (s *syncLog) add(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, line)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// TestInterpolate holds interpolate to the Compose Specification's
// interpolation rules, as docker-compose.yml relies on them.
func TestInterpolate(t *testing.T) {
	shell := map[string]string{"SET": "value", "EMPTY": ""}
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"plain", "plain", false},
		{"$$SET", "$SET", false},
		{"$SET and ${SET}", "value and value", false},
		{"${UNSET}", "", false},
		{"${UNSET:-dflt}", "dflt", false},
		{"${EMPTY:-dflt}", "dflt", false},
		{"${EMPTY-dflt}", "", false},
		{"${SET:-dflt}", "value", false},
		{"${SET:?must be set}", "value", false},
		{"${UNSET:?must be set}", "", true},
		{"${EMPTY:?must be set}", "", true},
		{"${EMPTY?must be set}", "", false},
		{"${SET:+other}", "other", false},
		{"${UNSET:+other}", "", false},
		{"${UNSET:-${SET}}", "", true},
	}
	for _, tt := range tests {
		got, err := interpolate(tt.in, shell)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("interpolate(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestResourceFieldValue holds resourceFieldValue to the kubelet's rounding
// (Kubernetes' convertResourceCPUToString and convertResourceMemoryToString:
// the quotient rounded up).
func TestResourceFieldValue(t *testing.T) {
	c := corev1.Container{Name: "backpropd", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")},
		Limits: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("1500m"),
			corev1.ResourceMemory: resource.MustParse("2Gi"),
		},
	}}
	tests := []struct {
		resource, divisor, want string
	}{
		{"limits.cpu", "1", "2"},     // 1.5 CPUs rounded up
		{"limits.cpu", "", "2"},      // divisor defaults to 1
		{"limits.cpu", "1m", "1500"}, // millicores
		{"requests.cpu", "1", "1"},   // 0.5 rounded up
		{"limits.memory", "1Mi", "2048"},
		{"requests.memory", "1Gi", "2"},           // no request: the limit
		{"limits.ephemeral-storage", "1Gi", "20"}, // no limit: plausibleNode
	}
	for _, tt := range tests {
		fs := &corev1.ResourceFieldSelector{Resource: tt.resource}
		if tt.divisor != "" {
			fs.Divisor = resource.MustParse(tt.divisor)
		}
		got, err := resourceFieldValue(fs, c)
		if err != nil || got != tt.want {
			t.Errorf("%s / %q = %q, %v; want %s", tt.resource, tt.divisor, got, err, tt.want)
		}
	}
}
