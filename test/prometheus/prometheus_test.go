package prometheus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The job: a regression MLP on synthetic data with a target that the
// network fits gradually, so that the loss falls across the scrapes. A short
// calibration job measures the epoch time on this machine first, and the
// real job gets enough epochs to train for about trainFor, so that even a
// fast machine yields several one-second scrapes.
const (
	rows        = 20000
	features    = 10
	batchSize   = 16
	modelName   = "promtest"
	trainFor    = 8 * time.Second
	minEpochs   = 30
	maxEpochs   = 400
	calibEpochs = 3
)

// requireProgram returns the path of a program, skipping the test when it
// is absent on a developer machine and failing it under CI=true, so that CI
// can never pass without it.
func requireProgram(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found (%v); CI must install Debian's prometheus package (.ci/steps/00-packages.sh)", name, err)
	}
	t.Skipf("%s not found; install Debian's prometheus package to run this test", name)
	return ""
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// buildServer compiles ./cmd/server into dir.
func buildServer(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(dir, "backpropd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/server")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/server: %v\n%s", err, out)
	}
	return bin
}

// process is a started program whose output goes to a log file that is
// printed when the test fails.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func start(t *testing.T, dir, name, bin string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, b)
		}
	})
	return p
}

// waitOK polls url until it answers 200, failing if p exits first.
func waitOK(t *testing.T, p *process, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before %s answered: %v", p.name, url, p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within %v (last error %v)", url, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitScraped polls Prometheus until q returns a series.
func waitScraped(t *testing.T, promURL, q string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, res, err := query(ctx, promURL, q)
		if err == nil && len(res) > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus: %s still empty after %v (last error %v)", q, timeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// doJSON sends a JSON request and decodes a JSON answer, requiring the
// wanted status.
func doJSON(t *testing.T, method, url string, body any, want int, out any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
		}
	}
}

// syntheticData is a smooth nonlinear regression target of uniform
// features, deterministic from the seed.
func syntheticData() (x [][]float64, y []float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	x = make([][]float64, rows)
	y = make([]float64, rows)
	for i := range rows {
		row := make([]float64, features)
		for j := range row {
			row[j] = 2*rng.Float64() - 1
		}
		x[i] = row
		y[i] = 3*row[0] - 2*row[1] + row[2]*row[3] + math.Sin(3*row[4]) + 0.05*rng.NormFloat64()
	}
	return x, y
}

type job struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Error    string `json:"error"`
	Progress struct {
		Epoch int `json:"epoch"`
	} `json:"progress"`
	Metrics struct {
		Loss    *float64 `json:"loss"`
		ValLoss *float64 `json:"val_loss"`
	} `json:"metrics"`
	History []struct {
		Epoch           int     `json:"epoch"`
		Loss            float64 `json:"loss"`
		DurationSeconds float64 `json:"duration_seconds"`
	} `json:"history"`
}

// promResult is one series of a Prometheus query answer.
type promResult struct {
	Metric map[string]string `json:"metric"`
	Values [][2]any          `json:"values"` // matrix
	Value  [2]any            `json:"value"`  // vector
}

