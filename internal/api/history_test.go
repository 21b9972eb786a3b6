package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
)

// plainJob trains exactly epochs epochs: without validation data there is
// no early stopping, and full batches keep the epochs fast.
func plainJob(model, dataset string, epochs int) map[string]any {
	return map[string]any{"model_name": model, "dataset_id": dataset,
		"network":  map[string]any{"hidden": []map[string]any{{"units": 4}}},
		"training": map[string]any{"epochs": epochs, "batch_size": 150}}
}

// trainedJob submits a plain job and waits for it to succeed with all its
// epochs.
func trainedJob(tb testing.TB, env *testEnv, dataset string, epochs int) jobs.Job {
	tb.Helper()
	j := submitJob(tb, env, plainJob(fmt.Sprintf("e%d", epochs), dataset, epochs))
	done := waitJob(tb, env, j.ID)
	if done.Status != jobs.Succeeded || len(done.History) != epochs {
		tb.Fatalf("job %s with %d epochs (%q); want succeeded with %d", done.Status, len(done.History), done.Error, epochs)
	}
	return done
}

// TestJobListWithoutHistory: GET /v1/jobs used to carry every job's whole
// history, about 128 bytes an epoch (141,633 bytes for 9 small jobs). A
// listed job now has no history, so its size does not grow with epochs.
func TestJobListWithoutHistory(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	short := trainedJob(t, env, ds.ID, 2)
	long := trainedJob(t, env, ds.ID, 300)

	res := doJSON(t, env.h, http.MethodGet, "/v1/jobs", nil)
	if res.Status != http.StatusOK {
		t.Fatalf("list: %d %s", res.Status, res.Body)
	}
	var raw struct{ Jobs []map[string]json.RawMessage }
	res.JSON(t, &raw)
	if len(raw.Jobs) != 2 {
		t.Fatalf("%d jobs listed, want 2", len(raw.Jobs))
	}
	size := map[string]int{}
	for _, j := range raw.Jobs {
		if _, ok := j["history"]; ok {
			t.Errorf("listed job %s has a history", j["id"])
		}
		b, _ := json.Marshal(j)
		var id string
		_ = json.Unmarshal(j["id"], &id)
		size[id] = len(b)
	}
	// 298 more epochs would add about 38 kB of history; the two jobs'
	// entries differ only in their names, numbers and timestamps.
	if d := size[long.ID] - size[short.ID]; d > 100 || d < -100 {
		t.Errorf("listed jobs of 300 and 2 epochs are %d and %d bytes; want about the same", size[long.ID], size[short.ID])
	}
	if res := doJSON(t, env.h, http.MethodGet, "/v1/jobs/"+long.ID, nil); !strings.Contains(string(res.Body), `"history":[{`) {
		t.Errorf("GET of one job lost its history: %.200s", res.Body)
	}
}

func TestGetJobHistoryParameter(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	j := trainedJob(t, env, ds.ID, 3)
	for _, tc := range []struct {
		query       string
		wantEpochs  int    // history entries; -1 wants no history key
		wantField   string // a 400 naming it
		wantMessage string
	}{
		{"", 3, "", ""},
		{"?history=true", 3, "", ""},
		{"?history=false", -1, "", ""},
		{"?history=no", 0, "query.history", "must be true or false"},
		{"?history=", 0, "query.history", "must be true or false"},
		{"?histroy=false", 0, "query.histroy", "this route takes history"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			res := doJSON(t, env.h, http.MethodGet, "/v1/jobs/"+j.ID+tc.query, nil)
			if tc.wantField != "" {
				if p := res.Problem(t); res.Status != http.StatusBadRequest || len(p.Errors) != 1 ||
					p.Errors[0].Field != tc.wantField || !strings.Contains(p.Errors[0].Message, tc.wantMessage) {
					t.Fatalf("%d %+v; want 400 naming %s", res.Status, p, tc.wantField)
				}
				return
			}
			var got map[string]json.RawMessage
			res.JSON(t, &got)
			h, ok := got["history"]
			if tc.wantEpochs < 0 {
				if ok {
					t.Errorf("history present: %s", h)
				}
				if !strings.Contains(string(got["progress"]), `"epoch":3`) {
					t.Errorf("progress %s, want epoch 3", got["progress"])
				}
				return
			}
			var epochs []engine.Epoch
			if err := json.Unmarshal(h, &epochs); err != nil || len(epochs) != tc.wantEpochs {
				t.Errorf("history %d epochs (%v), want %d", len(epochs), err, tc.wantEpochs)
			}
		})
	}
}

