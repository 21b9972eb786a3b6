package api

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badInput is one hostile or broken request and what the server must say.
type badInput struct {
	name   string
	method string
	path   string // "{ds}" is replaced by a stored dataset's id
	ct     string // Content-Type; "" sends none
	body   string
	status int
	// want appears in the problem's detail or in one of its errors
	// (field or message), so the client learns what was wrong and where.
	want string
}

const jsonCT = "application/json"

// badInputs is the list of bad requests for the dataset, job and generic
// HTTP surface, one line per case. The model and /v2 cases live with their
// handlers.
var badInputs = []badInput{
	// JSON bodies.
	{"malformed JSON", "POST", "/v1/jobs", jsonCT, `{"model_name": "m",`, 400, "malformed JSON"},
	{"trailing garbage", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}"} xyz`, 400, "unexpected data after the JSON value"},
	{"two values", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}"}{}`, 400, "unexpected data after the JSON value"},
	{"unknown top-level field", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}","epochs":3}`, 400, "epochs"},
	{"unknown nested field", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}","network":{"hidden":[{"units":3},{"units":3,"activaton":"relu"}]}}`, 400, "network.hidden[1].activaton"},
	{"wrong type nested", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}","network":{"hidden":[{"units":3},{"units":"many"}]}}`, 400, "network.hidden[1].units"},
	{"fraction where integer", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}","training":{"epochs":1.5}}`, 400, "training.epochs"},
	{"null model name", "POST", "/v1/jobs", jsonCT, `{"model_name":null,"dataset_id":"{ds}"}`, 400, "model_name"},
	{"missing data", "POST", "/v1/jobs", jsonCT, `{"model_name":"m"}`, 400, "dataset_id"},
	{"both data and dataset", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","dataset_id":"{ds}","data":{"features":[[1]],"targets":[1]}}`, 400, "data"},
	{"array body", "POST", "/v1/jobs", jsonCT, `[1,2]`, 400, "object"},
	{"empty body", "POST", "/v1/jobs", jsonCT, ``, 400, "empty"},
	{"invalid UTF-8", "POST", "/v1/jobs", jsonCT, "{\"model_name\":\"m\xff\xfe\",\"dataset_id\":\"{ds}\"}", 400, "UTF-8"},
	{"deep nesting", "POST", "/v1/jobs", jsonCT, strings.Repeat("[", 10000) + strings.Repeat("]", 10000), 400, "max depth"},
	{"nesting just past the limit", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}}`, 400, "column 100"},
	{"brackets in strings do not nest", "POST", "/v1/jobs", jsonCT, `{"model_name":"` + strings.Repeat("[", 100) + `\"{{"}`, 400, "dataset_id"},
	{"nesting at the limit decodes", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":` + strings.Repeat("[", 62) + strings.Repeat("]", 62) + `}}`, 400, "data.features[0][0]"},
	{"deep nesting in a field", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}}`, 400, "max depth"},
	{"nesting past the decoder's depth limit", "POST", "/v1/jobs", jsonCT, strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000), 400, "max depth"},
	{"NaN literal in inline features", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[NaN]],"targets":[1]}}`, 400, "malformed JSON"},
	{"Infinity literal", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[Infinity]],"targets":[1]}}`, 400, "malformed JSON"},
	{"1e999 in inline features", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1],[1e999]],"targets":[1,2]}}`, 400, "data.features[1][0]"},
	{"NaN as string", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1],["NaN"]],"targets":[1,2]}}`, 400, "data.features[1][0]"},
	{"null feature", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1],[null]],"targets":[1,2]}}`, 400, "data.features[1][0]"},
	{"empty features", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[],"targets":[]}}`, 400, "data.features"},
	{"ragged inline rows", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1,2],[3]],"targets":[1,2]}}`, 400, "data.features[1]"},
	{"targets count differs", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1],[2]],"targets":[1]}}`, 400, "data.targets"},
	{"mixed target kinds", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1],[2]],"targets":[1,"a"]}}`, 400, "data.targets[1]"},
	{"1e999 target", "POST", "/v1/jobs", jsonCT, `{"model_name":"m","data":{"features":[[1],[2]],"targets":[1,1e999]}}`, 400, "data.targets[1]"},
	{"JSON dataset without name", "POST", "/v1/datasets", jsonCT, `{"features":[[1],[2]],"targets":[1,2]}`, 400, "name"},
	{"JSON dataset bad task", "POST", "/v1/datasets", jsonCT, `{"name":"d","task":"clustering","features":[[1],[2]],"targets":[1,2]}`, 400, "task"},
	{"JSON dataset one class", "POST", "/v1/datasets", jsonCT, `{"name":"d","features":[[1],[2]],"targets":["a","a"]}`, 400, "2 classes"},
	{"JSON dataset feature_names count", "POST", "/v1/datasets", jsonCT, `{"name":"d","feature_names":["a","b"],"features":[[1],[2]],"targets":[1,2]}`, 400, "feature_names"},

	// CSV uploads.
	{"csv empty", "POST", "/v1/datasets?name=d", "text/csv", ``, 400, "header"},
	{"csv no header", "POST", "/v1/datasets?name=d", "text/csv", "1,2,3\n4,5,6\n", 400, "header"},
	{"csv only a header", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\n", 400, "no data rows"},
	{"csv duplicate column", "POST", "/v1/datasets?name=d", "text/csv", "a,a,y\n1,2,3\n", 400, "duplicate column"},
	{"csv missing target column", "POST", "/v1/datasets?name=d&target=label", "text/csv", "a,b,y\n1,2,3\n", 400, "query.target"},
	{"csv non-numeric feature", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\n1,2,3\n4,five,6\n", 400, "line 3, column 2 (b)"},
	{"csv missing cell", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\n1,,3\n", 400, "line 2, column 2 (b)"},
	{"csv ragged row", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\n1,2,3\n4,5\n", 400, "line 3"},
	{"csv quoted newline in a feature", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\n1,\"2\n2\",3\n", 400, "column 2 (b)"},
	{"csv ends mid-row", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\n1,2,3\n4,5", 400, "line 3"},
	{"csv ends in an open quote", "POST", "/v1/datasets?name=d", "text/csv", "a,b,y\n1,2,\"3\n", 400, "quote"},
	{"csv NaN feature", "POST", "/v1/datasets?name=d", "text/csv", "a,y\nNaN,1\n", 400, "line 2, column 1 (a)"},
	{"csv Inf target", "POST", "/v1/datasets?name=d", "text/csv", "a,y\n1,1\n2,-Inf\n", 400, "line 3, column 2 (y)"},
	{"csv 1 MB line", "POST", "/v1/datasets?name=d", "text/csv", "a,y\n" + strings.Repeat("9", 1<<20) + "x,1\n", 400, "line 2, column 1 (a)"},
	{"csv without name", "POST", "/v1/datasets", "text/csv", "a,y\n1,2\n", 400, "query.name"},
	{"csv bad task", "POST", "/v1/datasets?name=d&task=ranking", "text/csv", "a,y\n1,2\n", 400, "query.task"},
	{"csv binary with 3 classes", "POST", "/v1/datasets?name=d&task=binary", "text/csv", "a,y\n1,p\n2,q\n3,r\n", 400, "exactly 2 classes"},
	{"csv every column a target", "POST", "/v1/datasets?name=d&target=a,y", "text/csv", "a,y\n1,2\n", 400, "no feature columns"},

	// HTTP.
	{"no Content-Type on a dataset", "POST", "/v1/datasets?name=d", "", "a,y\n1,2\n", 415, "Content-Type"},
	{"wrong Content-Type on a dataset", "POST", "/v1/datasets?name=d", "application/xml", "<a/>", 415, "Content-Type"},
	{"curl's default Content-Type on a dataset", "POST", "/v1/datasets?name=d", "application/x-www-form-urlencoded", "a,y\n1,2\n", 415, "-H 'Content-Type: text/csv'"},
	{"no Content-Type on a job", "POST", "/v1/jobs", "", `{"model_name":"m"}`, 415, "application/json"},
	{"text/plain job", "POST", "/v1/jobs", "text/plain", `{"model_name":"m"}`, 415, "application/json"},
	{"bad status filter", "GET", "/v1/jobs?status=done", "", "", 400, "query.status"},
	{"bad limit", "GET", "/v1/jobs?limit=0", "", "", 400, "query.limit"},
	{"huge limit", "GET", "/v1/jobs?limit=99999999999999999999", "", "", 400, "query.limit"},
	{"unknown route", "GET", "/v1/nothing", "", "", 404, "no route"},
	{"unknown top route", "GET", "/admin", "", "", 404, "no route"},
	{"wrong method on datasets", "PUT", "/v1/datasets", "", "", 405, "PUT"},
	{"wrong method on a job", "PATCH", "/v1/jobs/{ds}", "", "", 405, "PATCH"},
	{"wrong method on healthz", "POST", "/healthz", "", "", 405, "POST"},
}

// traversalIDs are path parameter values that must never reach the disk.
var traversalIDs = []string{
	"..", "..%2f..%2fetc%2fpasswd", "..%252f..%252f", "%252e%252e", "..%5c..%5cwindows", "%2e%2e",
	"a%00b", strings.Repeat("a", 4096), "0B6F2C1E-8D3A-4F5E-9C7B-1A2B3C4D5E6F", "{ds}x",
}

func TestBadInput(t *testing.T) {
	env := newTestEnv(t, Config{MaxRequestBytes: 4 << 20, MaxUploadBytes: 8 << 20})
	ds := uploadIris(t, env)
	cases := append([]badInput(nil), badInputs...)
	for _, id := range traversalIDs {
		for _, p := range []string{"/v1/datasets/%s", "/v1/jobs/%s", "/v1/jobs/%s/events"} {
			cases = append(cases, badInput{"traversal " + p + " " + id[:min(len(id), 20)], "GET",
				strings.Replace(p, "%s", id, 1), "", "", 400, "path.id"})
		}
		cases = append(cases, badInput{"traversal delete " + id[:min(len(id), 20)], "DELETE",
			"/v1/datasets/" + id, "", "", 400, "path.id"})
	}
	before := snapshotDir(t, env.dir)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.ReplaceAll(tc.body, "{ds}", ds.ID)
			path := strings.ReplaceAll(tc.path, "{ds}", ds.ID)
			var b []byte
			if tc.body != "" || tc.method == "POST" {
				b = []byte(body)
			}
			res := doRaw(t, env.h, tc.method, path, tc.ct, b)
			if res.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.status, res.Body)
			}
			p := res.Problem(t)
			if !problemMentions(p, tc.want) {
				t.Errorf("problem does not mention %q: %+v", tc.want, p)
			}
			if p.Status != tc.status || p.RequestID == "" || p.Type == "" || p.Title == "" {
				t.Errorf("incomplete problem: %+v", p)
			}
		})
	}
	if res := doJSON(t, env.h, http.MethodGet, "/healthz", nil); res.Status != http.StatusOK {
		t.Fatalf("server unhealthy after the bad inputs: %d", res.Status)
	}
	if after := snapshotDir(t, env.dir); !maps.Equal(before, after) {
		t.Errorf("the data directory changed:\nbefore %v\nafter  %v", before, after)
	}
}