// query runs an instant query against Prometheus's HTTP API.
func query(ctx context.Context, promURL, q string) (resultType string, res []promResult, err error) {
	u := promURL + "/api/v1/query?" + url.Values{"query": {q}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string       `json:"resultType"`
			Result     []promResult `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", nil, fmt.Errorf("query %q: decode: %w", q, err)
	}
	if body.Status != "success" {
		return "", nil, fmt.Errorf("query %q: %s: %s", q, body.ErrorType, body.Error)
	}
	return body.Data.ResultType, body.Data.Result, nil
}

// sampleValues decodes a matrix series' [time, "value"] pairs.
func sampleValues(t *testing.T, r promResult) []float64 {
	t.Helper()
	vs := make([]float64, len(r.Values))
	for i, p := range r.Values {
		s, ok := p[1].(string)
		if !ok {
			t.Fatalf("sample %v: value is not a string", p)
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("sample %v: %v", p, err)
		}
		vs[i] = v
	}
	return vs
}

func TestTrainingLossInRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and Prometheus and trains for several seconds")
	}
	if raceEnabled {
		// The plain go test run covers it; the server binary is not built
		// with -race anyway, so a second run would test nothing new.
		t.Skip("covered by the run without -race")
	}
	promBin := requireProgram(t, "prometheus")
	promtool := requireProgram(t, "promtool")
	dir := t.TempDir()
	bin := buildServer(t, dir)

	addr := freeAddr(t)
	srvURL := "http://" + addr
	srv := start(t, dir, "backpropd", bin, "--addr", addr, "--data-dir", filepath.Join(dir, "data"),
		"--workers", "1")
	waitOK(t, srv, srvURL+"/readyz", 30*time.Second)

	promAddr := freeAddr(t)
	promURL := "http://" + promAddr
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: backpropd
    static_configs:
      - targets: [%q]
`, addr)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := start(t, dir, "prometheus", promBin, "--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)
	waitOK(t, prom, promURL+"/-/ready", 30*time.Second)
	// Prometheus applies discovered targets every 5 s; train only once it
	// scrapes, so that the samples cover the whole job.
	waitScraped(t, promURL, `up{job="backpropd"} == 1`, 30*time.Second)

	x, y := syntheticData()
	var ds struct {
		ID string `json:"id"`
	}
	doJSON(t, "POST", srvURL+"/v1/datasets", map[string]any{"name": "synthetic", "features": x, "targets": y},
		http.StatusCreated, &ds)
	if ds.ID == "" {
		t.Fatal("dataset created without an id")
	}
	calib := runJob(t, srvURL, modelName+"-calibration", ds.ID, calibEpochs)
	var epochTime float64
	for _, e := range calib.History {
		epochTime = max(epochTime, e.DurationSeconds)
	}
	epochs := min(max(int(math.Ceil(trainFor.Seconds()/epochTime)), minEpochs), maxEpochs)
	t.Logf("calibration: %d epochs, slowest %.3fs; the job gets %d epochs", calibEpochs, epochTime, epochs)

	jobStart := time.Now()
	j := runJob(t, srvURL, modelName, ds.ID, epochs)
	trainTime := time.Since(jobStart)
	if j.Metrics.Loss == nil {
		t.Fatal("finished job has no loss")
	}
	finalLoss := *j.Metrics.Loss
	t.Logf("job %s: %d epochs in %v (first epoch %.3fs), loss %.4g -> %.4g",
		j.ID, epochs, trainTime.Round(time.Millisecond), j.History[0].DurationSeconds, j.History[0].Loss, finalLoss)

	// The raw samples Prometheus scraped, once it has scraped the final
	// epoch (the series outlive the job by the retention, 5 m by default).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sel := fmt.Sprintf(`backpropd_training_loss{split="train",job_id=%q}`, j.ID)
	var train []float64
	var series promResult
	for {
		typ, res, err := query(ctx, promURL, sel+"[10m]")
		if err != nil {
			t.Fatal(err)
		}
		if typ != "matrix" {
			t.Fatalf("range selector answered %q, want matrix", typ)
		}
		if len(res) == 1 {
			series = res[0]
			train = sampleValues(t, series)
			if len(train) > 0 && train[len(train)-1] == finalLoss {
				break
			}
		}
		if len(res) > 1 {
			t.Fatalf("%s matched %d series, want 1: %v", sel, len(res), res)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus never scraped the final loss %g of %s; samples %v", finalLoss, sel, train)
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Logf("Prometheus holds %d train-loss samples: %v", len(train), train)
	if got := series.Metric["model_name"]; got != modelName {
		t.Errorf("model_name label %q, want %q", got, modelName)
	}
	if got := series.Metric["job"]; got != "backpropd" {
		t.Errorf("job label %q, want the scrape job's name (the job id must not take it)", got)
	}
	if len(train) < 3 {
		t.Fatalf("%d samples of a %v job; want at least 3 to see the loss fall", len(train), trainTime)
	}
	if !(train[len(train)-1] < train[0]) {
		t.Errorf("train loss did not fall across the scrapes: first %g, last %g", train[0], train[len(train)-1])
	}

	// The final epoch's loss is exported before the job is marked
	// succeeded, so a scrape can hold that loss while the job still runs:
	// wait for one taken after the job ended before checking the job
	// counts.
	waitScraped(t, promURL, `backpropd_jobs_finished_total{status="succeeded"} == 2 and on() backpropd_jobs{status="running"} == 0`, 30*time.Second)

	// Validation loss is exported too, and the other series of the job.
	n := float64(epochs)
	trainRows := 0.8 * rows
	checks := []struct {
		q    string
		want func(float64) bool
		desc string
	}{
		{fmt.Sprintf(`backpropd_training_loss{split="validation",job_id=%q}`, j.ID),
			func(v float64) bool { return j.Metrics.ValLoss != nil && v == *j.Metrics.ValLoss }, "the job's final val_loss"},
		{fmt.Sprintf(`backpropd_training_epoch{job_id=%q}`, j.ID),
			func(v float64) bool { return v == n }, fmt.Sprint(epochs)},
		{fmt.Sprintf(`backpropd_training_epochs_planned{job_id=%q}`, j.ID),
			func(v float64) bool { return v == n }, fmt.Sprint(epochs)},
		{`backpropd_jobs_finished_total{status="succeeded"}`,
			func(v float64) bool { return v == 2 }, "2 (calibration and job)"},
		{fmt.Sprintf(`backpropd_training_epochs_total{model_name=%q}`, modelName),
			func(v float64) bool { return v == n }, fmt.Sprint(epochs)},
		// 80% of the rows train, the rest validate. The count is estimated
		// as throughput × epoch duration, and the duration includes the
		// validation pass (a forward pass over a quarter as many rows as
		// the training's forward and backward passes): at least the exact
		// count, at most 25% above it.
		{fmt.Sprintf(`backpropd_training_samples_total{model_name=%q}`, modelName),
			func(v float64) bool { return v >= n*trainRows-n && v <= 1.25*n*trainRows },
			fmt.Sprintf("between %d × 16000 and 25%% more", epochs)},
		{`backpropd_jobs{status="running"}`, func(v float64) bool { return v == 0 }, "0"},
	}
	for _, c := range checks {
		_, res, err := query(ctx, promURL, c.q)
		if err != nil {
			t.Error(err)
			continue
		}
		if len(res) != 1 {
			t.Errorf("%s: %d series, want 1", c.q, len(res))
			continue
		}
		v, err := strconv.ParseFloat(fmt.Sprint(res[0].Value[1]), 64)
		if err != nil || !c.want(v) {
			t.Errorf("%s = %v (%v), want %s", c.q, res[0].Value[1], err, c.desc)
		}
	}

	t.Run("dashboard queries", func(t *testing.T) { checkDashboardQueries(t, promURL) })
	t.Run("promtool check metrics", func(t *testing.T) { checkMetrics(t, promtool, srvURL+"/metrics") })
}

// runJob trains a model on the dataset for the given epochs, with a held-out
// validation fraction and without early stopping, and returns the
// succeeded job.
func runJob(t *testing.T, srvURL, model, datasetID string, epochs int) job {
	t.Helper()
	var j job
	doJSON(t, "POST", srvURL+"/v1/jobs", map[string]any{
		"model_name": model,
		"dataset_id": datasetID,
		"validation": map[string]any{"fraction": 0.2},
		"network": map[string]any{"hidden": []map[string]any{
			{"units": 64, "activation": "relu"}, {"units": 64, "activation": "relu"}}},
		"training": map[string]any{"epochs": epochs, "batch_size": batchSize,
			"optimizer":      map[string]any{"name": "adam", "learning_rate": 0.0005},
			"early_stopping": map[string]any{"enabled": false}},
	}, http.StatusAccepted, &j)
	deadline := time.Now().Add(5 * time.Minute)
	for j.Status != "succeeded" {
		if j.Status == "failed" || j.Status == "cancelled" {
			t.Fatalf("job %s ended %s: %s", j.ID, j.Status, j.Error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s at epoch %d after 5 minutes", j.ID, j.Status, j.Progress.Epoch)
		}
		time.Sleep(250 * time.Millisecond)
		doJSON(t, "GET", srvURL+"/v1/jobs/"+j.ID, nil, http.StatusOK, &j)
	}
	if len(j.History) != epochs {
		t.Fatalf("job %s: %d history entries, want %d", j.ID, len(j.History), epochs)
	}
	return j
}

// checkDashboardQueries runs every query of the Grafana dashboard through
// the real Prometheus, with Grafana's variables filled in: Prometheus must
// parse and evaluate each, and the training panels must show the job.
func checkDashboardQueries(t *testing.T, promURL string) {
	b, err := os.ReadFile("../../deploy/grafana/dashboards/backpropd.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$__rate_interval", "1m", "$model_name", ".*", "$job_id", ".*")
	leftover := regexp.MustCompile(`\$\{?\w+`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			q := vars.Replace(tg.Expr)
			if v := leftover.FindString(q); v != "" {
				t.Errorf("panel %q target %s: unhandled Grafana variable %s", p.Title, tg.RefID, v)
				continue
			}
			_, res, err := query(ctx, promURL, q)
			if err != nil {
				t.Errorf("panel %q target %s: %v", p.Title, tg.RefID, err)
				continue
			}
			n++
			if strings.Contains(q, "backpropd_training_loss") && len(res) == 0 {
				t.Errorf("panel %q target %s: %s shows no series after a job", p.Title, tg.RefID, q)
			}
		}
	}
	if n == 0 {
		t.Fatal("no dashboard queries evaluated")
	}
	t.Logf("Prometheus evaluated all %d dashboard queries", n)
}

// checkMetrics scrapes /metrics in the text format and requires promtool
// check metrics to find no problems.
func checkMetrics(t *testing.T, promtool, metricsURL string) {
	req, err := http.NewRequest("GET", metricsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", resp.StatusCode, err)
	}
	for _, want := range []string{"backpropd_training_loss{", "backpropd_build_info{", "go_goroutines", "process_start_time_seconds"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	} else if err != nil {
		t.Fatal(err)
	}
}
