package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/backpropd/backpropd/internal/api"
	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/metrics"
	"github.com/backpropd/backpropd/internal/store"
)

// readHeaderTimeout is short here so that the slow-header client is cut
// off within the test; cmd/server uses 10 s.
const readHeaderTimeout = 1500 * time.Millisecond

// service is the server wired as cmd/server's Run wires it: store, job
// manager, metrics and API behind an http.Server with every timeout set.
type service struct {
	st   *store.Store
	jobs *jobs.Manager
	api  *api.Server
	http *http.Server
	url  string
}

func startService(tb testing.TB, workers int) *service {
	tb.Helper()
	st, err := store.Open(tb.TempDir(), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	svc := &service{st: st}
	reg := prometheus.NewRegistry()
	met, err := metrics.New(reg, metrics.Options{Workers: workers, QueueCapacity: 16,
		JobCounts: func() (int, int) { return svc.jobs.Counts() }, StoreStats: st.Stats})
	if err != nil {
		tb.Fatal(err)
	}
	if svc.jobs, err = jobs.New(st, jobs.Options{Workers: workers, QueueSize: 16, Observer: met}); err != nil {
		tb.Fatal(err)
	}
	if err := svc.jobs.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	svc.api = api.New(api.Options{Store: st, Jobs: svc.jobs, Observer: met, Instrument: met.Instrument,
		Metrics: metrics.Handler(reg, reg), Logger: slog.New(slog.DiscardHandler)})
	svc.http = &http.Server{
		Handler:           svc.api.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	svc.url = "http://" + ln.Addr().String()
	go func() { _ = svc.http.Serve(ln) }()
	return svc
}

// stop shuts the service down as cmd/server's Close does.
func (svc *service) stop(tb testing.TB) {
	tb.Helper()
	svc.api.SetDraining()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.http.Shutdown(ctx); err != nil {
		tb.Errorf("http shutdown: %v", err)
	}
	if err := svc.jobs.Shutdown(ctx); err != nil {
		tb.Errorf("jobs shutdown: %v", err)
	}
	if err := svc.st.Close(); err != nil {
		tb.Errorf("store close: %v", err)
	}
}

// loadSeconds is BACKPROPD_LOAD_SECONDS, or 5 in the normal suite.
func loadSeconds(t *testing.T) time.Duration {
	if v := os.Getenv("BACKPROPD_LOAD_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("BACKPROPD_LOAD_SECONDS=%q: want a positive integer", v)
		}
		return time.Duration(n) * time.Second
	}
	return 5 * time.Second
}

// vmRSS reads this process's resident set size from /proc. It may be
// called from any goroutine.
func vmRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS line %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

func blobsCSV(rows, features int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for i := range features {
		fmt.Fprintf(&b, "f%d,", i)
	}
	b.WriteString("class\n")
	for i := range rows {
		c := i % 3
		for j := range features {
			fmt.Fprintf(&b, "%.4f,", float64(c*(j%3))+r.NormFloat64())
		}
		fmt.Fprintf(&b, "c%d\n", c)
	}
	return []byte(b.String())
}

type client struct {
	t   testing.TB
	url string
	hc  *http.Client
}

func (c *client) do(method, path, ct string, body []byte, out any) int {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	if res.StatusCode >= 300 {
		c.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return res.StatusCode
}

type jobView struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Error    string `json:"error"`
	Progress struct {
		Epoch int `json:"epoch"`
	} `json:"progress"`
}

func jobSpec(model, ds string, epochs int) []byte {
	return fmt.Appendf(nil, `{"model_name":%q,"dataset_id":%q,"network":{"hidden":[{"units":32,"activation":"relu"}]},
		"training":{"epochs":%d,"batch_size":32,"optimizer":{"name":"adam","learning_rate":0.01}}}`, model, ds, epochs)
}

// TestLoad: 4 training jobs and 100 prediction clients for
// BACKPROPD_LOAD_SECONDS (5 s by default, 30 s in CI's hardening step).
// No answer but 200 or 429; RSS stays under a bound; every goroutine ends
// once the service stops; a client sending its headers a byte a second is
// cut off by ReadHeaderTimeout; clients that never read their event
// streams do not slow the job they watch. Prints the p99 latency.
func TestLoad(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dur := loadSeconds(t)
	rssStart, err := vmRSS()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot read the process's RSS: %v", err)
		}
		t.Skipf("cannot read the process's RSS (no Linux /proc?): %v", err)
	}
	svc := startService(t, 4)
	stopped := false
	defer func() {
		if !stopped {
			svc.stop(t)
		}
	}()
	tr := &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	c := &client{t: t, url: svc.url, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}

	var ds struct {
		ID string `json:"id"`
	}
	c.do("POST", "/v1/datasets?name=blobs&target=class", "text/csv", blobsCSV(6000, 8), &ds)
	var first jobView
	c.do("POST", "/v1/jobs", "application/json", jobSpec("served", ds.ID, 3), &first)
	for deadline := time.Now().Add(60 * time.Second); first.Status != "succeeded"; time.Sleep(20 * time.Millisecond) {
		c.do("GET", "/v1/jobs/"+first.ID, "", nil, &first)
		if first.Status == "failed" || first.Status == "cancelled" || time.Now().After(deadline) {
			t.Fatalf("the model to serve: %s %s", first.Status, first.Error)
		}
	}

	// Four long jobs train throughout the load, on a small dataset so
	// that epochs are short and their events many: hundreds of KB of
	// them, more than the socket buffers of a reader that never reads
	// can absorb, so the server's writes to those readers block.
	var small struct {
		ID string `json:"id"`
	}
	c.do("POST", "/v1/datasets?name=small&target=class", "text/csv", blobsCSV(200, 8), &small)
	training := make([]jobView, 4)
	for i := range training {
		c.do("POST", "/v1/jobs", "application/json", jobSpec(fmt.Sprintf("load%d", i), small.ID, 1_000_000), &training[i])
	}
	// Three clients open the first job's event stream and never read it,
	// with receive buffers as small as the kernel allows.
	var stuck []net.Conn
	for range 3 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(svc.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.(*net.TCPConn).SetReadBuffer(1)
		fmt.Fprintf(conn, "GET /v1/jobs/%s/events HTTP/1.1\r\nHost: x\r\n\r\n", training[0].ID)
		stuck = append(stuck, conn)
	}

	// Those streams carry too few bytes in a short run to fill the
	// kernel's socket buffers, so the handler's writes may never block.
	// A subscription that is never drained is what a blocked handler
	// leaves behind; hold one on the same job.
	_, unsubscribe, err := svc.jobs.Subscribe(training[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	defer unsubscribe()

	// The slow-header client.
	slowDone := make(chan error, 1)
	go func() { slowDone <- slowHeaders(svc.url) }()

	// The prediction clients.
	var (
		ok, limited, failed atomic.Int64
		mu                  sync.Mutex
		lat                 []time.Duration
		firstErr            atomic.Value
		peakRSS             atomic.Int64
	)
	v1 := []byte(`{"inputs":[[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]]}`)
	v2 := []byte(`{"inputs":[{"name":"input","shape":[2,8],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,8,7,6,5,4,3,2,1]}]}`)
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			var mine []time.Duration
			for n := 0; ctx.Err() == nil; n++ {
				path, body := "/v1/models/served/predict", v1
				if (i+n)%4 == 0 {
					path, body = "/v2/models/served/infer", v2
				}
				req, _ := http.NewRequest("POST", svc.url+path, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				start := time.Now()
				res, err := c.hc.Do(req)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				mine = append(mine, time.Since(start))
				switch res.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					limited.Add(1)
				default:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: status %d", path, res.StatusCode))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if r, err := vmRSS(); err == nil && r > peakRSS.Load() {
				peakRSS.Store(r)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	wg.Wait()

	// Progress of the four jobs, read before they are cancelled.
	epochs := make([]int, len(training))
	for i, j := range training {
		var v jobView
		c.do("GET", "/v1/jobs/"+j.ID, "", nil, &v)
		if v.Status != "running" {
			t.Errorf("training job %d is %s (%s) after the load, want running", i, v.Status, v.Error)
		}
		epochs[i] = v.Progress.Epoch
		c.do("POST", "/v1/jobs/"+j.ID+"/cancel", "", nil, nil)
	}
	for _, conn := range stuck {
		conn.Close()
	}

	slices.Sort(lat)
	p := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))]
	}
	total := ok.Load() + limited.Load() + failed.Load()
	msg := fmt.Sprintf("load %v: %d predictions (%.0f/s), %d ok, %d 429, %d errors; latency p50 %v p99 %v max %v; "+
		"RSS %d MiB at start, peak %d MiB; epochs of the 4 jobs %v (job 0 had 3 stuck event readers and an undrained subscription)",
		dur, total, float64(total)/dur.Seconds(), ok.Load(), limited.Load(), failed.Load(),
		p(0.5), p(0.99), p(1), rssStart>>20, peakRSS.Load()>>20, epochs)
	t.Log(msg)
	fmt.Println(msg)
	if failed.Load() > 0 {
		t.Errorf("%d requests failed with something other than 429; first: %v", failed.Load(), firstErr.Load())
	}
	if ok.Load() == 0 {
		t.Error("no prediction succeeded")
	}
	// The bound: the service holds a 6000 × 8 dataset, five small
	// models and 100 connections; 20 µs of Go heap per connection and a
	// few MB of data would be far below 256 MiB, and the race detector's
	// shadow memory multiplies it by up to 8 (raceFactor). The training
	// jobs keep their history, which grows with the epochs trained: in
	// the trainer, in the job, in the event streams' shared encoding and
	// in each checkpoint being encoded, with the collector's headroom on
	// top. Measured at 10 s and 30 s of this load, peak RSS grew by 1.17
	// KB per epoch of the four jobs (59,676 epochs: +90 MiB; 237,867:
	// +289 MiB); the bound allows historyPerEpoch.
	const historyPerEpoch = 1536
	trained := 0
	for _, e := range epochs {
		trained += e
	}
	if limit := rssStart + raceFactor*(256<<20+int64(trained)*historyPerEpoch); peakRSS.Load() > limit {
		t.Errorf("peak RSS %d MiB, over the bound of %d MiB for %d epochs trained", peakRSS.Load()>>20, limit>>20, trained)
	}
	// With 4 workers sharing the CPUs, the jobs advance at similar
	// rates; a job whose events are not read must not lag far behind.
	others := slices.Clone(epochs[1:])
	slices.Sort(others)
	if med := others[1]; med > 10 && epochs[0] < med/2 {
		t.Errorf("the job with stuck event readers trained %d epochs; the others a median of %d", epochs[0], med)
	}
	if err := <-slowDone; err != nil {
		t.Error(err)
	}
	svc.stop(t)
	stopped = true
	tr.CloseIdleConnections()
}

