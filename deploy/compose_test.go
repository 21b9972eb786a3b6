package deploy

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const composeFile = "docker-compose.yml"

// composeService holds the fields of a compose service that the tests check;
// `docker-compose config` checks the file against the whole specification.
type composeService struct {
	Image           string            `json:"image"`
	Build           *composeBuild     `json:"build"`
	Command         []string          `json:"command"`
	Environment     map[string]string `json:"environment"`
	Ports           []string          `json:"ports"`
	Volumes         []string          `json:"volumes"`
	Tmpfs           []string          `json:"tmpfs"`
	ReadOnly        bool              `json:"read_only"`
	User            string            `json:"user"`
	CapDrop         []string          `json:"cap_drop"`
	SecurityOpt     []string          `json:"security_opt"`
	StopGracePeriod string            `json:"stop_grace_period"`
	DependsOn       []string          `json:"depends_on"`
}

type composeBuild struct {
	Context    string            `json:"context"`
	Dockerfile string            `json:"dockerfile"`
	Args       map[string]string `json:"args"`
}

type composeProject struct {
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
}

func loadCompose(tb testing.TB) composeProject {
	tb.Helper()
	var p composeProject
	if err := yaml.Unmarshal(mustRead(tb, composeFile), &p); err != nil {
		tb.Fatalf("%s: %v", composeFile, err)
	}
	for _, name := range []string{"backpropd", "prometheus", "grafana"} {
		if _, ok := p.Services[name]; !ok {
			tb.Fatalf("%s: no service %q", composeFile, name)
		}
	}
	return p
}

// composeCommand returns the argv prefix of a compose implementation:
// Debian's docker-compose, or the docker CLI's compose plugin.
func composeCommand(tb testing.TB) []string {
	tb.Helper()
	if path, err := exec.LookPath("docker-compose"); err == nil {
		return []string{path}
	}
	if path, err := exec.LookPath("docker"); err == nil {
		if exec.Command(path, "compose", "version").Run() == nil {
			return []string{path, "compose"}
		}
	}
	return []string{requireProgram(tb, "docker-compose")}
}

// environWithout returns the process environment less the named variables.
func environWithout(names ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			env = append(env, kv)
		}
	}
	return env
}

// TestComposeConfig has compose itself parse, interpolate and validate the
// file, and proves that it refuses to without a token.
func TestComposeConfig(t *testing.T) {
	argv := composeCommand(t)
	tests := []struct {
		name    string
		env     []string
		wantErr bool
	}{
		{"token set", []string{"BACKPROPD_AUTH_TOKEN=test-token-0123456789"}, false},
		{"token missing", nil, true},
		{"token empty", []string{"BACKPROPD_AUTH_TOKEN="}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(argv[0], append(argv[1:], "-f", composeFile, "config", "-q")...)
			cmd.Env = append(environWithout("BACKPROPD_AUTH_TOKEN", "COMPOSE_FILE", "GRAFANA_ADMIN_PASSWORD", "BACKPROPD_VARIANT"), tt.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if tt.wantErr {
				if err == nil {
					t.Fatal("compose accepted the file without BACKPROPD_AUTH_TOKEN")
				}
				if !strings.Contains(stderr.String(), "BACKPROPD_AUTH_TOKEN") {
					t.Errorf("compose's error does not name BACKPROPD_AUTH_TOKEN: %s", stderr.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("compose config: %v\n%s", err, stderr.String())
			}
		})
	}
}

func TestComposeHardening(t *testing.T) {
	p := loadCompose(t)
	for name, s := range p.Services {
		t.Run(name, func(t *testing.T) {
			if !s.ReadOnly {
				t.Error("read_only: want true")
			}
			uid, _, _ := strings.Cut(s.User, ":")
			if n, err := strconv.Atoi(uid); err != nil || n == 0 {
				t.Errorf("user %q: want a numeric non-root uid", s.User)
			}
			if !slices.Contains(s.Tmpfs, "/tmp") {
				t.Errorf("tmpfs %v: want /tmp, since the root is read-only", s.Tmpfs)
			}
			if !slices.Equal(s.CapDrop, []string{"ALL"}) {
				t.Errorf("cap_drop %v, want [ALL]", s.CapDrop)
			}
			if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("security_opt %v: want no-new-privileges:true", s.SecurityOpt)
			}
			for _, port := range s.Ports {
				if !strings.HasPrefix(port, "127.0.0.1:") {
					t.Errorf("port %q is published on every interface; want 127.0.0.1 only", port)
				}
			}
			if s.Image == "" || strings.HasSuffix(s.Image, ":latest") || !strings.Contains(s.Image, ":") {
				t.Errorf("image %q: want a tag that is not latest", s.Image)
			}
		})
	}
}

func TestComposeBackpropd(t *testing.T) {
	s := loadCompose(t).Services["backpropd"]
	if s.Build == nil || s.Build.Context != ".." || s.Build.Dockerfile != "Dockerfile" {
		t.Errorf("build %+v: want context .. and the repository's Dockerfile", s.Build)
	}
	if _, err := os.Stat(filepath.Join("..", "Dockerfile")); err != nil {
		t.Errorf("build context has no Dockerfile: %v", err)
	}
	if tok := s.Environment["BACKPROPD_AUTH_TOKEN"]; !strings.HasPrefix(tok, "${BACKPROPD_AUTH_TOKEN:?") {
		t.Errorf("BACKPROPD_AUTH_TOKEN = %q: want ${BACKPROPD_AUTH_TOKEN:?...} so compose refuses to start without it", tok)
	}
	if s.User != "65532:65532" {
		t.Errorf("user %q: want the image's nonroot 65532:65532, which owns the volume", s.User)
	}
	dataDir := s.Environment["BACKPROPD_DATA_DIR"]
	if !slices.Contains(s.Volumes, "backpropd-data:"+dataDir) || dataDir != "/data" {
		t.Errorf("volumes %v: want the named volume backpropd-data on BACKPROPD_DATA_DIR /data (have %q)", s.Volumes, dataDir)
	}
	if !slices.Contains(s.Ports, "127.0.0.1:8080:8080") || s.Environment["BACKPROPD_ADDR"] != ":8080" {
		t.Errorf("ports %v, BACKPROPD_ADDR %q: want 127.0.0.1:8080:8080 onto :8080", s.Ports, s.Environment["BACKPROPD_ADDR"])
	}
	timeout, err1 := time.ParseDuration(s.Environment["BACKPROPD_SHUTDOWN_TIMEOUT"])
	grace, err2 := time.ParseDuration(s.StopGracePeriod)
	if err1 != nil || err2 != nil || grace <= timeout {
		t.Errorf("stop_grace_period %q, BACKPROPD_SHUTDOWN_TIMEOUT %q: want grace > timeout", s.StopGracePeriod, s.Environment["BACKPROPD_SHUTDOWN_TIMEOUT"])
	}
}

// bindMounts maps a service's container paths to their host paths (relative
// to deploy/) for bind mounts, and to the volume name for named volumes.
func bindMounts(s composeService) map[string]string {
	m := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			m[parts[1]] = parts[0]
		}
	}
	return m
}

