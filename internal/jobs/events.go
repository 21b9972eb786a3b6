package jobs

import "github.com/backpropd/backpropd/internal/engine"

// Subscription buffering. A job publishes at most two status events after a
// subscription's first one (running, then the terminal status), so keeping
// statusReserve slots free for them means a status event always fits and
// publishing never blocks; epoch events that would eat into the reserve are
// dropped.
const (
	subBuffer     = 64
	statusReserve = 4
)

// subscriber is one Subscribe call's channel.
type subscriber struct {
	ch     chan Event
	closed bool
}

// Subscribe streams a job's events: first a status event with the current
// state and the whole history, then every epoch and status change, closing
// after the terminal status (at once after the first event when the job
// has already ended). Only the first event carries the history: later
// status events have Job.History nil, so a long job's history is sent once,
// not again with every status change. cancel releases the subscription and
// may be called more than once.
//
// Events hold pointers shared by every subscriber, and the first event's
// history shares the job's entries (see historyLocked) and their encoding
// (Event.HistoryJSON), so the memory a job's subscriptions hold does not
// grow with their number beyond their buffers.
//
// A slow subscriber never slows training: each subscription has a buffer of
// 64 events, of which the last few are kept for status events. When an
// epoch event finds the buffer full it is dropped for that subscriber, so a
// reader that falls behind misses intermediate epochs (Get still
// carries the full history) but always receives the terminal
// status, after which the channel is closed. Shutdown closes every
// subscription, possibly before a terminal status.
func (m *Manager) Subscribe(id string) (events <-chan Event, cancel func(), err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return nil, func() {}, ErrNotFound
	}
	s := &subscriber{ch: make(chan Event, subBuffer)}
	snap := j.snapshotLocked()
	s.ch <- Event{Kind: EventStatus, Job: &snap, HistoryJSON: j.historyJSONLocked()}
	if snap.Status.Terminal() || m.closing {
		close(s.ch)
		s.closed = true
		return s.ch, func() {}, nil
	}
	j.subs[s] = struct{}{}
	cancel = func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if !s.closed {
			delete(j.subs, s)
			close(s.ch)
			s.closed = true
		}
	}
	return s.ch, cancel, nil
}

// publishEpochLocked sends an epoch event to every subscriber with room.
func (m *Manager) publishEpochLocked(j *job, e engine.Epoch) {
	for s := range j.subs {
		if len(s.ch) >= cap(s.ch)-statusReserve {
			continue
		}
		s.ch <- Event{Kind: EventEpoch, Epoch: &e}
	}
}

// publishStatusLocked sends a status event to every subscriber, closing
// their channels after a terminal one. The event leaves out the history:
// subscribers had it in their first event and the epoch events since.
func (m *Manager) publishStatusLocked(j *job, snap Job) {
	snap.History = nil
	for s := range j.subs {
		select {
		case s.ch <- Event{Kind: EventStatus, Job: &snap}:
		default:
			// Cannot happen while statusReserve covers the status events a
			// job publishes; losing one beats blocking training.
			m.log.Error("subscriber buffer full; status event dropped", "job", snap.ID)
		}
	}
	if snap.Status.Terminal() {
		m.closeSubsLocked(j)
	}
}

// closeSubsLocked closes and forgets every subscription of j.
func (m *Manager) closeSubsLocked(j *job) {
	for s := range j.subs {
		close(s.ch)
		s.closed = true
		delete(j.subs, s)
	}
}