// TestBodyLimits sends bodies one byte over each limit.
func TestBodyLimits(t *testing.T) {
	const reqLimit, upLimit = 1000, 3000
	env := newTestEnv(t, Config{MaxRequestBytes: reqLimit, MaxUploadBytes: upLimit})
	pad := func(n int, prefix, suffix string) string {
		return prefix + strings.Repeat(" ", n-len(prefix)-len(suffix)) + suffix
	}
	zeros := func(n int, prefix, suffix string) string {
		return prefix + strings.Repeat("0", n-len(prefix)-len(suffix)) + suffix
	}
	tests := []struct {
		name, path, ct, body string
		want                 int
	}{
		{"job at the limit", "/v1/jobs", jsonCT, pad(reqLimit, `{"model_name":"m"`, `}`), 400},
		{"job one over", "/v1/jobs", jsonCT, pad(reqLimit+1, `{"model_name":"m"`, `}`), 413},
		{"csv at the limit", "/v1/datasets?name=d", "text/csv", zeros(upLimit, "a,y\n1,2\n3,", "4\n"), 201},
		{"csv one over", "/v1/datasets?name=d", "text/csv", zeros(upLimit+1, "a,y\n1,2\n3,", "4\n"), 413},
		{"json dataset one over", "/v1/datasets", jsonCT, pad(upLimit+1, `{"name":"d","features":[[1],[2]],"targets":[1,2]`, `}`), 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := doRaw(t, env.h, http.MethodPost, tc.path, tc.ct, []byte(tc.body))
			if res.Status != tc.want {
				t.Fatalf("status %d, want %d: %s", res.Status, tc.want, res.Body)
			}
			if tc.want == 413 && !strings.Contains(res.Problem(t).Detail, "limit") {
				t.Errorf("413 detail does not name the limit: %s", res.Body)
			}
		})
	}
}

func problemMentions(p Problem, s string) bool {
	if strings.Contains(p.Detail, s) {
		return true
	}
	for _, e := range p.Errors {
		if strings.Contains(e.Field, s) || strings.Contains(e.Message, s) {
			return true
		}
	}
	return false
}

// snapshotDir maps every file under dir to its SHA-256.
func snapshotDir(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = hex.EncodeToString(h[:8])
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
