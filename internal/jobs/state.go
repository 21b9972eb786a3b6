package jobs

import (
	"errors"
	"fmt"

	"github.com/backpropd/backpropd/internal/store"
)

// state is where a job is in its life. It is the only in-memory account
// of the job's lifecycle: the Status a job shows, the status and
// stop_requested flag of its record, and which operations it allows all
// follow from it. It changes only through next.
//
// The running states are one phase of a run each; all of them show
// Status running. A stop that was asked is part of the state (queuedStop,
// stopping, savingStopped, cancellingStop, finishingStop) because it is
// durable: the record carries it, so that a restart saves the model
// instead of training on.
type state uint8

const (
	stateNew            state = iota // not yet recorded
	stateQueued                      // waiting for a worker
	stateQueuedStop                  // waiting for a worker, with a stop recorded before a restart or shutdown
	stateRunning                     // training
	stateTimeUp                      // training, and the time limit has stopped the trainer
	stateStopping                    // training, and Stop has asked the trainer to stop
	stateSavingStopped               // a stop recorded before a restart: saving the checkpoint's model without training
	stateCancelling                  // Cancel has cancelled the run, which has not ended yet
	stateCancellingStop              // stateCancelling after a stop was recorded
	stateFinishing                   // training is over and the outcome is being recorded: too late to cancel
	stateFinishingStop               // stateFinishing after a stop was recorded
	stateSucceeded                   // ended with a stored model
	stateFailed                      // ended with an error
	stateCancelled                   // ended by Cancel
	stateDeleted                     // record and checkpoint deleted; never written again
	numStates
)

var stateNames = [numStates]string{
	"new", "queued", "queued (stop recorded)", "running", "running (time limit reached)",
	"running (stopping)", "running (saving a stopped job)", "being cancelled",
	"being cancelled (stop recorded)", "finishing", "finishing (stop recorded)",
	"succeeded", "failed", "cancelled", "deleted",
}

func (s state) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// status is the Status a job in s shows and records. A deleted job has
// none: its last record is gone.
func (s state) status() Status {
	switch s {
	case stateNew, stateQueued, stateQueuedStop:
		return Queued
	case stateRunning, stateTimeUp, stateStopping, stateSavingStopped,
		stateCancelling, stateCancellingStop, stateFinishing, stateFinishingStop:
		return Running
	case stateSucceeded:
		return Succeeded
	case stateFailed:
		return Failed
	case stateCancelled:
		return Cancelled
	}
	return ""
}

// terminal reports whether a job in s has ended.
func (s state) terminal() bool {
	return s == stateSucceeded || s == stateFailed || s == stateCancelled || s == stateDeleted
}

// stopRequested reports whether s holds a recorded stop. For a job that
// has ended it is false; the record keeps the flag the job had when it
// ended (see recordState).
func (s state) stopRequested() bool {
	switch s {
	case stateQueuedStop, stateStopping, stateSavingStopped, stateCancellingStop, stateFinishingStop:
		return true
	}
	return false
}

// cancelling reports whether Cancel has cancelled the run in s: the run
// ends cancelled, whatever else happens to it.
func (s state) cancelling() bool { return s == stateCancelling || s == stateCancellingStop }

// stopReasons lists the stop reasons a job that ended in s may have, nil
// for a job that has not ended. A succeeded job kept a model: it trained
// every epoch, early stopping ended it, Stop did, or the time limit did. A
// failed one ended by an error, or by the time limit before its first
// complete epoch, which leaves no model to keep.
func (s state) stopReasons() []StopReason {
	switch s {
	case stateSucceeded:
		return []StopReason{ReasonCompleted, ReasonEarlyStopping, ReasonStopped, ReasonTimeLimit}
	case stateFailed:
		return []StopReason{ReasonFailed, ReasonTimeLimit}
	case stateCancelled:
		return []StopReason{ReasonCancelled}
	}
	return nil
}