func TestJobHistoryPages(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	j := trainedJob(t, env, ds.ID, 25)
	page := func(t *testing.T, query string) (epochs []int, nextAfter *int) {
		t.Helper()
		res := doJSON(t, env.h, http.MethodGet, "/v1/jobs/"+j.ID+"/history"+query, nil)
		if res.Status != http.StatusOK {
			t.Fatalf("history%s: %d %s", query, res.Status, res.Body)
		}
		var p struct {
			Epochs    []engine.Epoch `json:"epochs"`
			NextAfter *int           `json:"next_after"`
		}
		res.JSON(t, &p)
		if p.Epochs == nil {
			t.Errorf("history%s: epochs is null or absent, want an array", query)
		}
		for _, e := range p.Epochs {
			epochs = append(epochs, e.Epoch)
		}
		return epochs, p.NextAfter
	}
	seq := func(from, to int) []int {
		var out []int
		for i := from; i <= to; i++ {
			out = append(out, i)
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []int
		next  int // 0: no next_after
	}{
		{"", seq(1, 25), 0},
		{"?limit=10", seq(1, 10), 10},
		{"?after=10&limit=10", seq(11, 20), 20},
		{"?after=20&limit=10", seq(21, 25), 0},
		{"?after=15&limit=10", seq(16, 25), 0}, // exactly the rest: no empty last page
		{"?after=25", nil, 0},
		{"?after=1000", nil, 0},
		{"?limit=1000", seq(1, 25), 0},
	} {
		t.Run(tc.query, func(t *testing.T) {
			got, next := page(t, tc.query)
			if !slices.Equal(got, tc.want) {
				t.Errorf("epochs %v, want %v", got, tc.want)
			}
			if (next == nil) != (tc.next == 0) || next != nil && *next != tc.next {
				t.Errorf("next_after %v, want %d (0: absent)", next, tc.next)
			}
		})
	}

	// Following next_after yields the history of GET, entry for entry.
	var all []int
	for after := 0; ; {
		got, next := page(t, "?limit=7&after="+strconv.Itoa(after))
		all = append(all, got...)
		if next == nil {
			break
		}
		after = *next
	}
	if !slices.Equal(all, seq(1, 25)) {
		t.Errorf("pages of 7 give epochs %v, want 1..25", all)
	}

	for _, tc := range []struct {
		query, field, message string
	}{
		{"?after=-1", "query.after", "0 or more"},
		{"?after=x", "query.after", `got "x"`},
		{"?after=", "query.after", "0 or more"},
		{"?limit=0", "query.limit", "from 1 to 1000"},
		{"?limit=1001", "query.limit", "from 1 to 1000"},
		{"?limit=ten", "query.limit", `got "ten"`},
		{"?afterr=3", "query.afterr", "this route takes after, limit"},
	} {
		t.Run("bad "+tc.query, func(t *testing.T) {
			res := doJSON(t, env.h, http.MethodGet, "/v1/jobs/"+j.ID+"/history"+tc.query, nil)
			p := res.Problem(t)
			if res.Status != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != tc.field ||
				!strings.Contains(p.Errors[0].Message, tc.message) {
				t.Errorf("%d %+v; want 400 naming %s with %q", res.Status, p, tc.field, tc.message)
			}
		})
	}
	res := doJSON(t, env.h, http.MethodGet, "/v1/jobs/0b6f2c1e-8d3a-4f5e-9c7b-1a2b3c4d5e6f/history", nil)
	if p := res.Problem(t); res.Status != http.StatusNotFound || !strings.Contains(p.Detail, "0b6f2c1e") {
		t.Errorf("unknown job: %d %+v, want 404 naming it", res.Status, p)
	}
}

// statusJob decodes a status event, reporting whether it had a history key.
func statusJob(tb testing.TB, ev sseEvent) (jobs.Job, bool) {
	tb.Helper()
	var j jobs.Job
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(ev.Data, &j); err != nil {
		tb.Fatalf("status event %s: %v", ev.Data, err)
	}
	_ = json.Unmarshal(ev.Data, &keys)
	_, has := keys["history"]
	return j, has
}

// TestEventStreamHistoryOnce follows a job from submission to the end: the
// first status event carries the history with the last epoch as its id,
// every epoch event has its epoch number as id, and the later status
// events (running, succeeded) carry no history; the closing one used to
// resend all of it.
func TestEventStreamHistoryOnce(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	j := submitJob(t, env, plainJob("live", ds.ID, 30))
	res := doJSON(t, env.h, http.MethodGet, "/v1/jobs/"+j.ID+"/events", nil)
	evs := parseSSE(t, res.Body)
	if len(evs) < 2 || evs[0].Event != "status" {
		t.Fatalf("%d events, first %+v", len(evs), evs)
	}
	first, has := statusJob(t, evs[0])
	if !has {
		t.Fatal("the first status event has no history")
	}
	wantID := 0
	if n := len(first.History); n > 0 {
		wantID = first.History[n-1].Epoch
	}
	if evs[0].ID != strconv.Itoa(wantID) {
		t.Errorf("first event id %q, want %d (the last epoch of its history)", evs[0].ID, wantID)
	}
	seen := len(first.History)
	for _, ev := range evs[1:] {
		switch ev.Event {
		case "epoch":
			var e engine.Epoch
			if err := json.Unmarshal(ev.Data, &e); err != nil || e.Epoch != seen+1 || ev.ID != strconv.Itoa(e.Epoch) {
				t.Fatalf("epoch event id %q %s after epoch %d: %v", ev.ID, ev.Data, seen, err)
			}
			seen = e.Epoch
		case "status":
			if got, has := statusJob(t, ev); has || ev.ID != "" {
				t.Errorf("later %s status event: id %q, history %v; want neither", got.Status, ev.ID, has)
			}
		}
	}
	if last, _ := statusJob(t, evs[len(evs)-1]); last.Status != jobs.Succeeded || seen != 30 {
		t.Errorf("stream ended with %s after %d epochs, want succeeded after 30", last.Status, seen)
	}
}

// TestEventStreamResume: Last-Event-ID: N means the client has epochs up
// to N; it gets the later ones, then the status without the history.
func TestEventStreamResume(t *testing.T) {
	env := newTestEnv(t, Config{})
	ds := uploadIris(t, env)
	j := trainedJob(t, env, ds.ID, 6)
	for _, tc := range []struct {
		lastID string
		want   []string // "id event"
		hist   bool     // the status event has the history
	}{
		{"", []string{"6 status"}, true},
		{"0", []string{"1 epoch", "2 epoch", "3 epoch", "4 epoch", "5 epoch", "6 epoch", " status"}, false},
		{"4", []string{"5 epoch", "6 epoch", " status"}, false},
		{"6", []string{" status"}, false},
		{"99", []string{" status"}, false},
	} {
		t.Run("Last-Event-ID "+tc.lastID, func(t *testing.T) {
			var hdr []string
			if tc.lastID != "" {
				hdr = []string{"Last-Event-ID", tc.lastID}
			}
			res := doJSON(t, env.h, http.MethodGet, "/v1/jobs/"+j.ID+"/events", nil, hdr...)
			var got []string
			var status sseEvent
			for _, ev := range parseSSE(t, res.Body) {
				got = append(got, ev.ID+" "+ev.Event)
				if ev.Event == "status" {
					status = ev
				} else {
					var e engine.Epoch
					if err := json.Unmarshal(ev.Data, &e); err != nil || ev.ID != strconv.Itoa(e.Epoch) {
						t.Errorf("epoch event id %q, data %s", ev.ID, ev.Data)
					}
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("events %q, want %q", got, tc.want)
			}
			if js, has := statusJob(t, status); has != tc.hist || js.Status != jobs.Succeeded {
				t.Errorf("status %s, history present %v; want succeeded, %v", js.Status, has, tc.hist)
			}
		})
	}
	for _, bad := range []string{"x", "-1", "1.5"} {
		res := doJSON(t, env.h, http.MethodGet, "/v1/jobs/"+j.ID+"/events", nil, "Last-Event-ID", bad)
		if p := res.Problem(t); res.Status != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != "header.Last-Event-ID" {
			t.Errorf("Last-Event-ID %q: %d %+v, want 400 naming header.Last-Event-ID", bad, res.Status, p)
		}
	}
	res := doJSON(t, env.h, http.MethodGet, "/v1/jobs/"+j.ID+"/events?since=3", nil)
	if p := res.Problem(t); res.Status != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != "query.since" {
		t.Errorf("events?since=3: %d %+v, want 400 naming query.since", res.Status, p)
	}
}
