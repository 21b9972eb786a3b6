package api

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
)

// svgPath is one <path> of an SVG document with the stroke colour from its
// style and the number of points in its outline.
type svgPath struct {
	stroke string
	points int
}

// parseSVG checks that doc is well-formed XML with an <svg> root and
// returns its paths.
func parseSVG(t *testing.T, doc []byte) []svgPath {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var paths []svgPath
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG does not parse as XML: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = se.Name.Local
		}
		if se.Name.Local != "path" {
			continue
		}
		var p svgPath
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "style":
				for _, decl := range strings.Split(a.Value, ";") {
					if v, ok := strings.CutPrefix(decl, "stroke:"); ok {
						p.stroke = strings.ToLower(v)
					}
				}
			case "d":
				p.points = strings.Count(a.Value, "M") + strings.Count(a.Value, "L")
			}
		}
		paths = append(paths, p)
	}
	if root != "svg" {
		t.Fatalf("root element is %q, want svg", root)
	}
	return paths
}

func colorHex(c interface{ RGBA() (r, g, b, a uint32) }) string {
	r, g, b, _ := c.RGBA()
	return fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, b>>8)
}

// seriesLines counts, per series colour, the paths that are a series line:
// one point per epoch (legend swatches and glyphs have fewer).
func seriesLines(paths []svgPath, epochs int) map[string]int {
	n := map[string]int{}
	for _, p := range paths {
		if p.points == epochs {
			n[p.stroke]++
		}
	}
	return n
}

func f(v float64) *float64 { return &v }

func TestLossSVG(t *testing.T) {
	e := newModelEnv(t)
	const id = "0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f"
	history := func(n int, val, acc bool) []engine.Epoch {
		var h []engine.Epoch
		for i := 1; i <= n; i++ {
			ep := engine.Epoch{Epoch: i, Loss: 1 / float64(i)}
			if val {
				ep.ValLoss = f(1.2 / float64(i))
			}
			if acc {
				ep.Accuracy = f(1 - 0.5/float64(i))
				if val {
					ep.ValAccuracy = f(1 - 0.6/float64(i))
				}
			}
			h = append(h, ep)
		}
		return h
	}
	train, val := colorHex(trainColor), colorHex(valColor)
	for _, tc := range []struct {
		name    string
		status  jobs.Status
		history []engine.Epoch
		want    map[string]int // series lines per colour
	}{
		{"running classifier with validation", jobs.Running, history(5, true, true), map[string]int{train: 2, val: 2}},
		{"finished regressor with validation", jobs.Succeeded, history(7, true, false), map[string]int{train: 1, val: 1}},
		{"train loss only", jobs.Succeeded, history(4, false, false), map[string]int{train: 1}},
		{"accuracy without validation", jobs.Running, history(3, false, true), map[string]int{train: 2}},
		{"no epochs yet", jobs.Queued, nil, map[string]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.jobs.set(jobs.Job{ID: id, ModelName: "iris", Status: tc.status, History: tc.history,
				CreatedAt: time.Now()})
			res := e.get(t, "/v1/jobs/"+id+"/loss.svg")
			if res.Status != http.StatusOK {
				t.Fatalf("status %d: %s", res.Status, res.Body)
			}
			if ct := res.Header.Get("Content-Type"); ct != "image/svg+xml" {
				t.Errorf("Content-Type = %q", ct)
			}
			got := seriesLines(parseSVG(t, res.Body), len(tc.history))
			if len(tc.history) == 0 {
				if got[train]+got[val] != 0 {
					t.Errorf("empty history drew series lines: %v", got)
				}
				return
			}
			for colour, n := range tc.want {
				if got[colour] != n {
					t.Errorf("%d lines in %s, want %d (all: %v)", got[colour], colour, n, got)
				}
			}
			for colour, n := range got {
				if colour != train && colour != val && n > 0 && tc.want[colour] == 0 && colour != "" {
					// Axes and ticks are black; a stray coloured line means a
					// series was drawn twice or in the wrong colour.
					if colour != "#000000" {
						t.Errorf("unexpected %d lines in %s", n, colour)
					}
				}
			}
		})
	}
	t.Run("single epoch", func(t *testing.T) {
		e.jobs.set(jobs.Job{ID: id, ModelName: "iris", Status: jobs.Running, History: history(1, true, true)})
		res := e.get(t, "/v1/jobs/"+id+"/loss.svg")
		if res.Status != http.StatusOK {
			t.Fatalf("status %d: %s", res.Status, res.Body)
		}
		parseSVG(t, res.Body)
		if bytes.Contains(res.Body, []byte("NaN")) || bytes.Contains(res.Body, []byte("Inf")) {
			t.Errorf("SVG of one epoch has non-finite coordinates")
		}
	})
	t.Run("unknown job", func(t *testing.T) {
		res := e.get(t, "/v1/jobs/1b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f/loss.svg")
		if res.Status != http.StatusNotFound {
			t.Fatalf("status %d, want 404", res.Status)
		}
		res.Problem(t)
	})
	t.Run("bad id", func(t *testing.T) {
		res := e.call(t, http.MethodGet, "/v1/jobs/..%2f..%2fetc/loss.svg", "", nil)
		if res.Status != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", res.Status)
		}
		if p := res.Problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "path.id" {
			t.Errorf("errors = %+v, want path.id", p.Errors)
		}
	})
}

