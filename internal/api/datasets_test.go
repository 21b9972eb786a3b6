package api

import (
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/store"
)

func readIris(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile("../../examples/iris.csv")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// uploadIris stores examples/iris.csv and returns its metadata.
func uploadIris(tb testing.TB, env *testEnv, hdr ...string) store.DatasetMeta {
	tb.Helper()
	res := doRaw(tb, env.h, http.MethodPost, "/v1/datasets?name=iris&target=species", "text/csv", readIris(tb), hdr...)
	if res.Status != http.StatusCreated {
		tb.Fatalf("upload iris: %d %s", res.Status, res.Body)
	}
	var meta store.DatasetMeta
	res.JSON(tb, &meta)
	if got, want := res.Header.Get("Location"), "/v1/datasets/"+meta.ID; got != want {
		tb.Errorf("Location = %q, want %q", got, want)
	}
	return meta
}

func TestDatasetCSVLifecycle(t *testing.T) {
	env := newTestEnv(t, Config{})
	meta := uploadIris(t, env)
	// 150 rows, 4 measurements and 3 species: Fisher's iris data.
	if meta.Rows != 150 || meta.Features != 4 || meta.Task != "multiclass" ||
		!slices.Equal(meta.Classes, []string{"setosa", "versicolor", "virginica"}) ||
		!slices.Equal(meta.FeatureNames, []string{"sepal_length", "sepal_width", "petal_length", "petal_width"}) ||
		!slices.Equal(meta.TargetNames, []string{"species"}) || meta.Name != "iris" {
		t.Fatalf("iris metadata = %+v", meta)
	}

	res := doJSON(t, env.h, http.MethodGet, "/v1/datasets/"+meta.ID, nil)
	var got store.DatasetMeta
	res.JSON(t, &got)
	if res.Status != http.StatusOK || got.ID != meta.ID || got.Rows != 150 {
		t.Fatalf("GET dataset: %d %+v", res.Status, got)
	}

	res = doJSON(t, env.h, http.MethodGet, "/v1/datasets", nil)
	var list struct{ Datasets []store.DatasetMeta }
	res.JSON(t, &list)
	if len(list.Datasets) != 1 || list.Datasets[0].ID != meta.ID {
		t.Fatalf("list = %+v", list)
	}

	// The stored numbers are the file's: row 0 is 5.1,3.5,1.4,0.2,setosa.
	d, err := env.store.LoadDataset(t.Context(), meta.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.X[:4], []float64{5.1, 3.5, 1.4, 0.2}) || d.Labels[0] != "setosa" || d.Labels[149] != "virginica" {
		t.Fatalf("stored row 0 = %v %q, row 149 label %q", d.X[:4], d.Labels[0], d.Labels[149])
	}

	if res := doJSON(t, env.h, http.MethodDelete, "/v1/datasets/"+meta.ID, nil); res.Status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", res.Status, res.Body)
	}
	res = doJSON(t, env.h, http.MethodGet, "/v1/datasets/"+meta.ID, nil)
	if p := res.Problem(t); res.Status != http.StatusNotFound || !strings.Contains(p.Detail, meta.ID) {
		t.Fatalf("GET after delete: %d %+v", res.Status, p)
	}
}

func TestDatasetUploadForms(t *testing.T) {
	env := newTestEnv(t, Config{})
	tests := []struct {
		name, path, ct, body string
		wantTask             string
		wantClasses          []string
		wantTargets          []string
		wantFeatures         []string
	}{
		{"csv regression, last column by default", "/v1/datasets?name=r", "text/csv",
			"a,b,y\n1,2,3.5\n4,5,6\n", "regression", nil, []string{"y"}, []string{"a", "b"}},
		{"csv BOM and CRLF", "/v1/datasets?name=r", "text/csv; charset=utf-8",
			"\ufeffa,b,y\r\n1,2,3.5\r\n4,5,6\r\n", "regression", nil, []string{"y"}, []string{"a", "b"}},
		{"csv two string classes are binary", "/v1/datasets?name=b&target=label", "text/csv",
			"label,x\nyes,1\nno,2\nyes,3\n", "binary", []string{"no", "yes"}, []string{"label"}, []string{"x"}},
		{"csv numeric labels with task=multiclass", "/v1/datasets?name=m&target=y&task=multiclass", "text/csv",
			"x,y\n1,0\n2,1\n3,2\n", "multiclass", []string{"0", "1", "2"}, []string{"y"}, []string{"x"}},
		{"csv two targets are multi-output regression", "/v1/datasets?name=mo&target=y1,y2", "text/csv",
			"x,y1,y2\n1,2,3\n4,5,6\n", "regression", nil, []string{"y1", "y2"}, []string{"x"}},
		{"csv quoted header and cells", "/v1/datasets?name=q&target=y", "text/csv",
			"\"x\",\"y\"\n\"1\",\"a\"\n\"2\",\"b\"\n", "binary", []string{"a", "b"}, []string{"y"}, []string{"x"}},
		{"json labels", "/v1/datasets", "application/json",
			`{"name":"xor","features":[[0,0],[0,1],[1,0],[1,1]],"targets":["no","yes","yes","no"]}`,
			"binary", []string{"no", "yes"}, []string{"target"}, []string{"x1", "x2"}},
		{"json arrays with names", "/v1/datasets", "application/json",
			`{"name":"mo","feature_names":["a"],"target_names":["p","q"],"features":[[1],[2]],"targets":[[1,2],[3,4]]}`,
			"regression", nil, []string{"p", "q"}, []string{"a"}},
		{"json multi-label binary", "/v1/datasets", "application/json",
			`{"name":"ml","task":"binary","features":[[1],[2]],"targets":[[1,0],[0,1]]}`,
			"binary", nil, []string{"y1", "y2"}, []string{"x1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := doRaw(t, env.h, http.MethodPost, tc.path, tc.ct, []byte(tc.body))
			if res.Status != http.StatusCreated {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			var m store.DatasetMeta
			res.JSON(t, &m)
			if m.Task != tc.wantTask || !slices.Equal(m.Classes, tc.wantClasses) ||
				!slices.Equal(m.TargetNames, tc.wantTargets) || !slices.Equal(m.FeatureNames, tc.wantFeatures) {
				t.Fatalf("got task %q classes %q targets %q features %q; want %q %q %q %q",
					m.Task, m.Classes, m.TargetNames, m.FeatureNames, tc.wantTask, tc.wantClasses, tc.wantTargets, tc.wantFeatures)
			}
		})
	}
}