// TestComposeWiring follows the references between the services and their
// configuration files: the scrape target, the datasource URL, the mounts and
// the dashboard provider's directory must all agree.
func TestComposeWiring(t *testing.T) {
	p := loadCompose(t)
	prom := p.Services["prometheus"]
	graf := p.Services["grafana"]
	promConf := loadPrometheusConfig(t)
	ds := loadDatasources(t)
	prov := loadDashboardProviders(t)

	t.Run("prometheus config mounted where --config.file points", func(t *testing.T) {
		mounts := bindMounts(prom)
		var configFile string
		for _, arg := range prom.Command {
			if v, ok := strings.CutPrefix(arg, "--config.file="); ok {
				configFile = v
			}
		}
		if host := mounts[configFile]; filepath.Clean(host) != filepath.Clean("./"+prometheusConfig) {
			t.Errorf("--config.file=%s is mounted from %q, want ./%s", configFile, host, prometheusConfig)
		}
	})

	t.Run("prometheus scrapes the backpropd service", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(p.Services["backpropd"].Environment["BACKPROPD_ADDR"])
		want := net.JoinHostPort("backpropd", port)
		var found bool
		for _, sc := range promConf.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				found = found || slices.Contains(st.Targets, want)
			}
		}
		if !found {
			t.Errorf("no scrape target %s in %s", want, prometheusConfig)
		}
	})

	t.Run("grafana datasource reaches the prometheus service", func(t *testing.T) {
		var port string
		for _, arg := range prom.Command {
			if v, ok := strings.CutPrefix(arg, "--web.listen-address="); ok {
				_, port, _ = net.SplitHostPort(v)
			}
		}
		want := "http://" + net.JoinHostPort("prometheus", port)
		if len(ds.Datasources) != 1 || ds.Datasources[0].URL != want {
			t.Errorf("datasources %+v: want one at %s", ds.Datasources, want)
		}
	})

	t.Run("grafana mounts provisioning and dashboards", func(t *testing.T) {
		mounts := bindMounts(graf)
		if host := mounts["/etc/grafana/provisioning"]; filepath.Clean(host) != "grafana/provisioning" {
			t.Errorf("/etc/grafana/provisioning mounted from %q, want ./grafana/provisioning", host)
		}
		if len(prov.Providers) != 1 {
			t.Fatalf("want one dashboard provider, have %d", len(prov.Providers))
		}
		dir := prov.Providers[0].Options.Path
		if host := mounts[dir]; filepath.Clean(host) != "grafana/dashboards" {
			t.Errorf("provider path %s is mounted from %q, want ./grafana/dashboards", dir, host)
		}
		home := graf.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
		if filepath.Dir(home) != dir {
			t.Errorf("home dashboard %s is outside the provider's directory %s", home, dir)
		}
		if _, err := os.Stat(filepath.Join("grafana", "dashboards", filepath.Base(home))); err != nil {
			t.Errorf("home dashboard: %v", err)
		}
		if graf.Environment["GF_AUTH_ANONYMOUS_ENABLED"] != "true" || graf.Environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] != "Viewer" {
			t.Error("grafana: want anonymous viewers, so the dashboard shows at http://localhost:3000 without a login")
		}
		if !slices.Contains(graf.Ports, "127.0.0.1:3000:3000") {
			t.Errorf("grafana ports %v: want 127.0.0.1:3000:3000", graf.Ports)
		}
	})
}
