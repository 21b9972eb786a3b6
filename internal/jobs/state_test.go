package jobs

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/store"
)

// allowed is the job lifecycle written out as the package documentation
// and the API describe it, one row per transition, independently of the
// transitions table. TestTransitions holds the table to it.
var allowed = []struct {
	from state
	e    event
	to   state
}{
	{stateNew, evSubmit, stateQueued},

	{stateQueued, evStart, stateRunning},
	{stateQueued, evCancel, stateCancelled}, // Cancel ends a queued job at once
	{stateQueued, evRecover, stateQueued},
	{stateQueued, evFail, stateFailed},             // Start finds it can never run (over the memory cap)
	{stateQueuedStop, evStart, stateSavingStopped}, // a recorded stop is not trained past
	{stateQueuedStop, evCancel, stateCancelled},
	{stateQueuedStop, evRecover, stateQueuedStop},
	{stateQueuedStop, evFail, stateFailed},

	{stateRunning, evEpoch, stateRunning},
	{stateRunning, evTimeUp, stateTimeUp},
	{stateRunning, evStop, stateStopping},
	{stateRunning, evCancel, stateCancelling},
	{stateRunning, evEnd, stateFinishing},
	{stateRunning, evFail, stateFailed},
	{stateRunning, evShutdown, stateQueued},
	{stateRunning, evRecover, stateQueued}, // found running at Start: the process died mid-run

	{stateTimeUp, evEpoch, stateTimeUp},
	{stateTimeUp, evTimeUp, stateTimeUp},
	{stateTimeUp, evStop, stateStopping}, // Stop after the limit: stop_reason stopped
	{stateTimeUp, evCancel, stateCancelling},
	{stateTimeUp, evEnd, stateFinishing},
	{stateTimeUp, evFail, stateFailed},
	{stateTimeUp, evShutdown, stateQueued},

	{stateStopping, evEpoch, stateStopping},
	{stateStopping, evTimeUp, stateStopping},
	{stateStopping, evStop, stateStopping},
	{stateStopping, evCancel, stateCancellingStop},
	{stateStopping, evEnd, stateFinishingStop},
	{stateStopping, evFail, stateFailed},
	{stateStopping, evShutdown, stateQueuedStop},
	{stateStopping, evRecover, stateQueuedStop},

	{stateSavingStopped, evStop, stateSavingStopped},
	{stateSavingStopped, evCancel, stateCancellingStop},
	{stateSavingStopped, evEnd, stateFinishingStop},
	{stateSavingStopped, evFail, stateFailed},
	{stateSavingStopped, evShutdown, stateQueuedStop},

	{stateCancelling, evEpoch, stateCancelling},
	{stateCancelling, evTimeUp, stateCancelling},
	{stateCancelling, evCancel, stateCancelling},
	{stateCancelling, evFail, stateFailed}, // a panic fails even a cancelled run
	{stateCancelling, evCancelled, stateCancelled},
	{stateCancellingStop, evEpoch, stateCancellingStop},
	{stateCancellingStop, evTimeUp, stateCancellingStop},
	{stateCancellingStop, evCancel, stateCancellingStop},
	{stateCancellingStop, evFail, stateFailed},
	{stateCancellingStop, evCancelled, stateCancelled},

	{stateFinishing, evTimeUp, stateFinishing},
	{stateFinishing, evStop, stateFinishingStop},
	{stateFinishing, evCancel, stateFinishing}, // too late: Cancel waits and reports the end
	{stateFinishing, evSucceed, stateSucceeded},
	{stateFinishing, evFail, stateFailed},
	{stateFinishing, evShutdown, stateQueued},
	{stateFinishingStop, evTimeUp, stateFinishingStop},
	{stateFinishingStop, evStop, stateFinishingStop},
	{stateFinishingStop, evCancel, stateFinishingStop},
	{stateFinishingStop, evSucceed, stateSucceeded},
	{stateFinishingStop, evFail, stateFailed},
	{stateFinishingStop, evShutdown, stateQueuedStop},

	{stateSucceeded, evRecover, stateSucceeded},
	{stateSucceeded, evDelete, stateDeleted},
	{stateFailed, evRecover, stateFailed},
	{stateFailed, evDelete, stateDeleted},
	{stateCancelled, evRecover, stateCancelled},
	{stateCancelled, evDelete, stateDeleted},
}

