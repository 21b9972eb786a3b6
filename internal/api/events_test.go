package api

import (
	"bufio"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/backpropd/backpropd/internal/metrics"
)

// TestEventStreamLive follows a long job through a real HTTP server with
// the metrics middleware in the chain, and checks that events arrive while
// the job runs (each is flushed through every wrapper), that idle streams
// get heartbeats, that the stream outlives the server's WriteTimeout, and
// that draining the server ends the stream.
func TestEventStreamLive(t *testing.T) {
	old := heartbeat
	heartbeat = 20 * time.Millisecond
	t.Cleanup(func() { heartbeat = old })

	env := newTestEnv(t, Config{})
	met, err := metrics.New(prometheus.NewRegistry(), metrics.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{Store: env.store, Jobs: env.jobs, Instrument: met.Instrument, Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewUnstartedServer(srv.Handler())
	// The stream must outlive the server's WriteTimeout: the handler lifts
	// it through every wrapper's Unwrap.
	ts.Config.WriteTimeout = time.Second
	ts.Start()
	defer ts.Close()

	ds := uploadIris(t, env)
	// Slow enough to idle between epochs: a wide network on full batches.
	job := submitJob(t, env, map[string]any{"model_name": "live", "dataset_id": ds.ID,
		"network":  map[string]any{"hidden": []map[string]any{{"units": 500}, {"units": 500}}},
		"training": map[string]any{"epochs": 1000000, "batch_size": 150}})
	defer doJSON(t, env.h, http.MethodPost, "/v1/jobs/"+job.ID+"/cancel", nil)

	res, err := http.Get(ts.URL + "/v1/jobs/" + job.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var sawStatus, sawEpoch, sawHeartbeat bool
	deadline := time.After(30 * time.Second)
	opened := time.Now()
	for !(sawStatus && sawEpoch && sawHeartbeat) || time.Since(opened) < 2500*time.Millisecond {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended while the job runs")
			}
			sawStatus = sawStatus || l == "event: status"
			sawEpoch = sawEpoch || l == "event: epoch"
			sawHeartbeat = sawHeartbeat || l == ": heartbeat"
		case <-deadline:
			t.Fatalf("live stream: status %v, epoch %v, heartbeat %v after 30 s", sawStatus, sawEpoch, sawHeartbeat)
		}
	}

	srv.SetDraining()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return
			}
			if strings.HasPrefix(l, "data:") && strings.Contains(l, `"status":"succeeded"`) {
				t.Fatal("the job finished; the test needs it running")
			}
		case <-timeout:
			t.Fatal("the stream did not end after SetDraining")
		}
	}
}
