package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
	"github.com/backpropd/backpropd/internal/table"
)

// TestTypedDatasetToRawPredict goes the whole way through the real job
// manager: a typed dataset in the store (penguinsLike, as an upload of a
// table with text, blanks and dates stores it), a job trained on it, then
// raw rows predicted on /v1 and /v2 and the model's metadata.
func TestTypedDatasetToRawPredict(t *testing.T) {
	env := newTestEnv(t, Config{})
	data := penguinsLike(90)
	d := &store.Dataset{Meta: store.DatasetMeta{
		Name: "penguins", Rows: data.Rows, Features: 4, TargetNames: []string{"species"},
		Task: "multiclass", Classes: []string{"Adelie", "Chinstrap", "Gentoo"},
	}, Columns: data.Columns, Labels: data.Labels}
	for _, c := range data.Columns {
		d.Meta.FeatureNames = append(d.Meta.FeatureNames, c.Name)
		s := table.Summary{Name: c.Name, Type: c.Kind, Role: table.Feature, Reason: "inferred"}
		if c.Kind == table.Category {
			s.Distinct = len(c.Levels)
		}
		d.Meta.Columns = append(d.Meta.Columns, s)
	}
	d.Meta.Columns = append(d.Meta.Columns, table.Summary{Name: "species", Type: table.Category, Role: table.Target, Reason: "the target", Distinct: 3})
	meta, err := env.store.CreateDataset(context.Background(), d)
	if err != nil {
		t.Fatalf("CreateDataset: %v", err)
	}
	job := submitJob(t, env, map[string]any{"model_name": "penguins", "dataset_id": meta.ID,
		"network":  map[string]any{"hidden": []map[string]any{{"units": 8, "activation": "tanh"}}},
		"training": map[string]any{"epochs": 30, "batch_size": 8, "optimizer": map[string]any{"name": "adam", "learning_rate": 0.05}}})
	if done := waitJob(t, env, job.ID); done.Status != jobs.Succeeded {
		t.Fatalf("job %s: %s", done.Status, done.Error)
	}

	res := doJSON(t, env.h, http.MethodPost, "/v1/models/penguins/predict", map[string]any{"inputs": []any{
		map[string]any{"island": "Biscoe", "bill_length_mm": 45.2, "date": "2008-11-09"},
		[]any{"Dream", nil, "2009-01-02 08:00:00", 0.3},
		map[string]any{"island": "Torgersen", "bill_length_mm": nil},
		map[string]any{"island": "Atlantis"},
	}})
	if res.Status != http.StatusOK {
		t.Fatalf("predict: %d %s", res.Status, res.Body)
	}
	var got typedPrediction
	res.JSON(t, &got)
	// The island alone decides the species (penguinsLike).
	if want := []string{"Gentoo", "Chinstrap", "Adelie"}; !slices.Equal(got.Predictions[:3], want) {
		t.Errorf("predictions %v, want %v for the three islands", got.Predictions[:3], want)
	}
	if len(got.Warnings) != 1 || !strings.Contains(got.Warnings[0], `"island": 1 of 4 rows`) {
		t.Errorf("warnings %q, want one for the unseen island", got.Warnings)
	}

	v2 := doJSON(t, env.h, http.MethodPost, "/v2/models/penguins/infer", map[string]any{"inputs": []map[string]any{
		{"name": "island", "shape": []int{1}, "datatype": "BYTES", "data": []any{"Dream"}},
		{"name": "bill_length_mm", "shape": []int{1}, "datatype": "FP64", "data": []any{nil}},
		{"name": "date", "shape": []int{1}, "datatype": "BYTES", "data": []any{"2009-01-02 08:00:00"}},
		{"name": "input", "shape": []int{1}, "datatype": "FP64", "data": []any{0.3}},
	}})
	if v2.Status != http.StatusOK {
		t.Fatalf("v2 infer: %d %s", v2.Status, v2.Body)
	}
	var a struct {
		Outputs []struct {
			Name string
			Data []any
		}
	}
	v2.JSON(t, &a)
	for _, o := range a.Outputs {
		if o.Name == "label" && (len(o.Data) != 1 || o.Data[0] != "Chinstrap") {
			t.Errorf("v2 label %v, want [Chinstrap] as on /v1", o.Data)
		}
	}

	mres := doJSON(t, env.h, http.MethodGet, "/v1/models/penguins", nil)
	var mm modelMetaJSON
	mres.JSON(t, &mm)
	if mm.Target != "species" || len(mm.Inputs) != 4 || mm.Inputs[0].Type != "category" || mm.EncodedWidth <= 4 {
		t.Errorf("metadata target %q, %d inputs, width %d: %s", mm.Target, len(mm.Inputs), mm.EncodedWidth, mres.Body)
	}
}