// refusedText is what the client reads, after "job <id> ", when it asks
// for a stop, cancel or delete that the state refuses: the same sentences
// TestStopCancelledJob, TestCancelQueued, TestStopFinished and the API
// tests expect.
var refusedText = map[state]map[event]string{
	stateQueued: {
		evStop:   "is queued; only a running job can be stopped",
		evDelete: "is queued; only a finished job can be deleted; cancel it first",
	},
	stateQueuedStop: {
		evStop:   "is queued; only a running job can be stopped",
		evDelete: "is queued; only a finished job can be deleted; cancel it first",
	},
	stateRunning:       {evDelete: "is running; only a finished job can be deleted; cancel it first"},
	stateTimeUp:        {evDelete: "is running; only a finished job can be deleted; cancel it first"},
	stateStopping:      {evDelete: "is running; only a finished job can be deleted; cancel it first"},
	stateSavingStopped: {evDelete: "is running; only a finished job can be deleted; cancel it first"},
	stateCancelling: {
		evStop:   "is being cancelled; only a running job can be stopped",
		evDelete: "is running; only a finished job can be deleted; cancel it first",
	},
	stateCancellingStop: {
		evStop:   "is being cancelled; only a running job can be stopped",
		evDelete: "is running; only a finished job can be deleted; cancel it first",
	},
	stateFinishing:     {evDelete: "is running; only a finished job can be deleted; cancel it first"},
	stateFinishingStop: {evDelete: "is running; only a finished job can be deleted; cancel it first"},
	stateSucceeded: {
		evStop:   "has already succeeded; only a running job can be stopped",
		evCancel: "has already succeeded; only a queued or running job can be cancelled",
	},
	stateFailed: {
		evStop:   "has already failed; only a running job can be stopped",
		evCancel: "has already failed; only a queued or running job can be cancelled",
	},
	stateCancelled: {
		evStop:   "has already been cancelled; only a running job can be stopped",
		evCancel: "has already been cancelled; only a queued or running job can be cancelled",
	},
}

// TestTransitions walks every (state, event) pair: the ones the lifecycle
// allows move to the state it names, every other one is refused with
// ErrConflict (ErrNotFound for a deleted job), and a refused stop, cancel
// or delete says what the client reads.
func TestTransitions(t *testing.T) {
	want := make(map[state]map[event]state)
	for _, a := range allowed {
		if want[a.from] == nil {
			want[a.from] = make(map[event]state)
		}
		if _, dup := want[a.from][a.e]; dup {
			t.Fatalf("allowed lists %s on %s twice", a.from, a.e)
		}
		want[a.from][a.e] = a.to
	}
	for s := range numStates {
		for e := range numEvents {
			t.Run(s.String()+"/"+e.String(), func(t *testing.T) {
				got, err := next(s, e)
				if to, ok := want[s][e]; ok {
					if err != nil || got != to {
						t.Fatalf("next = %s, %v; want %s", got, err, to)
					}
					return
				}
				if got != s {
					t.Errorf("refused next moved the job to %s", got)
				}
				if s == stateDeleted {
					if !errors.Is(err, ErrNotFound) {
						t.Fatalf("next on a deleted job: %v, want ErrNotFound", err)
					}
					return
				}
				if !errors.Is(err, ErrConflict) {
					t.Fatalf("next = %s, %v; want an ErrConflict refusal", got, err)
				}
				id := "5f0c8b9e-2d1a-4c3b-8e7f-6a5b4c3d2e1f"
				named := jobError(id, err)
				if !errors.Is(named, ErrConflict) || !strings.HasPrefix(named.Error(), "job "+id+" ") {
					t.Errorf("jobError = %q, want an ErrConflict starting with the job's id", named)
				}
				if text, ok := refusedText[s][e]; ok && err.Error() != text {
					t.Errorf("refusal %q, want %q", err, text)
				}
			})
		}
	}
}

