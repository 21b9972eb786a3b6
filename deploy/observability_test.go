package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	prometheusConfig  = "prometheus/prometheus.yml"
	datasourcesDir    = "grafana/provisioning/datasources"
	dashboardProvDir  = "grafana/provisioning/dashboards"
	dashboardsDir     = "grafana/dashboards"
	grafanaDatasource = "prometheus" // the uid the dashboards refer to
)

// prometheusConfigFile mirrors the parts of Prometheus's configuration file
// that deploy/prometheus/prometheus.yml uses; promtool checks the rest.
type prometheusConfigFile struct {
	Global struct {
		ScrapeInterval     string `json:"scrape_interval"`
		ScrapeTimeout      string `json:"scrape_timeout"`
		EvaluationInterval string `json:"evaluation_interval"`
	} `json:"global"`
	ScrapeConfigs []struct {
		JobName        string `json:"job_name"`
		MetricsPath    string `json:"metrics_path"`
		Scheme         string `json:"scheme"`
		ScrapeInterval string `json:"scrape_interval"`
		StaticConfigs  []struct {
			Targets []string `json:"targets"`
		} `json:"static_configs"`
	} `json:"scrape_configs"`
}

func loadPrometheusConfig(tb testing.TB) prometheusConfigFile {
	tb.Helper()
	var c prometheusConfigFile
	if err := strictUnmarshal(mustRead(tb, prometheusConfig), &c); err != nil {
		tb.Fatalf("%s: %v", prometheusConfig, err)
	}
	return c
}

// grafanaDatasources mirrors Grafana's datasource provisioning file
// (apiVersion 1) for the fields used here.
type grafanaDatasources struct {
	APIVersion  int `json:"apiVersion"`
	Datasources []struct {
		Name      string `json:"name"`
		UID       string `json:"uid"`
		Type      string `json:"type"`
		Access    string `json:"access"`
		URL       string `json:"url"`
		IsDefault bool   `json:"isDefault"`
		Editable  bool   `json:"editable"`
		JSONData  struct {
			TimeInterval string `json:"timeInterval"`
		} `json:"jsonData"`
	} `json:"datasources"`
}

// grafanaProviders mirrors Grafana's dashboard provider provisioning file.
type grafanaProviders struct {
	APIVersion int `json:"apiVersion"`
	Providers  []struct {
		Name                  string `json:"name"`
		OrgID                 int    `json:"orgId"`
		Folder                string `json:"folder"`
		Type                  string `json:"type"`
		DisableDeletion       bool   `json:"disableDeletion"`
		AllowUIUpdates        bool   `json:"allowUiUpdates"`
		UpdateIntervalSeconds int    `json:"updateIntervalSeconds"`
		Options               struct {
			Path                      string `json:"path"`
			FoldersFromFilesStructure bool   `json:"foldersFromFilesStructure"`
		} `json:"options"`
	} `json:"providers"`
}

// onlyYAMLFile returns the one .yml or .yaml file in dir.
func onlyYAMLFile(tb testing.TB, dir string) string {
	tb.Helper()
	var files []string
	for _, pattern := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			tb.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) != 1 {
		tb.Fatalf("%s: want one provisioning file, have %v", dir, files)
	}
	return files[0]
}

func loadDatasources(tb testing.TB) grafanaDatasources {
	tb.Helper()
	path := onlyYAMLFile(tb, datasourcesDir)
	var d grafanaDatasources
	if err := strictUnmarshal(mustRead(tb, path), &d); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return d
}

func loadDashboardProviders(tb testing.TB) grafanaProviders {
	tb.Helper()
	path := onlyYAMLFile(tb, dashboardProvDir)
	var p grafanaProviders
	if err := strictUnmarshal(mustRead(tb, path), &p); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return p
}

