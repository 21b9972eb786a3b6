package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestUnknownQueryParameters checks that the routes taking query parameters
// reject the ones they do not take, naming each as query.<name>, instead of
// serving the request as if it were absent: ?taget=a used to store a
// dataset with the last column as its target, ?stauts=running listed every
// job, and a JSON upload silently dropped ?name=&target=.
func TestUnknownQueryParameters(t *testing.T) {
	env := newTestEnv(t, Config{})
	const csv = "a,b,y\n1,2,p\n3,4,q\n"
	const json = `{"name":"t","features":[[0],[1]],"targets":[0,1]}`
	for _, tc := range []struct {
		name, method, target, ct, body string
		fields                         []string // want 400 naming these; nil wants success
		message                        string   // in the first field's message
	}{
		{"CSV typo", http.MethodPost, "/v1/datasets?name=t&taget=a", "text/csv", csv,
			[]string{"query.taget"}, "this route takes name, target, task"},
		{"CSV two unknown", http.MethodPost, "/v1/datasets?name=t&zz=1&aa=2", "text/csv", csv,
			[]string{"query.aa", "query.zz"}, "unknown query parameter"},
		{"CSV known", http.MethodPost, "/v1/datasets?name=t&target=y&task=binary", "text/csv", csv, nil, ""},
		{"JSON with the CSV name", http.MethodPost, "/v1/datasets?name=t", "application/json", json,
			[]string{"query.name"}, "applies to text/csv uploads only"},
		{"JSON with the CSV target", http.MethodPost, "/v1/datasets?target=a", "application/json", json,
			[]string{"query.target"}, "applies to text/csv uploads only"},
		{"JSON typo", http.MethodPost, "/v1/datasets?nmae=t", "application/json", json,
			[]string{"query.nmae"}, "this route takes none"},
		{"JSON without query", http.MethodPost, "/v1/datasets", "application/json", json, nil, ""},
		{"jobs list typo", http.MethodGet, "/v1/jobs?stauts=running", "", "",
			[]string{"query.stauts"}, "this route takes status, model_name, limit, cursor"},
		{"jobs list known", http.MethodGet, "/v1/jobs?status=running&model_name=m&limit=5", "", "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			res := doRaw(t, env.h, tc.method, tc.target, tc.ct, body)
			if tc.fields == nil {
				if res.Status >= 300 {
					t.Fatalf("%d %s, want success", res.Status, res.Body)
				}
				return
			}
			if res.Status != http.StatusBadRequest {
				t.Fatalf("%d %s, want 400", res.Status, res.Body)
			}
			p := res.Problem(t)
			var got []string
			for _, fe := range p.Errors {
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("fields %v, want %v", got, tc.fields)
			}
			if !strings.Contains(p.Errors[0].Message, tc.message) || !strings.Contains(p.Detail, tc.fields[0]) {
				t.Errorf("detail %q, message %q; want the field and %q", p.Detail, p.Errors[0].Message, tc.message)
			}
		})
	}
}
