package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

// TestMixedCSVTrains uploads a table with a number column with blanks, a
// text column and a date column as it is, checks each column's inferred
// type, trains on it with preprocessing and class weights, and checks the
// job succeeds.
func TestMixedCSVTrains(t *testing.T) {
	env := newTestEnv(t, Config{})
	var b strings.Builder
	b.WriteString("x,colour,day,y\n")
	for i := range 60 {
		x := fmt.Sprint(i % 7)
		if i%5 == 0 {
			x = ""
		}
		fmt.Fprintf(&b, "%s,%s,2024-01-%02d,%s\n", x, []string{"red", "green", "blue"}[i%3], 1+i%28, []string{"no", "yes"}[i%2])
	}
	res := doRaw(t, env.h, http.MethodPost, "/v1/datasets?name=mixed&target=y", "text/csv", []byte(b.String()))
	if res.Status != http.StatusCreated {
		t.Fatalf("upload: %d %s", res.Status, res.Body)
	}
	var ds store.DatasetMeta
	res.JSON(t, &ds)
	if !ds.Typed || len(ds.Columns) != 4 {
		t.Fatalf("dataset %+v; want typed with 4 column summaries", ds)
	}
	want := map[string]string{"x": "number", "colour": "category", "day": "datetime", "y": "category"}
	for _, c := range ds.Columns {
		if string(c.Type) != want[c.Name] {
			t.Errorf("column %s is %s, want %s", c.Name, c.Type, want[c.Name])
		}
	}
	j := submitJob(t, env, map[string]any{"model_name": "mixed", "dataset_id": ds.ID,
		"preprocessing": map[string]any{"scaling": "minmax"},
		"training":      map[string]any{"epochs": 3, "class_weight": "balanced"}})
	got := waitJob(t, env, j.ID)
	if got.Status != jobs.Succeeded {
		t.Fatalf("job ended %s: %s", got.Status, got.Error)
	}
}