// slowHeaders sends a request's headers one byte a second and returns nil
// when the server closes the connection within ReadHeaderTimeout plus a
// second, before the headers are complete.
func slowHeaders(url string) error {
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		return err
	}
	defer conn.Close()
	req := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 60) + "\r\n\r\n"
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		br := bufio.NewReader(conn)
		_, _ = br.ReadString('\n') // a 408 status line, or EOF
		_, _ = io.Copy(io.Discard, br)
		closed <- time.Since(start)
	}()
	for i := range len(req) {
		select {
		case d := <-closed:
			if d > readHeaderTimeout+time.Second {
				return fmt.Errorf("the slow client was cut off after %v, ReadHeaderTimeout is %v", d, readHeaderTimeout)
			}
			return nil
		default:
		}
		if _, err := conn.Write([]byte{req[i]}); err != nil {
			if errors.Is(err, net.ErrClosed) || time.Since(start) <= readHeaderTimeout+time.Second {
				return nil
			}
			return fmt.Errorf("write after %v: %v", time.Since(start), err)
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("the server read %d bytes of headers over %v without cutting the client off", len(req), time.Since(start))
}

// TestMetricsCardinality sends requests with hundreds of distinct paths,
// methods, model names and ids: the /metrics exposition must not grow a
// series per distinct value, or any client could exhaust the server's and
// Prometheus's memory.
func TestMetricsCardinality(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	svc := startService(t, 1)
	defer svc.stop(t)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var last []string
	series := func() int {
		last = last[:0]
		res, err := hc.Get(svc.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		n := 0
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
				n++
				name, _, _ := strings.Cut(line, " ")
				last = append(last, name)
			}
		}
		return n
	}
	hostile := func(i int) {
		reqs := []struct{ method, path string }{
			{"GET", fmt.Sprintf("/nothing/%d", i)},
			{fmt.Sprintf("M%d", i), "/v1/jobs"},
			{"POST", fmt.Sprintf("/v1/models/m%d/predict", i)},
			{"GET", fmt.Sprintf("/v1/jobs/%08d-0000-4000-8000-000000000000", i)},
			{"GET", fmt.Sprintf("/v2/models/m%d/ready", i)},
			{"DELETE", fmt.Sprintf("/v1/datasets/x%d", i)},
		}
		for _, r := range reqs {
			req, _ := http.NewRequest(r.method, svc.url+r.path, strings.NewReader(`{"inputs":[[1]]}`))
			req.Header.Set("Content-Type", "application/json")
			res, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	for i := range 5 {
		hostile(i)
	}
	series() // the scrape's own series appear after the first one
	before := series()
	names := slices.Clone(last)
	for i := 5; i < 500; i++ {
		hostile(i)
	}
	if after := series(); after != before {
		var added []string
		for _, n := range last {
			if !slices.Contains(names, n) {
				added = append(added, n)
			}
		}
		t.Errorf("/metrics went from %d to %d series after 495 more distinct paths, methods and names; new: %v", before, after, added)
	}
}

// TestLongJobWritesPerEpochBounded trains a job of many short epochs and
// measures the bytes the process writes per epoch (/proc/self/io wchar)
// early in the job and three times later: they must not grow with the
// number of epochs trained, or a 1,000,000-epoch job (the limit) writes
// terabytes. Only this job runs, so the process's writes are its writes.
func TestLongJobWritesPerEpochBounded(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := jobs.New(st, jobs.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	ds, err := st.CreateDataset(context.Background(), &store.Dataset{
		Meta: store.DatasetMeta{Name: "tiny", Rows: 4, Features: 1, FeatureNames: []string{"x"},
			TargetNames: []string{"y"}, Task: "binary", Classes: []string{"a", "b"}},
		X: []float64{0, 1, 2, 3}, Labels: []string{"a", "b", "a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	j, err := m.Submit(context.Background(), jobs.Spec{ModelName: "long", DatasetID: ds.ID,
		Training: jobs.TrainingSpec{TrainingConfig: engine.TrainingConfig{Epochs: 1_000_000}}})
	if err != nil {
		t.Fatal(err)
	}
	wchar := func() int64 {
		b, err := os.ReadFile("/proc/self/io")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal(err)
			}
			t.Skipf("no /proc/self/io: %v", err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "wchar:"); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
		t.Fatal("no wchar in /proc/self/io")
		return 0
	}
	epoch := func() int {
		g, err := m.Get(context.Background(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		return g.Progress.Epoch
	}
	// window waits for the job to reach epoch from, then measures the
	// bytes written per epoch over the next n epochs.
	window := func(from, n int) float64 {
		deadline := time.Now().Add(90 * time.Second)
		for epoch() < from {
			if time.Now().After(deadline) {
				t.Fatalf("the job did not reach epoch %d in 90 s", from)
			}
			time.Sleep(5 * time.Millisecond)
		}
		e0, w0 := epoch(), wchar()
		for epoch() < e0+n {
			if time.Now().After(deadline) {
				t.Fatalf("the job did not reach epoch %d in 90 s", e0+n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		e1, w1 := epoch(), wchar()
		return float64(w1-w0) / float64(e1-e0)
	}
	early := window(100, 200)
	late := window(900, 200)
	t.Logf("bytes written per epoch: %.0f at epochs 100-300, %.0f at epochs 900-1100", early, late)
	if late > 1.5*early {
		t.Errorf("bytes written per epoch grew from %.0f to %.0f as the history grew", early, late)
	}
	if _, err := m.Cancel(context.Background(), j.ID); err != nil {
		t.Fatal(err)
	}
}
