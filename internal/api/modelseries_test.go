package api

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/metrics"
	"github.com/backpropd/backpropd/internal/store"
)

// predictionSeries scrapes /metrics and lists the model_name values of
// backpropd_predictions_total.
func predictionSeries(tb testing.TB, h http.Handler) []string {
	tb.Helper()
	res := doRaw(tb, h, http.MethodGet, "/metrics", "", nil)
	if res.Status != http.StatusOK {
		tb.Fatalf("GET /metrics: %d", res.Status)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^backpropd_predictions_total\{model_name="([^"]*)"\}`).FindAllSubmatch(res.Body, -1) {
		names = append(names, string(m[1]))
	}
	slices.Sort(names)
	return names
}

// Predictions on more model names than --metrics-max-models keep at most
// that many series plus "other", through the real router and the real
// metrics; deleting a model, or its last version, drops its series.
func TestModelSeriesBoundedAndDeleted(t *testing.T) {
	const max = 3
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	met, err := metrics.New(reg, metrics.Options{MaxModels: max})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{Store: st, Jobs: &fakeJobs{jobs: map[string]jobs.Job{}}, Observer: met,
		Metrics: metrics.Handler(reg, nil)})
	h := srv.Handler()
	e := &modelEnv{t: t, dir: dir, store: st, srv: srv, h: h}

	tm := mustTrain(t, "regressor")
	var names []string
	for i := range 6 {
		name := fmt.Sprint("lin", i)
		names = append(names, name)
		e.putModel(name, tm)
		if res := e.postJSON(t, "/v1/models/"+name+"/predict", `{"inputs":[[0.5,1]]}`); res.Status != http.StatusOK {
			t.Fatalf("predict %s: %d %s", name, res.Status, res.Body)
		}
	}
	if got, want := predictionSeries(t, h), []string{"lin0", "lin1", "lin2", metrics.OtherModel}; !slices.Equal(got, want) {
		t.Fatalf("series after predicting on 6 models with a cap of %d: %v, want %v", max, got, want)
	}

	if res := e.call(t, http.MethodDelete, "/v1/models/lin1", "", nil); res.Status != http.StatusNoContent {
		t.Fatalf("DELETE lin1: %d %s", res.Status, res.Body)
	}
	e.putModel("lin0", tm) // version 2: deleting version 1 leaves the model
	for _, v := range []string{"lin0/versions/1", "lin2/versions/1"} {
		if res := e.call(t, http.MethodDelete, "/v1/models/"+v, "", nil); res.Status != http.StatusNoContent {
			t.Fatalf("DELETE %s: %d %s", v, res.Status, res.Body)
		}
	}
	if got, want := predictionSeries(t, h), []string{"lin0", metrics.OtherModel}; !slices.Equal(got, want) {
		t.Fatalf("series after deleting lin1 and lin2's only version: %v, want %v", got, want)
	}
	// The freed places go to the next names predicted on.
	for _, name := range names[3:5] {
		e.postJSON(t, "/v1/models/"+name+"/predict", `{"inputs":[[0.5,1]]}`)
	}
	if got, want := predictionSeries(t, h), []string{"lin0", "lin3", "lin4", metrics.OtherModel}; !slices.Equal(got, want) {
		t.Fatalf("series after predicting again: %v, want %v", got, want)
	}
}