// endReason is the stop reason of a run whose training ended without an
// error in state s, given what the trainer reports: whether early
// stopping ended it and whether it ended before its planned epochs. A
// trainer stopped in stateTimeUp was stopped by the time limit; in any
// other state, by Stop (a Stop after the time limit moves the job to
// stateStopping, so Stop wins).
func (s state) endReason(earlyStopped, stoppedEarly bool) StopReason {
	switch {
	case earlyStopped:
		return ReasonEarlyStopping
	case !stoppedEarly:
		return ReasonCompleted
	case s == stateTimeUp:
		return ReasonTimeLimit
	default:
		return ReasonStopped
	}
}

// event is something that happens to a job.
type event uint8

const (
	evSubmit    event = iota // Submit recorded the job
	evStart                  // a worker took the job
	evEpoch                  // the trainer completed an epoch
	evTimeUp                 // the job's time limit ran out
	evStop                   // Stop: keep the model trained so far
	evCancel                 // Cancel: discard the job
	evEnd                    // the run is over; its outcome is being recorded
	evSucceed                // the model is stored
	evFail                   // an error ended the run
	evCancelled              // the cancelled run has ended
	evShutdown               // Shutdown interrupted the run; the job waits for the next Start
	evRecover                // Start found the job's record unfinished
	evDelete                 // Delete removed the finished job
	numEvents
)

var eventNames = [numEvents]string{
	"submit", "start", "epoch", "time up", "stop", "cancel", "end",
	"succeed", "fail", "cancelled", "shutdown", "recover", "delete",
}