// TestStateFacts checks what each state means outside the table: the
// status it shows, whether it holds a recorded stop, the stop reasons a
// job that ended in it may have, and that the lifecycle never forgets a
// recorded stop while the job lives and reaches every state from a
// submission.
func TestStateFacts(t *testing.T) {
	for _, tt := range []struct {
		s       state
		status  Status
		stop    bool
		reasons []StopReason
	}{
		{stateNew, Queued, false, nil},
		{stateQueued, Queued, false, nil},
		{stateQueuedStop, Queued, true, nil},
		{stateRunning, Running, false, nil},
		{stateTimeUp, Running, false, nil},
		{stateStopping, Running, true, nil},
		{stateSavingStopped, Running, true, nil},
		{stateCancelling, Running, false, nil},
		{stateCancellingStop, Running, true, nil},
		{stateFinishing, Running, false, nil},
		{stateFinishingStop, Running, true, nil},
		// The stop reasons types.go documents for each status.
		{stateSucceeded, Succeeded, false, []StopReason{ReasonCompleted, ReasonEarlyStopping, ReasonStopped, ReasonTimeLimit}},
		{stateFailed, Failed, false, []StopReason{ReasonFailed, ReasonTimeLimit}},
		{stateCancelled, Cancelled, false, []StopReason{ReasonCancelled}},
		{stateDeleted, "", false, nil},
	} {
		t.Run(tt.s.String(), func(t *testing.T) {
			if got := tt.s.status(); got != tt.status {
				t.Errorf("status %q, want %q", got, tt.status)
			}
			if got := tt.s.stopRequested(); got != tt.stop {
				t.Errorf("stopRequested %v, want %v", got, tt.stop)
			}
			if got := tt.s.stopReasons(); !slices.Equal(got, tt.reasons) {
				t.Errorf("stopReasons %v, want %v", got, tt.reasons)
			}
			if tt.s.terminal() != (tt.s.status().Terminal() || tt.s == stateDeleted) {
				t.Errorf("terminal %v disagrees with status %q", tt.s.terminal(), tt.s.status())
			}
		})
	}
	for _, a := range allowed {
		if a.from.stopRequested() && !a.to.terminal() && !a.to.stopRequested() {
			t.Errorf("%s on %s goes to %s, forgetting the recorded stop", a.from, a.e, a.to)
		}
		// finish fails a job whose outcome the table refuses, so every
		// state a run ends in must allow evFail.
		if a.e == evEnd || a.e == evCancel && a.to.cancelling() {
			if _, err := next(a.to, evFail); err != nil {
				t.Errorf("%s does not allow %s", a.to, evFail)
			}
		}
	}
	reached := map[state]bool{stateNew: true}
	for grew := true; grew; {
		grew = false
		for _, a := range allowed {
			if reached[a.from] && !reached[a.to] {
				reached[a.to], grew = true, true
			}
		}
	}
	// Start loads records found running, which no event in this process
	// leads to.
	reached[stateRunning], reached[stateStopping] = true, true
	for s := range numStates {
		if !reached[s] {
			t.Errorf("no transition leads to %s", s)
		}
	}
}

// TestEndReason: how a run that ended without an error gets its stop
// reason from the state it ended in and from the trainer.
func TestEndReason(t *testing.T) {
	for _, tt := range []struct {
		s                          state
		earlyStopped, stoppedEarly bool
		want                       StopReason
	}{
		{stateRunning, false, false, ReasonCompleted},
		{stateRunning, true, true, ReasonEarlyStopping},
		{stateTimeUp, false, true, ReasonTimeLimit},
		{stateTimeUp, false, false, ReasonCompleted}, // the last epoch ended as the limit ran out
		{stateTimeUp, true, true, ReasonEarlyStopping},
		{stateStopping, false, true, ReasonStopped},
		{stateStopping, false, false, ReasonCompleted},
		{stateSavingStopped, false, true, ReasonStopped},
	} {
		if got := tt.s.endReason(tt.earlyStopped, tt.stoppedEarly); got != tt.want {
			t.Errorf("%s.endReason(early stopped %v, stopped early %v) = %q, want %q",
				tt.s, tt.earlyStopped, tt.stoppedEarly, got, tt.want)
		}
	}
}

