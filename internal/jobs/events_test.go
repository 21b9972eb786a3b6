package jobs

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestEventsCarryHistoryOnce: a subscription's first status event carries
// the history trained so far, shared with the job rather than copied per
// subscriber; the status events after it carry none, so a long job's
// history crosses the stream once.
func TestEventsCarryHistoryOnce(t *testing.T) {
	const pauseAt, epochs = 3, 6
	g := newGate()
	e := newEnv(t, testOptions(), testHooks{afterEpoch: func(ctx context.Context, id, _ string, epoch int) {
		if epoch == pauseAt {
			g.wait(ctx, id)
		}
	}})
	defer g.release()
	bin := mustDataset(t, e.st, binaryData(40))
	j := mustSubmit(t, e.m, smallSpec("once", bin, epochs))
	g.await(t)

	var subs [2]<-chan Event
	var firsts [2]Event
	for i := range subs {
		events, cancel, err := e.m.Subscribe(j.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		subs[i], firsts[i] = events, <-events
	}
	got, err := e.m.Get(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range firsts {
		if ev.Kind != EventStatus || ev.Job.Status != Running || len(ev.Job.History) != pauseAt {
			t.Fatalf("subscriber %d: first event %s %s with %d epochs, want running with %d", i, ev.Kind, ev.Job.Status, len(ev.Job.History), pauseAt)
		}
		// One copy of the history however many subscribe.
		if &ev.Job.History[0] != &got.History[0] {
			t.Errorf("subscriber %d: the first event's history is a copy, not the job's", i)
		}
	}
	// A paused running job has an estimate; it is rounded to tenths
	// below 10 s and whole seconds above (roundETA).
	if eta := got.Progress.ETASeconds; eta == nil {
		t.Error("a running job has no eta_seconds")
	} else if b, _ := json.Marshal(*eta); *eta != roundETA(*eta) || strings.Contains(string(b), "e") ||
		(strings.Contains(string(b), ".") && len(b)-strings.IndexByte(string(b), '.') > 2) {
		t.Errorf("eta_seconds encodes as %s, want at most one decimal", b)
	}

	g.release()
	for i, events := range subs {
		var epochsSeen []int
		var last Event
		for ev := range events {
			last = ev
			switch ev.Kind {
			case EventEpoch:
				epochsSeen = append(epochsSeen, ev.Epoch.Epoch)
			case EventStatus:
				if ev.Job.History != nil {
					t.Errorf("subscriber %d: a later %s status event carries %d epochs of history", i, ev.Job.Status, len(ev.Job.History))
				}
			}
		}
		if want := []int{4, 5, 6}; !slices.Equal(epochsSeen, want) {
			t.Errorf("subscriber %d: epoch events %v, want %v", i, epochsSeen, want)
		}
		if last.Kind != EventStatus || last.Job.Status != Succeeded {
			t.Errorf("subscriber %d: last event %+v, want the succeeded status", i, last)
		}
	}
}

// TestListOmitsHistory: List returns jobs without their histories (Get has
// them), and the JSON of a listed job has no "history" key at all.
func TestListOmitsHistory(t *testing.T) {
	e := newEnv(t, testOptions(), testHooks{})
	bin := mustDataset(t, e.st, binaryData(40))
	j := mustSubmit(t, e.m, smallSpec("list", bin, 4))
	waitTerminal(t, e.m, j.ID)

	list, _, err := e.m.List(context.Background(), ListFilter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %d jobs, %v; want 1", len(list), err)
	}
	if list[0].History != nil || list[0].Progress.Epoch != 4 || list[0].Metrics.Loss == nil {
		t.Errorf("listed job: history %d epochs, progress %+v, loss %v; want no history, epoch 4, a loss",
			len(list[0].History), list[0].Progress, list[0].Metrics.Loss)
	}
	b, _ := json.Marshal(list[0])
	if strings.Contains(string(b), `"history"`) {
		t.Errorf("listed job JSON has a history: %s", b)
	}
	got, err := e.m.Get(context.Background(), j.ID)
	if err != nil || len(got.History) != 4 {
		t.Fatalf("Get = %d epochs, %v; want 4", len(got.History), err)
	}
}

// TestEmptyHistoryStaysInGet: a job with no epoch yet still shows
// "history": [] from Get; only lists leave the key out.
func TestEmptyHistoryStaysInGet(t *testing.T) {
	g := newGate()
	e := newEnv(t, testOptions(), testHooks{beforeTrain: func(ctx context.Context, id, _ string) { g.wait(ctx, id) }})
	defer g.release()
	bin := mustDataset(t, e.st, binaryData(40))
	j := mustSubmit(t, e.m, smallSpec("empty", bin, 1))
	g.await(t)
	got, err := e.m.Get(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(got); !strings.Contains(string(b), `"history":[]`) {
		t.Errorf("Get of a job without epochs: %s, want \"history\":[]", b)
	}
}

func TestRoundETA(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string // as encoding/json prints it
	}{
		{1.2345678901234567, "1.2"}, // 16 significant digits, as an unrounded ETA prints
		{0.04, "0"},
		{9.94, "9.9"},
		{9.96, "10"}, // rounds up across the boundary to tenths' last step
		{10.4, "10"},
		{12.5, "13"}, // math.Round rounds halves away from zero
		{86399.7, "86400"},
	} {
		b, err := json.Marshal(roundETA(tc.in))
		if err != nil || string(b) != tc.want {
			t.Errorf("roundETA(%v) encodes as %s (%v), want %s", tc.in, b, err, tc.want)
		}
	}
}
