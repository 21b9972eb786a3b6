package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/pagecursor"
)

// pageIDs pages through list with f until the end and returns the ids of
// each page.
func pageIDs(tb testing.TB, list []DatasetMeta, f DatasetFilter) [][]string {
	tb.Helper()
	var pages [][]string
	for range len(list) + 2 {
		page, next, err := PageDatasets(list, f)
		if err != nil {
			tb.Fatalf("PageDatasets(%+v): %v", f, err)
		}
		var ids []string
		for _, m := range page {
			ids = append(ids, m.ID)
		}
		pages = append(pages, ids)
		if next == "" {
			return pages
		}
		f.Cursor = next
	}
	tb.Fatalf("PageDatasets(%+v) does not end", f)
	return nil
}

func TestPageDatasets(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	// Newest first as ListDatasets sorts: d1 and d2 share a creation time
	// and are ordered by id.
	list := []DatasetMeta{
		{ID: "d0", Name: "iris", CreatedAt: t0.Add(3 * time.Second)},
		{ID: "d1", Name: "wine", CreatedAt: t0.Add(2 * time.Second)},
		{ID: "d2", Name: "iris", CreatedAt: t0.Add(2 * time.Second)},
		{ID: "d3", Name: "iris", CreatedAt: t0.Add(time.Second)},
		{ID: "d4", Name: "wine", CreatedAt: t0},
	}
	for _, tc := range []struct {
		name string
		f    DatasetFilter
		want [][]string
	}{
		{"default page holds all five", DatasetFilter{}, [][]string{{"d0", "d1", "d2", "d3", "d4"}}},
		{"pages of two, across the tie", DatasetFilter{Limit: 2}, [][]string{{"d0", "d1"}, {"d2", "d3"}, {"d4"}}},
		{"exact fit has no empty last page", DatasetFilter{Limit: 5}, [][]string{{"d0", "d1", "d2", "d3", "d4"}}},
		{"by name", DatasetFilter{Name: "iris"}, [][]string{{"d0", "d2", "d3"}}},
		{"by name, pages of one", DatasetFilter{Name: "wine", Limit: 1}, [][]string{{"d1"}, {"d4"}}},
		{"unknown name", DatasetFilter{Name: "nope"}, [][]string{nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pageIDs(t, list, tc.f); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("pages %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("a deleted cursor dataset skips nothing", func(t *testing.T) {
		page, next, err := PageDatasets(list, DatasetFilter{Limit: 2})
		if err != nil || len(page) != 2 {
			t.Fatalf("first page %v, %v", page, err)
		}
		// d1, the cursor's dataset, and d0 are deleted before the next page.
		rest, _, err := PageDatasets(list[2:], DatasetFilter{Limit: 2, Cursor: next})
		if err != nil || len(rest) != 2 || rest[0].ID != "d2" || rest[1].ID != "d3" {
			t.Errorf("after deleting the cursor's dataset: %v, %v; want d2, d3", rest, err)
		}
	})
}

func TestPageDatasetsBadCursor(t *testing.T) {
	for _, c := range []string{
		"garbage!",
		pagecursor.Encode("seq", "42"), // a job list cursor
		pagecursor.Encode("dataset", "not-a-time d1"),                           // broken time
		pagecursor.Encode("dataset", time.Now().UTC().Format(time.RFC3339Nano)), // no id
	} {
		t.Run(fmt.Sprintf("%.20s", c), func(t *testing.T) {
			if _, _, err := PageDatasets(nil, DatasetFilter{Cursor: c}); !errors.Is(err, pagecursor.ErrInvalid) {
				t.Errorf("PageDatasets(cursor %q) = %v, want ErrInvalid", c, err)
			}
		})
	}
}

// TestPageDatasetsOverStore pages through real stored datasets: the pages
// together are ListDatasets' list, each dataset once, in its order, and
// without the hidden one.
func TestPageDatasetsOverStore(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	visible := map[string]bool{}
	for i := range 5 {
		d := regressionDataset(3, 2)
		d.Meta.Hidden = i == 2
		m := mustCreateDataset(t, s, d)
		visible[m.ID] = !m.Hidden
	}
	list, err := s.ListDatasets(bg)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range list {
		want = append(want, m.ID)
	}
	got := slices.Concat(pageIDs(t, list, DatasetFilter{Limit: 3})...)
	if !slices.Equal(got, want) || len(got) != 4 {
		t.Errorf("paged ids %v, want the 4 visible ones in list order %v", got, want)
	}
	for _, id := range got {
		if !visible[id] {
			t.Errorf("hidden dataset %s paged", id)
		}
	}
}