// TestRecordState: the record's status and stop_requested follow the
// state; a job that ends keeps the stop flag it had, and records load back
// into the state they were written from.
func TestRecordState(t *testing.T) {
	for _, a := range allowed {
		rec := store.JobRecord{StopRequested: a.from.stopRequested(), Status: string(a.from.status())}
		recordState(&rec, a.from, a.to)
		wantStatus, wantStop := a.to.status(), a.to.stopRequested()
		switch {
		case a.to == stateDeleted:
			wantStatus, wantStop = a.from.status(), a.from.stopRequested()
		case a.to.terminal():
			wantStop = a.from.stopRequested()
		}
		if Status(rec.Status) != wantStatus || rec.StopRequested != wantStop {
			t.Errorf("%s on %s: record status %q stop_requested %v, want %q, %v",
				a.from, a.e, rec.Status, rec.StopRequested, wantStatus, wantStop)
		}
	}
	for _, tt := range []struct {
		status string
		stop   bool
		want   state
	}{
		{"queued", false, stateQueued},
		{"queued", true, stateQueuedStop},
		{"running", false, stateRunning},
		{"running", true, stateStopping},
		{"succeeded", true, stateSucceeded},
		{"failed", false, stateFailed},
		{"cancelled", true, stateCancelled},
	} {
		got, err := recordedState(&store.JobRecord{Status: tt.status, StopRequested: tt.stop})
		if err != nil || got != tt.want {
			t.Errorf("recordedState(%s, stop %v) = %s, %v; want %s", tt.status, tt.stop, got, err, tt.want)
		}
	}
	if _, err := recordedState(&store.JobRecord{Status: "done"}); err == nil || !strings.Contains(err.Error(), `"done"`) {
		t.Errorf("recordedState(done) = %v, want an error naming the status", err)
	}
}

// trace records the transitions of each job, from the manager's hook.
type trace struct {
	mu  sync.Mutex
	evs map[string][]string
}

func newTrace() *trace { return &trace{evs: make(map[string][]string)} }

func (tr *trace) hook(id string, from state, e event, to state) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.evs[id] = append(tr.evs[id], e.String()+">"+to.String())
}

// of returns job id's transitions with repeated epochs shown once, since
// how many epochs a run trains before an event varies.
func (tr *trace) of(id string) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, s := range tr.evs[id] {
		if n := len(out); n > 0 && out[n-1] == s && strings.HasPrefix(s, "epoch>") {
			continue
		}
		out = append(out, s)
	}
	return out
}

