package metrics

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

const dashboardPath = "../../deploy/grafana/dashboards/backpropd.json"

// promqlFuncs are PromQL's functions and aggregation operators (Prometheus
// 2.x/3.x documentation, "Functions" and "Aggregation operators"). An
// identifier followed by "(" must be one of them.
var promqlFuncs = setOf(
	"abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
	"day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
	"floor", "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile",
	"histogram_stddev", "histogram_stdvar", "histogram_sum", "double_exponential_smoothing",
	"holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln",
	"log2", "log10", "minute", "month", "predict_linear", "rate", "resets", "round", "scalar",
	"sgn", "sort", "sort_desc", "sort_by_label", "sort_by_label_desc", "sqrt", "time",
	"timestamp", "vector", "year", "avg_over_time", "min_over_time", "max_over_time",
	"sum_over_time", "count_over_time", "quantile_over_time", "stddev_over_time",
	"stdvar_over_time", "last_over_time", "present_over_time", "mad_over_time",
	"acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan",
	"tanh", "deg", "rad", "pi",
)

// promqlAggregations may be followed by by(...) or without(...) before
// their parenthesized argument.
var promqlAggregations = setOf("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
	"count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio")

// promqlKeywords are binary operators and modifiers spelled as words.
var promqlKeywords = setOf("and", "or", "unless", "atan2", "bool", "offset", "start", "end",
	"inf", "nan")

// labelListKeywords are followed by a parenthesized list of label names.
var labelListKeywords = setOf("by", "without", "on", "ignoring", "group_left", "group_right")

func setOf(s ...string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, v := range s {
		m[strings.ToLower(v)] = true
	}
	return m
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || '0' <= c && c <= '9' }