// TestRenderLossSVGAnyHistory holds renderLossSVG to its promise of a picture
// for every history: before plotLimit and widenRange, a flat loss beyond 2^53
// panicked in gonum/plot ("illegal range") and a loss spanning ±MaxFloat64
// never returned. Each case must give well-formed SVG with finite
// coordinates within a few seconds, and say in the title what it left out.
func TestRenderLossSVGAnyHistory(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	losses := func(vs ...float64) []engine.Epoch {
		h := make([]engine.Epoch, len(vs))
		for i, v := range vs {
			h[i] = engine.Epoch{Epoch: i + 1, Loss: v, ValLoss: f(v), Accuracy: f(v)}
		}
		return h
	}
	for _, tc := range []struct {
		name string
		hist []engine.Epoch
		note string // in the title; "" for none
	}{
		{"empty", nil, "no epoch finished yet"},
		{"single epoch", losses(0.5), ""},
		{"single huge epoch", losses(2.1e301), "3 values beyond ±1e+300 clamped"},
		{"all equal", losses(2, 2, 2), ""},
		{"all equal zero", losses(0, 0), ""},
		{"all equal beyond 2^53", losses(1e20, 1e20), ""},
		{"all equal huge", losses(1e200, 1e200, 1e200), ""},
		{"negative", losses(-1, -3, -2), ""},
		{"both extremes", losses(math.MaxFloat64, -math.MaxFloat64), "6 values beyond ±1e+300 clamped"},
		{"diverged", losses(1, 1e150, 2.1e301, inf, nan), "6 non-finite values left out · 3 values beyond ±1e+300 clamped"},
		{"only NaN", losses(nan, nan), "no epoch finished yet · 6 non-finite values left out"},
		{"only -Inf", losses(-inf), "no epoch finished yet · 3 non-finite values left out"},
		{"tiny spread", losses(1, math.Nextafter(1, 2)), ""},
		{"subnormal", losses(5e-324, 1e-323), ""},
		{"epoch zero and negative", []engine.Epoch{{Epoch: 0, Loss: 1}, {Epoch: -5, Loss: 1}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				doc   []byte
				err   error
				panic any
			}
			done := make(chan result, 1)
			go func() {
				var r result
				defer func() {
					r.panic = recover()
					done <- r
				}()
				var buf bytes.Buffer
				r.err = renderLossSVG(&buf, "t", tc.hist)
				r.doc = buf.Bytes()
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("renderLossSVG did not return within 10s")
			}
			if r.panic != nil {
				t.Fatalf("renderLossSVG panicked: %v", r.panic)
			}
			if r.err != nil {
				t.Fatalf("renderLossSVG: %v", r.err)
			}
			parseSVG(t, r.doc)
			if bytes.Contains(r.doc, []byte("NaN")) || bytes.Contains(r.doc, []byte("Inf")) {
				t.Errorf("SVG has non-finite coordinates")
			}
			clamped := bytes.Contains(r.doc, []byte("clamped"))
			left := bytes.Contains(r.doc, []byte("left out"))
			if tc.note == "" && (clamped || left) {
				t.Errorf("title notes a change nothing called for")
			}
			if tc.note != "" && !bytes.Contains(r.doc, []byte(tc.note)) {
				t.Errorf("title lacks %q", tc.note)
			}
		})
	}
}

// TestLossSVGOfDivergedJob is the reported case end to end: targets near
// 1e150 and SGD at learning rate 10 drive the loss past 1e300 and on to
// infinity; loss.svg answered 500 (a gonum/plot panic) for such a job.
// Such targets need float64: float32 refuses them before training.
func TestLossSVGOfDivergedJob(t *testing.T) {
	env := newTestEnv(t, Config{})
	j := submitJob(t, env, map[string]any{
		"model_name": "diverge",
		"data":       map[string]any{"features": [][]float64{{0}, {1}, {2}, {3}}, "targets": []float64{1e150, 3e150, 5e150, 7e150}},
		"training": map[string]any{"epochs": 50, "standardize": false, "precision": "float64",
			"optimizer": map[string]any{"name": "sgd", "learning_rate": 10}},
	})
	j = waitJob(t, env, j.ID)
	if len(j.History) == 0 {
		t.Fatalf("job %s ended %s without an epoch: %s", j.ID, j.Status, j.Error)
	}
	res := doRaw(t, env.h, http.MethodGet, "/v1/jobs/"+j.ID+"/loss.svg", "", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("status %d: %s", res.Status, res.Body)
	}
	parseSVG(t, res.Body)
	if !bytes.Contains(res.Body, []byte("clamped")) && !bytes.Contains(res.Body, []byte("left out")) {
		t.Errorf("the title does not say that values were clamped or left out (history %+v)", j.History)
	}
}
