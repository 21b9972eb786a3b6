package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestListDatasetsQuery: GET /v1/datasets used to ignore every query
// parameter (?name=iris, ?limit=2 and ?bogus=1 all returned every
// dataset). It now takes the rules of GET /v1/jobs: name filters, limit
// and cursor page newest first, anything else is a 400 naming it.
func TestListDatasetsQuery(t *testing.T) {
	env := newTestEnv(t, Config{})
	var ids []string // oldest first
	for _, name := range []string{"iris", "wine", "iris", "iris"} {
		ids = append(ids, mustDataset(t, env, `{"name":"`+name+`","features":[[0],[1]],"targets":[0,1]}`).ID)
	}
	list := func(t *testing.T, query string) ([]string, string) {
		t.Helper()
		res := doJSON(t, env.h, http.MethodGet, "/v1/datasets"+query, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("list%s: %d %s", query, res.Status, res.Body)
		}
		var page datasetList
		res.JSON(t, &page)
		var got []string
		for _, m := range page.Datasets {
			got = append(got, m.ID)
		}
		return got, page.NextCursor
	}
	for _, tc := range []struct {
		query    string
		want     []string
		wantNext bool
	}{
		{"", []string{ids[3], ids[2], ids[1], ids[0]}, false},
		{"?name=iris", []string{ids[3], ids[2], ids[0]}, false},
		{"?name=wine", []string{ids[1]}, false},
		{"?name=nope", nil, false},
		{"?limit=2", []string{ids[3], ids[2]}, true},
		{"?name=iris&limit=3", []string{ids[3], ids[2], ids[0]}, false},
		{"?cursor=", []string{ids[3], ids[2], ids[1], ids[0]}, false}, // empty: the first page, as for jobs
	} {
		t.Run(tc.query, func(t *testing.T) {
			got, next := list(t, tc.query)
			if !slices.Equal(got, tc.want) || (next != "") != tc.wantNext {
				t.Errorf("ids %v next %q, want %v (next cursor %v)", got, next, tc.want, tc.wantNext)
			}
		})
	}

	// Following next_cursor visits every iris dataset once, newest first.
	var all []string
	query := "?name=iris&limit=1"
	for range 5 {
		got, next := list(t, query)
		all = append(all, got...)
		if next == "" {
			break
		}
		query = "?name=iris&limit=1&cursor=" + next
	}
	if want := []string{ids[3], ids[2], ids[0]}; !slices.Equal(all, want) {
		t.Errorf("pages of one give %v, want %v", all, want)
	}

	for _, tc := range []struct {
		query, field, message string
	}{
		{"?bogus=1", "query.bogus", "this route takes name, limit, cursor"},
		{"?nmae=iris", "query.nmae", "unknown query parameter"},
		{"?limit=0", "query.limit", "from 1 to 1000"},
		{"?limit=1001", "query.limit", "from 1 to 1000"},
		{"?limit=two", "query.limit", `got "two"`},
		{"?cursor=bm90LWEtY3Vyc29y", "query.cursor", "not a cursor returned by a previous page"},
		{"?cursor=c2VxOjQy", "query.cursor", "not a cursor returned by a previous page"}, // a job list cursor
	} {
		t.Run("bad "+tc.query, func(t *testing.T) {
			res := doJSON(t, env.h, http.MethodGet, "/v1/datasets"+tc.query, nil)
			p := res.Problem(t)
			if res.Status != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != tc.field ||
				!strings.Contains(p.Errors[0].Message, tc.message) || !strings.Contains(p.Detail, tc.field) {
				t.Errorf("%d %+v; want 400 naming %s with %q", res.Status, p, tc.field, tc.message)
			}
		})
	}
}