// skipBalanced returns the index just past the bracket that closes the one
// at s[i], skipping quoted strings inside.
func skipBalanced(s string, i int, open, close byte) (int, error) {
	depth := 0
	for j := i; j < len(s); j++ {
		switch c := s[j]; c {
		case '"', '\'', '`':
			k, err := skipString(s, j)
			if err != nil {
				return 0, err
			}
			j = k - 1
		case open:
			depth++
		case close:
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("unbalanced %q at offset %d", open, i)
}

// skipString returns the index just past the string literal at s[i].
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		if s[j] == '\\' && q != '`' {
			j++
			continue
		}
		if s[j] == q {
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at offset %d", i)
}

// metricNames returns the metric names a PromQL expression selects: the
// identifiers that are neither functions, aggregations, keywords, label names (inside
// {...} or after by/without/on/ignoring/group_left/group_right), string
// literals, numbers, durations nor Grafana variables. It fails on an
// identifier followed by "(" that is not a PromQL function, and on
// unbalanced brackets or strings.
func metricNames(expr string) ([]string, error) {
	var names []string
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(expr, i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{':
			// A selector's label matchers: label names and values only.
			j, err := skipBalanced(expr, i, '{', '}')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '[':
			// A range or subquery duration, possibly a Grafana variable.
			j, err := skipBalanced(expr, i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '$':
			// Grafana variable: $name or ${name}.
			i++
			if i < len(expr) && expr[i] == '{' {
				j, err := skipBalanced(expr, i, '{', '}')
				if err != nil {
					return nil, err
				}
				i = j
				break
			}
			for i < len(expr) && isIdentChar(expr[i]) {
				i++
			}
		case '0' <= c && c <= '9' || c == '.':
			// Numbers, including 1e-3, 0x1f and durations such as 5m
			// after offset.
			for i < len(expr) && (isIdentChar(expr[i]) || expr[i] == '.' ||
				(expr[i] == '-' || expr[i] == '+') && (expr[i-1] == 'e' || expr[i-1] == 'E')) {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdentChar(expr[j]) {
				j++
			}
			ident := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n') {
				k++
			}
			lower := strings.ToLower(ident)
			switch {
			case labelListKeywords[lower]:
				if k < len(expr) && expr[k] == '(' {
					end, err := skipBalanced(expr, k, '(', ')')
					if err != nil {
						return nil, err
					}
					j = end
				}
			case promqlKeywords[lower]:
			case promqlAggregations[ident] && (k < len(expr) && expr[k] == '(' ||
				strings.HasPrefix(expr[k:], "by") || strings.HasPrefix(expr[k:], "without")):
			case k < len(expr) && expr[k] == '(':
				if !promqlFuncs[ident] {
					return nil, fmt.Errorf("%q is called like a function but is no PromQL function", ident)
				}
			default:
				names = append(names, ident)
			}
			i = j
		default:
			i++
		}
	}
	return names, nil
}

func TestMetricNamesTokenizer(t *testing.T) {
	tests := []struct {
		expr    string
		want    []string
		wantErr string
	}{
		{`backpropd_training_loss{split="train",job_id=~"$job_id"}`, []string{"backpropd_training_loss"}, ""},
		{`up`, []string{"up"}, ""},
		{`sum by (le, route) (rate(x_bucket{code=~"5.."}[$__rate_interval]))`, []string{"x_bucket"}, ""},
		{`a / on(model_name, job_id) group_left(version) b`, []string{"a", "b"}, ""},
		{`time() - (c > 0) * 1e-3 + d offset 5m`, []string{"c", "d"}, ""},
		{`e and f or g unless h`, []string{"e", "f", "g", "h"}, ""},
		{`count(sum_x) + topk by (a) (3, byte)`, []string{"sum_x", "byte"}, ""},
		{`histogram_quantile(0.99, sum without(instance) (rate(k[${__range}])))`, []string{"k"}, ""},
		{`label_replace(m, "dst", "$1", "src", "(.*)")`, []string{"m"}, ""},
		{`{__name__="n"}`, nil, ""},
		{`rates(x[5m])`, nil, `"rates" is called like a function`},
		{`sum(x{a="b"`, nil, "unbalanced"},
		{`x{a="b}`, nil, "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got, err := metricNames(tt.expr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// dashboard is the part of a Grafana dashboard JSON the tests read.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name       string      `json:"name"`
			Type       string      `json:"type"`
			Datasource *datasource `json:"datasource"`
			Definition string      `json:"definition"`
			Query      struct {
				Query string `json:"query"`
			} `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *datasource              `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		Datasource *datasource `json:"datasource"`
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // collapsed rows
}

func loadDashboard(tb testing.TB) dashboard {
	tb.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		tb.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		tb.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// labelValuesRe matches Grafana's label_values(selector, label) variable
// query; only the selector is PromQL.
var labelValuesRe = regexp.MustCompile(`^\s*label_values\(\s*(.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// dashboardQueries returns every PromQL expression of the dashboard, named
// by where it sits.
func dashboardQueries(tb testing.TB, d dashboard) map[string]string {
	tb.Helper()
	qs := make(map[string]string)
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			qs[fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)] = tg.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValuesRe.FindStringSubmatch(v.Query.Query)
		if m == nil {
			tb.Fatalf("variable %s: query %q is not label_values(selector, label)", v.Name, v.Query.Query)
		}
		qs["variable "+v.Name] = m[1]
	}
	return qs
}

// exportedFamilies exercises every code path of Metrics once, so that
// labelled series exist, and returns the gathered families by name.
func exportedFamilies(tb testing.TB) map[string]*dto.MetricFamily {
	tb.Helper()
	m, reg := mustNew(tb, Options{Workers: 2, QueueCapacity: 4, Version: "test",
		StoreStats: func() store.Stats { return store.Stats{Datasets: 1, Models: 1, TotalBytes: 1} }})
	start, end := time.Now(), time.Now().Add(time.Second)
	j := jobs.Job{ID: "j", ModelName: "m", Status: jobs.Running, StartedAt: &start}
	j.Spec.Training.Epochs = 2
	m.JobQueued(j)
	m.JobStarted(j)
	m.JobEpoch(j, engine.Epoch{Epoch: 1, Loss: 1, ValLoss: ptr(1), Accuracy: ptr(0.5), ValAccuracy: ptr(0.5),
		DurationSeconds: 1, SamplesPerSecond: 10})
	j.Status, j.FinishedAt = jobs.Succeeded, &end
	m.JobFinished(j)
	m.ObservePrediction("m", 1, time.Millisecond)
	m.Instrument(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	fams := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		fams[mf.GetName()] = mf
	}
	return fams
}

// exported reports whether a name used in PromQL is a series the server
// exports: a family name, or a histogram's _bucket/_sum/_count series.
func exported(fams map[string]*dto.MetricFamily, name string) bool {
	if mf, ok := fams[name]; ok {
		// A histogram's own name selects nothing in classic histograms.
		return mf.GetType() != dto.MetricType_HISTOGRAM && mf.GetType() != dto.MetricType_SUMMARY
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suf)
		if !ok {
			continue
		}
		if mf, ok := fams[base]; ok {
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM:
				return true
			case dto.MetricType_SUMMARY:
				return suf != "_bucket"
			}
		}
	}
	return false
}

func TestDashboardQueriesUseExportedMetrics(t *testing.T) {
	d := loadDashboard(t)
	fams := exportedFamilies(t)
	used := make(map[string]bool)
	for where, q := range dashboardQueries(t, d) {
		names, err := metricNames(q)
		if err != nil {
			t.Errorf("%s: %q: %v", where, q, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s: %q selects no metric", where, q)
		}
		for _, n := range names {
			used[n] = true
			if !exported(fams, n) {
				t.Errorf("%s: %q uses %s, which the server does not export", where, q, n)
			}
		}
	}
	// The dashboard's required panels need these; a dashboard that lost one fails here.
	for _, n := range []string{"backpropd_training_loss", "backpropd_training_accuracy",
		"backpropd_training_epoch", "backpropd_training_epochs_planned",
		"backpropd_training_samples_per_second", "backpropd_jobs", "backpropd_workers_busy",
		"backpropd_jobs_finished_total", "backpropd_predictions_total",
		"backpropd_prediction_duration_seconds_bucket", "backpropd_http_requests_total"} {
		if !used[n] {
			t.Errorf("no dashboard query uses %s", n)
		}
	}
	var list []string
	for n := range used {
		list = append(list, n)
	}
	sort.Strings(list)
	t.Logf("dashboard uses %d metric names: %s", len(list), strings.Join(list, " "))
}

func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both must be set for provisioning", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d, want at least 36 (datasource references by uid)", d.SchemaVersion)
	}
	vars := make(map[string]bool)
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Datasource == nil || v.Datasource.UID != "prometheus" {
			t.Errorf("variable %s: datasource %+v, want uid prometheus", v.Name, v.Datasource)
		}
	}
	for _, v := range []string{"model_name", "job_id"} {
		if !vars[v] {
			t.Errorf("no template variable %s", v)
		}
	}
	ids := make(map[int]string)
	titles := make(map[string]bool)
	for _, p := range allPanels(d.Panels) {
		titles[p.Title] = true
		if other, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d not unique (also %q) or zero", p.Title, p.ID, other)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "prometheus" {
			t.Errorf("panel %q: datasource %+v, want uid prometheus (the provisioned one)", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "prometheus" {
				t.Errorf("panel %q target %s: datasource %+v, want uid prometheus", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}
	for _, want := range []string{"Training and validation loss", "Accuracy", "Epoch progress against plan",
		"Samples per second", "Queue depth and busy workers", "Job outcomes per minute", "Prediction rate",
		"Prediction latency p50 / p95 / p99", "HTTP error rate"} {
		if !titles[want] {
			t.Errorf("no panel titled %q", want)
		}
	}
}
