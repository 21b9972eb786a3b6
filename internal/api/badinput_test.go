package api

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const jsonCT = "application/json"

// TestBadInput sends the hostile-input table (hardening_test.go) straight
// to the handler, without a network in between, as the fuzz targets do:
// each case gets its documented 4xx naming the problem, and nothing on
// disk changes.
func TestBadInput(t *testing.T) {
	e := newHardEnv(t)
	cases := append(append([]hostile(nil), hostileInputs...), traversalCases()...)
	before := snapshotDir(t, e.dir)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, e.vals.Replace(tc.path), strings.NewReader(e.vals.Replace(tc.body)))
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %.500s", rec.Code, tc.status, rec.Body)
			}
			if s := leaks(rec.Body.Bytes(), e.dir); s != "" {
				t.Errorf("the answer reveals %q: %.500s", s, rec.Body)
			}
			checkNamesProblem(t, rec.Header(), rec.Body.Bytes(), tc.status, tc.want)
		})
	}
	if res := doJSON(t, e.h, http.MethodGet, "/healthz", nil); res.Status != http.StatusOK {
		t.Fatalf("server unhealthy after the bad inputs: %d", res.Status)
	}
	if after := snapshotDir(t, e.dir); !maps.Equal(before, after) {
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
