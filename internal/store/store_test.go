package store

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
)

func mustOpen(tb testing.TB, dir string) *Store {
	tb.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func regressionDataset(rows, feats int) *Dataset {
	d := &Dataset{Meta: DatasetMeta{Name: "reg", Rows: rows, Features: feats, Task: "regression", TargetNames: []string{"y"}}}
	for i := range feats {
		d.Meta.FeatureNames = append(d.Meta.FeatureNames, "x"+string(rune('a'+i%26)))
	}
	d.X = make([]float64, rows*feats)
	for i := range d.X {
		d.X[i] = float64(i)*0.25 - 3
	}
	d.Targets = make([]float64, rows)
	for i := range d.Targets {
		d.Targets[i] = float64(i) / 7
	}
	return d
}

func labelDataset(rows int) *Dataset {
	d := &Dataset{Meta: DatasetMeta{Name: "cls", Rows: rows, Features: 2, FeatureNames: []string{"a", "b"},
		TargetNames: []string{"class"}, Task: "multiclass", Classes: []string{"", "cat", "dög"}}}
	for i := range rows {
		d.X = append(d.X, float64(i), -float64(i))
		d.Labels = append(d.Labels, d.Meta.Classes[i%3])
	}
	return d
}

func TestDatasetRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := mustOpen(t, dir)
	for name, d := range map[string]*Dataset{"targets": regressionDataset(50, 3), "labels": labelDataset(31)} {
		t.Run(name, func(t *testing.T) {
			meta, err := s.CreateDataset(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if checkID("dataset", meta.ID) != nil || meta.CreatedAt.IsZero() || meta.SizeBytes <= 0 {
				t.Fatalf("meta not filled: %+v", meta)
			}
			got, err := s.LoadDataset(ctx, meta.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.X, d.X) || !reflect.DeepEqual(got.Targets, d.Targets) || !reflect.DeepEqual(got.Labels, d.Labels) {
				t.Fatalf("LoadDataset differs from what was stored")
			}
			if !reflect.DeepEqual(got.Meta, meta) {
				t.Fatalf("meta: got %+v, want %+v", got.Meta, meta)
			}
		})
	}
}

func TestModelVersionsConcurrent(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, t.TempDir())
	const n = 16
	var wg sync.WaitGroup
	got := make([]int, n)
	for i := range n {
		wg.Go(func() {
			m, err := s.PutModel(ctx, ModelMeta{Name: "m"}, []byte{byte(i)})
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = m.Version
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, v := range got {
		seen[v] = true
	}
	for v := 1; v <= n; v++ {
		if !seen[v] {
			t.Fatalf("versions %v: want each of 1..%d exactly once", got, n)
		}
	}
	m, file, err := s.ModelFile(ctx, "m", 0)
	if err != nil || m.Version != n || len(file) != 1 {
		t.Fatalf("ModelFile latest = %d, %v, %v", m.Version, file, err)
	}
	if _, err := s.ModelMeta(ctx, "m", n+1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown version: %v, want ErrNotFound", err)
	}
}
