package api

// Checks of api/openapi.yaml itself, each against what the server does:
// every path declares its 405 and the router answers it in that shape; the
// health routes answer HEAD; references name whole components; the bounds
// and examples say what the handlers accept and return.

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	apispec "github.com/backpropd/backpropd/api"
)

// TestEveryPathDeclaresAndAnswers405: every operation of the spec declares
// a 405, and a method the path lacks gets that 405 from the router: the
// declared Content-Type, a body that matches the declared schema, and an
// Allow header listing exactly the path's methods.
func TestEveryPathDeclaresAndAnswers405(t *testing.T) {
	doc, _ := loadSpec(t)
	env := newTestEnv(t, Config{})
	fill := strings.NewReplacer("{id}", "0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f", "{name}", "iris", "{version}", "1")
	order := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	n := 0
	for path, item := range doc.Paths.Map() {
		ops := item.Operations()
		var declared *openapi3.Response
		for method, op := range ops {
			ref := op.Responses.Value("405")
			if ref == nil || ref.Value == nil {
				t.Errorf("%s %s declares no 405", method, path)
				continue
			}
			declared = ref.Value
		}
		if declared == nil {
			continue
		}
		var allowed []string
		wrong := ""
		for _, m := range order {
			if ops[m] != nil {
				allowed = append(allowed, m)
			} else if wrong == "" && m != "HEAD" {
				wrong = m
			}
		}
		n++
		t.Run(wrong+" "+path, func(t *testing.T) {
			res := doRaw(t, env.h, wrong, fill.Replace(path), "", nil)
			if res.Status != http.StatusMethodNotAllowed {
				t.Fatalf("status %d, want 405: %s", res.Status, res.Body)
			}
			if got, want := res.Header.Get("Allow"), strings.Join(allowed, ", "); got != want {
				t.Errorf("Allow %q, want %q", got, want)
			}
			ct := res.Header.Get("Content-Type")
			mt := declared.Content.Get(ct)
			if mt == nil || mt.Schema == nil {
				t.Fatalf("Content-Type %q is not one the 405 declares", ct)
			}
			var body any
			res.JSON(t, &body)
			if err := mt.Schema.Value.VisitJSON(body); err != nil {
				t.Errorf("body %s does not match the declared 405 schema: %v", res.Body, err)
			}
		})
	}
	if n < 20 {
		t.Fatalf("checked %d paths; the spec walk is broken", n)
	}
}

// TestHeadOnHealthRoutes: the four health routes answer HEAD with GET's
// status and header fields, Content-Length that of GET's body, and no body
// on the wire; also while not ready (503).
func TestHeadOnHealthRoutes(t *testing.T) {
	env := newTestEnv(t, Config{})
	for _, draining := range []bool{false, true} {
		srv := New(Options{Store: env.store, Jobs: env.jobs})
		if draining {
			srv.SetDraining()
		}
		h := srv.Handler()
		hs := httptest.NewServer(h)
		for _, path := range []string{"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"} {
			t.Run(path+" draining="+strconv.FormatBool(draining), func(t *testing.T) {
				get := doRaw(t, h, http.MethodGet, path, "", nil)
				head := doRaw(t, h, http.MethodHead, path, "", nil)
				if head.Status != get.Status {
					t.Errorf("HEAD %d, GET %d", head.Status, get.Status)
				}
				if len(head.Body) != 0 {
					t.Errorf("HEAD wrote a body: %q", head.Body)
				}
				if got, want := head.Header.Get("Content-Type"), get.Header.Get("Content-Type"); got != want {
					t.Errorf("HEAD Content-Type %q, GET %q", got, want)
				}
				if got, want := head.Header.Get("Content-Length"), strconv.Itoa(len(get.Body)); got != want {
					t.Errorf("HEAD Content-Length %q, want %s (GET's body)", got, want)
				}
				// Over the wire too: a client reads no body and keeps the
				// connection usable.
				res, err := http.Head(hs.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != get.Status || res.ContentLength != int64(len(get.Body)) {
					t.Errorf("over HTTP: %d, Content-Length %d; want %d, %d", res.StatusCode, res.ContentLength, get.Status, len(get.Body))
				}
			})
		}
		hs.Close()
	}
	// Draining must have made the readiness routes 503.
	srv := New(Options{Store: env.store, Jobs: env.jobs})
	srv.SetDraining()
	if res := doRaw(t, srv.Handler(), http.MethodHead, "/readyz", "", nil); res.Status != http.StatusServiceUnavailable {
		t.Errorf("HEAD /readyz while draining: %d, want 503", res.Status)
	}
}

// TestRefsNameWholeComponents: every $ref in the spec is
// #/components/<kind>/<name>; Dredd and several generators resolve nothing
// deeper (a reference into another schema's properties).
func TestRefsNameWholeComponents(t *testing.T) {
	refs := regexp.MustCompile(`\$ref:\s*"?([^"}\s]+)`).FindAllSubmatch(apispec.OpenAPI, -1)
	whole := regexp.MustCompile(`^#/components/[A-Za-z]+/[^/]+$`)
	for _, m := range refs {
		if !whole.Match(m[1]) {
			t.Errorf("$ref %s does not name a whole component", m[1])
		}
	}
	if len(refs) < 100 {
		t.Fatalf("found %d $refs; the scan is broken", len(refs))
	}
}

// TestValidationFractionBound: the spec's bound on validation.fraction is
// the one the server enforces: 0 and 0.999 are within it, 1 is not, and the
// server refuses 1 naming the field.
func TestValidationFractionBound(t *testing.T) {
	doc, _ := loadSpec(t)
	fraction := doc.Components.Schemas["Validation"].Value.Properties["fraction"].Value
	for _, tc := range []struct {
		v  float64
		ok bool
	}{{0, true}, {0.999, true}, {1, false}, {-0.1, false}} {
		if err := fraction.VisitJSON(tc.v); (err == nil) != tc.ok {
			t.Errorf("spec: fraction %v valid = %v, want %v", tc.v, err == nil, tc.ok)
		}
	}
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	res := doJSON(t, env.h, http.MethodPost, "/v1/jobs",
		`{"model_name":"m","dataset_id":"`+ds.ID+`","validation":{"fraction":1}}`)
	p := res.Problem(t)
	if res.Status != http.StatusBadRequest || len(p.Errors) == 0 || p.Errors[0].Field != "validation.fraction" {
		t.Errorf("fraction 1: %d %+v, want 400 naming validation.fraction", res.Status, p)
	}
}

// TestModelMetaExampleIsAClassifiers: the ModelMeta example is a classifier
// (it has classes), and holds no field that a classifier's metadata lacks.
func TestModelMetaExampleIsAClassifiers(t *testing.T) {
	doc, _ := loadSpec(t)
	example, ok := doc.Components.Schemas["ModelMeta"].Value.Example.(map[string]any)
	if !ok || example["classes"] == nil {
		t.Fatalf("the ModelMeta example is not a classifier: %v", example)
	}
	e := newModelEnv(t)
	e.putModel("iris", mustTrain(t, "classifier"))
	var got map[string]any
	e.get(t, "/v1/models/iris").JSON(t, &got)
	// A model stored here without a job has no job or dataset id; the
	// example shows a trained one.
	trainedOnly := map[string]bool{"job_id": true, "dataset_id": true}
	for k := range example {
		if _, ok := got[k]; !ok && !trainedOnly[k] {
			t.Errorf("the example has %q, which a classifier's metadata lacks (got %v)", k, keys(got))
		}
	}
	if _, ok := got["target_names"]; ok {
		t.Logf("classifier metadata now names its targets; the example may show target_names again")
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
