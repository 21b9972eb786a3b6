package metrics

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
)

// perModelFamilies are the metric families labelled by model_name alone.
var perModelFamilies = []string{
	"backpropd_predictions_total",
	"backpropd_prediction_duration_seconds",
	"backpropd_training_epochs_total",
	"backpropd_training_samples_total",
}

// modelNames gathers the model_name values of each per-model family.
func modelNames(tb testing.TB, g prometheus.Gatherer) map[string][]string {
	tb.Helper()
	mfs, err := g.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]string{}
	for _, mf := range mfs {
		for _, fam := range perModelFamilies {
			if mf.GetName() != fam {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "model_name" {
						out[fam] = append(out[fam], l.GetValue())
					}
				}
			}
			sort.Strings(out[fam])
		}
	}
	return out
}

func TestModelSeriesBoundedByMaxModels(t *testing.T) {
	const max = 3
	m, reg := mustNew(t, Options{MaxModels: max})
	// m0..m9 each predict i+1 rows and train one epoch of 10 rows.
	for i := range 10 {
		name := fmt.Sprint("m", i)
		m.ObservePrediction(name, i+1, time.Millisecond)
		m.JobEpoch(jobs.Job{ID: "j" + name, ModelName: name}, engine.Epoch{Epoch: 1, SamplesPerSecond: 10, DurationSeconds: 1})
	}
	want := []string{"m0", "m1", "m2", OtherModel}
	for _, fam := range perModelFamilies {
		if got := modelNames(t, reg)[fam]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s model names %v, want %v (the first %d and %q)", fam, got, want, max, OtherModel)
		}
	}
	// m3..m9 predicted 4+5+...+10 = 49 rows, in 7 epochs of 10 rows.
	if got := testutil.ToFloat64(m.predictionsTotal.WithLabelValues(OtherModel)); got != 49 {
		t.Errorf("predictions_total{other} = %g, want 49", got)
	}
	if got := testutil.ToFloat64(m.samplesTotal.WithLabelValues(OtherModel)); got != 70 {
		t.Errorf("samples_total{other} = %g, want 70", got)
	}
	if got := testutil.ToFloat64(m.predictionsTotal.WithLabelValues("m1")); got != 2 {
		t.Errorf("predictions_total{m1} = %g, want 2", got)
	}

	// Deleting m1 drops its series and frees its place for the next new
	// name; deleting m5, counted under other, leaves other alone.
	m.ModelDeleted("m1")
	m.ModelDeleted("m5")
	m.ObservePrediction("new", 1, time.Millisecond)
	m.ObservePrediction("m6", 1, time.Millisecond)
	if got, want := modelNames(t, reg)["backpropd_predictions_total"], []string{"m0", "m2", "new", OtherModel}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after deleting m1: predictions_total model names %v, want %v", got, want)
	}
	if got, want := modelNames(t, reg)["backpropd_training_epochs_total"], []string{"m0", "m2", OtherModel}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after deleting m1: epochs_total model names %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(m.predictionsTotal.WithLabelValues(OtherModel)); got != 50 {
		t.Errorf("predictions_total{other} = %g, want 49 + 1 from m6", got)
	}
}

func TestNewRejectsNegativeMaxModels(t *testing.T) {
	if _, err := New(prometheus.NewRegistry(), Options{MaxModels: -1}); err == nil {
		t.Fatal("New with MaxModels -1: no error")
	}
}

// Deletes racing observations of the same names never leave more series
// than the bound, and a name deleted after its last observation has none.
func TestModelDeletedRacingObservations(t *testing.T) {
	const max = 4
	m, reg := mustNew(t, Options{MaxModels: max})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				name := fmt.Sprint("m", (w*7+i)%10)
				m.ObservePrediction(name, 1, time.Microsecond)
				if i%3 == 0 {
					m.ModelDeleted(name)
				}
			}
		})
	}
	wg.Wait()
	if got := len(modelNames(t, reg)["backpropd_predictions_total"]); got > max+1 {
		t.Errorf("%d model names, want at most %d + other", got, max)
	}
	for i := range 10 {
		m.ModelDeleted(fmt.Sprint("m", i))
	}
	for _, n := range modelNames(t, reg)["backpropd_predictions_total"] {
		if n != OtherModel {
			t.Errorf("series of %s outlived its delete", n)
		}
	}
}