func TestPrometheusConfig(t *testing.T) {
	c := loadPrometheusConfig(t)
	interval, err := time.ParseDuration(c.Global.ScrapeInterval)
	if err != nil || interval < 5*time.Second || interval > 15*time.Second {
		t.Errorf("scrape_interval %q: want 5s to 15s (%v)", c.Global.ScrapeInterval, err)
	}
	var jobs []string
	for _, sc := range c.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
		if sc.JobName != "backpropd" {
			continue
		}
		if sc.MetricsPath != "/metrics" || sc.ScrapeInterval != "" {
			t.Errorf("job backpropd: metrics_path %q, scrape_interval %q: want /metrics and the global interval", sc.MetricsPath, sc.ScrapeInterval)
		}
	}
	if len(jobs) != 1 || jobs[0] != "backpropd" {
		t.Errorf("scrape jobs %v, want [backpropd]", jobs)
	}
}

// TestPromtoolChecksConfig has Prometheus's own checker read the file, which
// catches what the mirror struct above cannot (a wrong type, an invalid
// duration, a field in the wrong place).
func TestPromtoolChecksConfig(t *testing.T) {
	promtool := requireProgram(t, "promtool")
	out, err := exec.Command(promtool, "check", "config", "--syntax-only", prometheusConfig).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	broken := strings.Replace(string(mustRead(t, prometheusConfig)), "scrape_interval: 10s", "scrape_interval: ten", 1)
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if exec.Command(promtool, "check", "config", "--syntax-only", bad).Run() == nil {
		t.Error("promtool accepted scrape_interval: ten, so it cannot be what checks this file")
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	ds := loadDatasources(t)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 {
		t.Fatalf("datasources: apiVersion %d, %d datasources: want 1 and 1", ds.APIVersion, len(ds.Datasources))
	}
	d := ds.Datasources[0]
	if d.UID != grafanaDatasource || d.Type != "prometheus" || d.Access != "proxy" || !d.IsDefault {
		t.Errorf("datasource %+v: want the default, uid %q, type prometheus, access proxy", d, grafanaDatasource)
	}
	prom := loadPrometheusConfig(t)
	if d.JSONData.TimeInterval != prom.Global.ScrapeInterval {
		t.Errorf("datasource timeInterval %q, scrape_interval %q: want them equal so $__rate_interval fits the scrapes", d.JSONData.TimeInterval, prom.Global.ScrapeInterval)
	}

	p := loadDashboardProviders(t)
	if p.APIVersion != 1 || len(p.Providers) != 1 {
		t.Fatalf("providers: apiVersion %d, %d providers: want 1 and 1", p.APIVersion, len(p.Providers))
	}
	if pr := p.Providers[0]; pr.Type != "file" || !filepath.IsAbs(pr.Options.Path) {
		t.Errorf("provider %+v: want type file and an absolute options.path", pr)
	}
}

// datasourceUIDs returns every datasource uid that a dashboard JSON names,
// with the JSON path where it does.
func datasourceUIDs(v any, path string, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			p := path + "." + k
			if k == "datasource" {
				switch ds := child.(type) {
				case map[string]any:
					if uid, ok := ds["uid"].(string); ok {
						out[p] = uid
					}
				case string:
					out[p] = "name:" + ds
				}
			}
			datasourceUIDs(child, p, out)
		}
	case []any:
		for i, child := range v {
			datasourceUIDs(child, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

// TestDashboardsUseProvisionedDatasource checks that every dashboard in the
// provider's directory refers to the provisioned datasource, so that it shows
// data on a fresh Grafana.
func TestDashboardsUseProvisionedDatasource(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("%s: no dashboard", dashboardsDir)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var dash any
			if err := json.Unmarshal(mustRead(t, f), &dash); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			uids := map[string]string{}
			datasourceUIDs(dash, "$", uids)
			if len(uids) == 0 {
				t.Fatal("no datasource reference")
			}
			for path, uid := range uids {
				// "-- Grafana --" is Grafana's built-in annotation source;
				// "$name" a dashboard variable.
				if uid != grafanaDatasource && uid != "-- Grafana --" && !strings.HasPrefix(uid, "$") {
					t.Errorf("%s: datasource uid %q, want %q (the provisioned one)", path, uid, grafanaDatasource)
				}
			}
		})
	}
}
