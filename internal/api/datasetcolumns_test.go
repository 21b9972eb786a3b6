package api

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

// TestDatasetShowsColumns stores a dataset of typed columns with its
// column summaries, warnings and dropped rows, and checks that GET
// /v1/datasets/{id} shows them as the contract describes them (the
// contract test validates the body against api/openapi.yaml).
func TestDatasetShowsColumns(t *testing.T) {
	env := newTestEnv(t, Config{})
	lo, hi, mean, std := 1.0, 4.0, 2.5, 1.29
	first := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	last := first.Add(72 * time.Hour)
	d := &store.Dataset{
		Meta: store.DatasetMeta{Name: "mixed", Rows: 4, Features: 3, TargetNames: []string{"y"}, Task: "binary",
			Classes: []string{"a", "b"}, DroppedRows: 1, Warnings: []string{"1 row without a target was dropped", `column "id" is identifier-like and ignored`},
			Columns: []table.Summary{
				{Name: "n", Type: table.Number, Role: table.Feature, Reason: "every cell is a number", Missing: 1, Distinct: 3, Min: &lo, Max: &hi, Mean: &mean, Std: &std},
				{Name: "c", Type: table.Category, Role: table.Feature, Reason: "text", Distinct: 2, TopLevels: []table.LevelCount{{Level: "x", Count: 3}, {Level: "y", Count: 1}}},
				{Name: "d", Type: table.Datetime, Role: table.Feature, Reason: "ISO 8601 dates", Distinct: 4, First: &first, Last: &last},
				{Name: "id", Type: table.Category, Role: table.Ignored, Reason: "identifier-like: 4 distinct values in 4 rows", Distinct: 4},
				{Name: "y", Type: table.Category, Role: table.Target, Reason: "the target", Distinct: 2},
			}},
		Columns: []table.Column{
			{Name: "n", Kind: table.Number, Values: []float64{1, math.NaN(), 4, 2.5}},
			{Name: "c", Kind: table.Category, Codes: []int32{0, 0, 1, 0}, Levels: []string{"x", "y"}},
			{Name: "d", Kind: table.Datetime, Values: []float64{1704153600, 1704240000, 1704326400, 1704412800}},
		},
		Labels: []string{"a", "b", "a", "b"},
	}
	meta, err := env.store.CreateDataset(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	res := doJSON(t, env.h, http.MethodGet, "/v1/datasets/"+meta.ID, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("GET: %d %s", res.Status, res.Body)
	}
	var got store.DatasetMeta
	res.JSON(t, &got)
	if len(got.Columns) != 5 || got.Columns[2].First == nil || !got.Columns[2].First.Equal(first) || got.DroppedRows != 1 ||
		len(got.Warnings) != 2 || !got.Typed || len(got.FeatureNames) != 3 || got.FeatureNames[2] != "d" {
		t.Errorf("dataset shows %+v", got)
	}
}