// TestManagerPaths drives the real Manager along each path through the
// lifecycle and checks the transitions it took, the status and stop
// reason it shows, and the stored record.
func TestManagerPaths(t *testing.T) {
	ctx := context.Background()
	tr := newTrace()
	gates := map[string]*gate{}
	for _, name := range []string{"blocker", "gate-cancel", "gate-stop", "gate-stop-cancel"} {
		gates[name] = newGate()
		defer gates[name].release()
	}
	e := newEnv(t, testOptions(), testHooks{
		transition: tr.hook,
		beforeTrain: func(ctx context.Context, id, model string) {
			switch model {
			case "fail":
				panic("injected")
			case "blocker":
				gates[model].wait(ctx, id)
			}
		},
		afterEpoch: func(ctx context.Context, id, model string, epoch int) {
			switch {
			case model == "time-limit" && epoch == 1:
				// Outlasts the job's 0.5 s limit, which the first epoch
				// of 40 rows is well within.
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
			case strings.HasPrefix(model, "gate-") && epoch == 2:
				gates[model].wait(ctx, id)
			}
		},
	})
	bin := mustDataset(t, e.st, binaryData(40))

	// waitState waits until job id is in state s.
	waitState := func(t *testing.T, id string, s state) {
		t.Helper()
		waitFor(t, e.m, id, s.String(), func(Job) bool {
			e.m.mu.Lock()
			defer e.m.mu.Unlock()
			j, ok := e.m.jobs[id]
			return ok && j.state == s
		})
	}
	// stopAndWait stops the job waiting at its gate once the stop is
	// recorded; then runs more and lets Stop return.
	stopThen := func(t *testing.T, j Job, more func()) {
		t.Helper()
		done := make(chan error, 1)
		go func() { _, err := e.m.Stop(ctx, j.ID); done <- err }()
		waitState(t, j.ID, stateStopping)
		more()
		if err := <-done; err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	started := func(more ...string) []string {
		return append([]string{"submit>queued", "start>running"}, more...)
	}
	tests := []struct {
		name    string
		spec    Spec
		blocked bool // a job ahead holds the only worker until act has run
		act     func(t *testing.T, j Job)
		trace   []string
		status  Status
		reason  StopReason
		stop    bool // the record's stop_requested
	}{
		{"completed", smallSpec("done", bin, 3), false, nil,
			started("epoch>running", "end>finishing", "succeed>succeeded"), Succeeded, ReasonCompleted, false},
		{"failed", smallSpec("fail", bin, 3), false, nil,
			started("fail>failed"), Failed, ReasonFailed, false},
		{"time limit", func() Spec {
			s := smallSpec("time-limit", bin, 1000)
			s.Training.MaxDurationSeconds = 0.5
			return s
		}(), false, nil,
			started("epoch>running", "time up>running (time limit reached)", "end>finishing", "succeed>succeeded"),
			Succeeded, ReasonTimeLimit, false},
		{"cancel queued", smallSpec("queued", bin, 3), true, func(t *testing.T, j Job) {
			if _, err := e.m.Cancel(ctx, j.ID); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
		}, []string{"submit>queued", "cancel>cancelled"}, Cancelled, ReasonCancelled, false},
		{"cancel running", smallSpec("gate-cancel", bin, 50), false, func(t *testing.T, j Job) {
			gates["gate-cancel"].await(t)
			if _, err := e.m.Cancel(ctx, j.ID); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
		}, started("epoch>running", "cancel>being cancelled", "cancelled>cancelled"), Cancelled, ReasonCancelled, false},
		{"stop", smallSpec("gate-stop", bin, 50), false, func(t *testing.T, j Job) {
			gates["gate-stop"].await(t)
			stopThen(t, j, gates["gate-stop"].release)
		}, started("epoch>running", "stop>running (stopping)", "end>finishing (stop recorded)", "succeed>succeeded"),
			Succeeded, ReasonStopped, true},
		{"stop then cancel", smallSpec("gate-stop-cancel", bin, 50), false, func(t *testing.T, j Job) {
			gates["gate-stop-cancel"].await(t)
			stopThen(t, j, func() {
				if _, err := e.m.Cancel(ctx, j.ID); err != nil {
					t.Fatalf("Cancel: %v", err)
				}
			})
		}, started("epoch>running", "stop>running (stopping)", "cancel>being cancelled (stop recorded)", "cancelled>cancelled"),
			Cancelled, ReasonCancelled, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var blocker Job
			if tt.blocked {
				blocker = mustSubmit(t, e.m, smallSpec("blocker", bin, 1))
				gates["blocker"].await(t)
			}
			j := mustSubmit(t, e.m, tt.spec)
			if tt.act != nil {
				tt.act(t, j)
			}
			if tt.blocked {
				gates["blocker"].release()
				waitTerminal(t, e.m, blocker.ID)
			}
			got := waitTerminal(t, e.m, j.ID)
			if got.Status != tt.status || got.StopReason != tt.reason {
				t.Errorf("job ended %s, stop_reason %q (%q); want %s, %q", got.Status, got.StopReason, got.Error, tt.status, tt.reason)
			}
			if rec := storedJob(t, e.st, j.ID); Status(rec.Status) != tt.status || rec.StopReason != string(tt.reason) || rec.StopRequested != tt.stop {
				t.Errorf("stored status %q, stop_reason %q, stop_requested %v; want %q, %q, %v",
					rec.Status, rec.StopReason, rec.StopRequested, tt.status, tt.reason, tt.stop)
			}
			if err := e.m.Delete(ctx, j.ID); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := e.m.Get(ctx, j.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get after Delete: %v, want ErrNotFound", err)
			}
			if got, want := tr.of(j.ID), append(tt.trace, "delete>deleted"); !slices.Equal(got, want) {
				t.Errorf("transitions\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestManagerRecoveryPaths drives the lifecycle across restarts: a
// Shutdown requeues a running job, which the next Start resumes; records
// found running are queued again, or failed after 3 attempts; a stop
// recorded before a crash is saved from the checkpoint without training.
func TestManagerRecoveryPaths(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st1 := openStore(t, dir)
	t.Cleanup(func() { st1.Close() })
	tr1, g := newTrace(), newGate()
	defer g.release()
	m1, err := New(st1, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	m1.hooks = testHooks{transition: tr1.hook, afterEpoch: stopAt(g, "resume", 2)}
	if err := m1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	bin := mustDataset(t, st1, binaryData(40))
	resumed := mustSubmit(t, m1, smallSpec("resume", bin, 4))
	g.await(t)
	if err := m1.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// The shutdown ends the run, which then finishes as interrupted.
	want := []string{"submit>queued", "start>running", "epoch>running", "end>finishing", "shutdown>queued"}
	if got := tr1.of(resumed.ID); !slices.Equal(got, want) {
		t.Errorf("before the restart: transitions\n got %v\nwant %v", got, want)
	}
	if rec := storedJob(t, st1, resumed.ID); rec.Status != "queued" || rec.StopRequested || rec.StopReason != "" {
		t.Errorf("after Shutdown: stored status %q, stop_requested %v, stop_reason %q; want queued, false, none",
			rec.Status, rec.StopRequested, rec.StopReason)
	}
	// Records as a process that died mid-run leaves them.
	crashed, tired := "80000000-0000-4000-8000-000000000000", "90000000-0000-4000-8000-000000000000"
	putRecord(t, st1, m1, smallSpec("crashed", bin, 2), crashed, 20, Running, 1)
	putRecord(t, st1, m1, smallSpec("tired", bin, 2), tired, 21, Running, maxAttempts)

	// In a second directory, a stop is recorded and the process dies
	// before the trainer stops, as in TestStopSurvivesCrash.
	dir2 := t.TempDir()
	st2 := openStore(t, dir2)
	t.Cleanup(func() { st2.Close() })
	cs := &crashStore{Store: st2}
	g2 := newGate()
	defer g2.release()
	mc := newManager(t, cs, testOptions(), testHooks{afterEpoch: stopAt(g2, "stopped", 2)})
	bin2 := mustDataset(t, st2, binaryData(40))
	stopped := mustSubmit(t, mc, smallSpec("stopped", bin2, 50))
	g2.await(t)
	rec := storedJob(t, st2, stopped.ID)
	rec.StopRequested = true
	if err := st2.PutJob(ctx, rec); err != nil {
		t.Fatal(err)
	}
	cs.dead.Store(true)

	for _, run := range []struct {
		dir  string
		jobs []struct {
			id     string
			trace  []string
			status Status
			reason StopReason
		}
	}{
		{dir, []struct {
			id     string
			trace  []string
			status Status
			reason StopReason
		}{
			{resumed.ID, []string{"recover>queued", "start>running", "epoch>running", "end>finishing", "succeed>succeeded"}, Succeeded, ReasonCompleted},
			{crashed, []string{"recover>queued", "start>running", "epoch>running", "end>finishing", "succeed>succeeded"}, Succeeded, ReasonCompleted},
			{tired, []string{"fail>failed"}, Failed, ReasonFailed},
		}},
		{dir2, []struct {
			id     string
			trace  []string
			status Status
			reason StopReason
		}{
			{stopped.ID, []string{"recover>queued (stop recorded)", "start>running (saving a stopped job)",
				"end>finishing (stop recorded)", "succeed>succeeded"}, Succeeded, ReasonStopped},
		}},
	} {
		st := openStore(t, run.dir)
		t.Cleanup(func() { st.Close() })
		tr := newTrace()
		m := newManager(t, st, testOptions(), testHooks{transition: tr.hook})
		for _, tt := range run.jobs {
			got := waitTerminal(t, m, tt.id)
			if got.Status != tt.status || got.StopReason != tt.reason {
				t.Errorf("job %s ended %s, stop_reason %q (%q); want %s, %q", tt.id, got.Status, got.StopReason, got.Error, tt.status, tt.reason)
			}
			if trace := tr.of(tt.id); !slices.Equal(trace, tt.trace) {
				t.Errorf("job %s after the restart: transitions\n got %v\nwant %v", tt.id, trace, tt.trace)
			}
		}
	}
}
