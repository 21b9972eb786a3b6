package metrics

import "sync"

// DefaultMaxModels is Options.MaxModels when it is zero.
const DefaultMaxModels = 1000

// OtherModel is the model_name label that the per-model series of every
// model name beyond Options.MaxModels share. A model actually named
// "other" shares it too.
const OtherModel = "other"

// labelDeleter is a metric vector whose series can be deleted by label.
type labelDeleter interface {
	DeleteLabelValues(lvs ...string) bool
}

// modelLabels bounds the model_name label values of the per-model series
// (epochs, samples, predictions and their latency): the first max names
// seen get series of their own; later names share OtherModel until a
// deleted model frees a place. Without the bound, every model name ever
// trained or served would keep its series for the life of the process.
type modelLabels struct {
	max  int
	vecs []labelDeleter // the per-model series, keyed by model_name alone

	// mu is held, shared, while a series is updated, and alone while a
	// model's series are deleted, so that an update racing a delete lands
	// wholly before it (and is deleted) or after it (and starts the
	// series again, as for a new model of that name).
	mu    sync.RWMutex
	names map[string]struct{}
}

func newModelLabels(max int, vecs ...labelDeleter) *modelLabels {
	return &modelLabels{max: max, vecs: vecs, names: make(map[string]struct{})}
}

// observe calls f with the model_name value of name's series.
func (l *modelLabels) observe(name string, f func(label string)) {
	l.mu.RLock()
	if _, ok := l.names[name]; ok {
		f(name)
		l.mu.RUnlock()
		return
	}
	l.mu.RUnlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	label := name
	if _, ok := l.names[name]; !ok {
		if len(l.names) >= l.max {
			label = OtherModel
		} else {
			l.names[name] = struct{}{}
		}
	}
	f(label)
}

// forget deletes name's series and frees its place.
func (l *modelLabels) forget(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.names[name]; !ok {
		return
	}
	delete(l.names, name)
	for _, v := range l.vecs {
		v.DeleteLabelValues(name)
	}
}

// ModelDeleted drops the per-model series of a deleted model, so that
// they do not outlive it, and frees its place under Options.MaxModels. A
// model counted under OtherModel leaves the shared series as they are. It
// implements the API's Observer.
func (m *Metrics) ModelDeleted(name string) {
	m.models.forget(name)
}