func (e event) String() string {
	if e < numEvents {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", uint8(e))
}

// transitions is the job lifecycle: transitions[s][e] is the state event
// e moves a job in state s to. An event a state does not list is refused
// (see refusal).
var transitions = [numStates]map[event]state{
	stateNew: {evSubmit: stateQueued},
	// A queued job fails without running when Start finds it can never
	// run: its memory estimate is over the cap one job may use.
	stateQueued: {
		evStart:   stateRunning,
		evCancel:  stateCancelled,
		evRecover: stateQueued,
		evFail:    stateFailed,
	},
	stateQueuedStop: {
		evStart:   stateSavingStopped,
		evCancel:  stateCancelled,
		evRecover: stateQueuedStop,
		evFail:    stateFailed,
	},
	stateRunning: {
		evEpoch:    stateRunning,
		evTimeUp:   stateTimeUp,
		evStop:     stateStopping,
		evCancel:   stateCancelling,
		evEnd:      stateFinishing,
		evFail:     stateFailed,
		evShutdown: stateQueued,
		// A record found running at Start: the process ended mid-run.
		evRecover: stateQueued,
	},
	stateTimeUp: {
		evEpoch:    stateTimeUp,
		evTimeUp:   stateTimeUp,
		evStop:     stateStopping,
		evCancel:   stateCancelling,
		evEnd:      stateFinishing,
		evFail:     stateFailed,
		evShutdown: stateQueued,
	},
	stateStopping: {
		evEpoch:    stateStopping,
		evTimeUp:   stateStopping,
		evStop:     stateStopping,
		evCancel:   stateCancellingStop,
		evEnd:      stateFinishingStop,
		evFail:     stateFailed,
		evShutdown: stateQueuedStop,
		evRecover:  stateQueuedStop,
	},
	stateSavingStopped: {
		evStop:     stateSavingStopped,
		evCancel:   stateCancellingStop,
		evEnd:      stateFinishingStop,
		evFail:     stateFailed,
		evShutdown: stateQueuedStop,
	},
	stateCancelling: {
		evEpoch:     stateCancelling,
		evTimeUp:    stateCancelling,
		evCancel:    stateCancelling,
		evFail:      stateFailed,
		evCancelled: stateCancelled,
	},
	stateCancellingStop: {
		evEpoch:     stateCancellingStop,
		evTimeUp:    stateCancellingStop,
		evCancel:    stateCancellingStop,
		evFail:      stateFailed,
		evCancelled: stateCancelled,
	},
	// Too late to cancel: Cancel waits for the end and then reports it.
	// A Stop is still recorded, and answered with the outcome.
	stateFinishing: {
		evTimeUp:   stateFinishing,
		evStop:     stateFinishingStop,
		evCancel:   stateFinishing,
		evSucceed:  stateSucceeded,
		evFail:     stateFailed,
		evShutdown: stateQueued,
	},
	stateFinishingStop: {
		evTimeUp:   stateFinishingStop,
		evStop:     stateFinishingStop,
		evCancel:   stateFinishingStop,
		evSucceed:  stateSucceeded,
		evFail:     stateFailed,
		evShutdown: stateQueuedStop,
	},
	stateSucceeded: {evRecover: stateSucceeded, evDelete: stateDeleted},
	stateFailed:    {evRecover: stateFailed, evDelete: stateDeleted},
	stateCancelled: {evRecover: stateCancelled, evDelete: stateDeleted},
	stateDeleted:   {},
}

// rules say, for the events a client asks for, which jobs allow them; a
// refusal's message ends with it.
var rules = map[event]string{
	evStop:   "only a running job can be stopped",
	evCancel: "only a queued or running job can be cancelled",
	evDelete: "only a finished job can be deleted; cancel it first",
}

// next returns the state event e moves a job in state s to. A refused
// event gives ErrNotFound for a deleted job and an ErrConflict otherwise,
// whose message says the job's state and the rule it breaks, to follow
// "job <id> " (see refusal).
func next(s state, e event) (state, error) {
	if s < numStates {
		if to, ok := transitions[s][e]; ok {
			return to, nil
		}
	}
	return s, refusal(s, e)
}

// refusal is the error of event e refused in state s.
func refusal(s state, e event) error {
	if s == stateDeleted {
		return ErrNotFound
	}
	var where string
	switch s {
	case stateSucceeded:
		where = "has already succeeded"
	case stateFailed:
		where = "has already failed"
	case stateCancelled:
		where = "has already been cancelled"
	case stateCancelling, stateCancellingStop:
		// What Stop must say; to Delete the job is simply running.
		if e == evStop {
			where = "is being cancelled"
		} else {
			where = "is running"
		}
	default:
		if st := s.status(); st != "" {
			where = "is " + string(st)
		} else {
			where = "is " + s.String()
		}
	}
	rule, ok := rules[e]
	if !ok {
		rule = "a job cannot " + e.String() + " then"
	}
	return &conflictError{msg: where + "; " + rule}
}

// jobError names the job in a refusal: "job <id> has already succeeded;
// only a running job can be stopped". Other errors pass unchanged.
func jobError(id string, err error) error {
	var ce *conflictError
	if errors.As(err, &ce) {
		return &conflictError{msg: "job " + id + " " + ce.msg}
	}
	return err
}

// recordState writes into rec what moving from state from to state to
// makes of it: the status of to and, while the job has not ended, whether
// a stop is recorded. A job that ends keeps the stop flag it had, which
// legacyStopReason reads in records without a stop reason. A deleted job's
// record is left as it was.
func recordState(rec *store.JobRecord, from, to state) {
	if to == stateDeleted {
		return
	}
	rec.Status = string(to.status())
	switch {
	case !to.terminal():
		rec.StopRequested = to.stopRequested()
	case !from.terminal():
		rec.StopRequested = from.stopRequested()
	}
}

// recordedState is the state a stored record shows: its status and, for a
// job that has not ended, whether a stop is recorded. A record found
// running belongs to a run that the end of its process interrupted.
func recordedState(rec *store.JobRecord) (state, error) {
	switch Status(rec.Status) {
	case Queued:
		if rec.StopRequested {
			return stateQueuedStop, nil
		}
		return stateQueued, nil
	case Running:
		if rec.StopRequested {
			return stateStopping, nil
		}
		return stateRunning, nil
	case Succeeded:
		return stateSucceeded, nil
	case Failed:
		return stateFailed, nil
	case Cancelled:
		return stateCancelled, nil
	}
	return stateNew, fmt.Errorf("unknown status %q", rec.Status)
}