// TestUploadedTableToRawPredict: a CSV with text, blanks and dates,
// uploaded as it is, trained, and predicted from raw rows in the same
// form as the file's cells; dates parse on predict as on upload.
func TestUploadedTableToRawPredict(t *testing.T) {
	env := newTestEnv(t, Config{})
	var csv strings.Builder
	csv.WriteString("island,bill_length_mm,date,species\n")
	islands := []string{"Biscoe", "Dream", "Torgersen"}
	for i := range 90 {
		isl := islands[i%3]
		bill := fmt.Sprintf("%.1f", 40+float64(i%7))
		if i%10 == 9 {
			bill = "NA"
		}
		fmt.Fprintf(&csv, "%s,%s,2008-%02d-%02d,%s\n", isl, bill, 1+i%12, 1+i%28, penguinsIslands[isl])
	}
	res := doRaw(t, env.h, http.MethodPost, "/v1/datasets?name=p&target=species", "text/csv", []byte(csv.String()))
	if res.Status != http.StatusCreated {
		t.Fatalf("upload: %d %s", res.Status, res.Body)
	}
	var ds store.DatasetMeta
	res.JSON(t, &ds)
	job := submitJob(t, env, map[string]any{"model_name": "p", "dataset_id": ds.ID,
		"network":  map[string]any{"hidden": []map[string]any{{"units": 8, "activation": "tanh"}}},
		"training": map[string]any{"epochs": 30, "batch_size": 8, "optimizer": map[string]any{"name": "adam", "learning_rate": 0.05}}})
	if done := waitJob(t, env, job.ID); done.Status != jobs.Succeeded {
		t.Fatalf("job %s: %s", done.Status, done.Error)
	}
	res = doJSON(t, env.h, http.MethodPost, "/v1/models/p/predict", map[string]any{"inputs": []any{
		map[string]any{"island": "Biscoe", "bill_length_mm": 41.5, "date": "2008-03-04"},
		[]any{"Dream", nil, "2008/05/06"},
		map[string]any{"island": "Torgersen"},
	}})
	if res.Status != http.StatusOK {
		t.Fatalf("predict: %d %s", res.Status, res.Body)
	}
	var got typedPrediction
	res.JSON(t, &got)
	if want := []string{"Gentoo", "Chinstrap", "Adelie"}; !slices.Equal(got.Predictions, want) {
		t.Errorf("predictions %v, want %v (the island decides)", got.Predictions, want)
	}
	mres := doJSON(t, env.h, http.MethodGet, "/v1/models/p", nil)
	var mm modelMetaJSON
	mres.JSON(t, &mm)
	var kinds []string
	for _, in := range mm.Inputs {
		kinds = append(kinds, in.Name+":"+in.Type)
	}
	if want := []string{"island:category", "bill_length_mm:number", "date:datetime"}; !slices.Equal(kinds, want) || mm.Target != "species" {
		t.Errorf("inputs %v, target %q; want %v and species", kinds, mm.Target, want)
	}
}
