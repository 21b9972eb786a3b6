package api

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

// defaultModelCacheSize bounds the decoded models kept in memory. A model of
// the size the README's examples train is well under a megabyte; 64 of the
// largest allowed networks would still fit a modest container.
const defaultModelCacheSize = 64

// latestTTL bounds how long a resolved "latest" version is reused when the
// store cannot say whether its models changed (see modelChangeCounter).
// Resolving latest reads the model's directory and metadata file, which
// would dominate a small prediction; like TensorFlow Serving, which polls
// for new versions every second by default, a version trained meanwhile is
// served from "latest" within this time. Requests for an exact version, and
// every delete or import through the API, are never stale.
const latestTTL = time.Second

// modelStore is what the cache needs from the store.
type modelStore interface {
	ModelMeta(ctx context.Context, name string, version int) (store.ModelMeta, error)
	ModelFile(ctx context.Context, name string, version int) (store.ModelMeta, []byte, error)
}

// modelChangeCounter is implemented by a store that counts its model
// writes (every put and delete of a version) in memory. With it, a resolved
// "latest" is reused exactly as long as no model changed, instead of for
// latestTTL.
type modelChangeCounter interface {
	ModelChanges() uint64
}

// servedModel is a decoded model with everything a prediction needs that
// does not change per request, computed once per (name, version).
type servedModel struct {
	meta    store.ModelMeta
	model   *engine.Model
	version string // meta.Version in decimal, for /v2 and for responses
	// classes holds the class labels JSON-encoded, ready to be copied into
	// responses; nil for models without classes.
	classes [][]byte
	// featureIndex maps a feature name to its column, for rows given as
	// objects.
	featureIndex map[string]int
	// names are the feature names, in column order; featureList is them
	// for error messages (nameList), built once so that a request with
	// many bad rows does not rebuild it.
	names       []string
	featureList string
	// typed says the model takes raw typed cells (engine.Model.Typed);
	// inputs are then its input columns (nil for a model of numeric
	// features, whose inputs are its names, so that a model of a million
	// features does not keep a million descriptions). target is its
	// target column's name.
	typed  bool
	inputs []engine.InputColumn
	target string
	// precision is what the model computes in: its config's, float64
	// for a model from before precision existed, whose config has none.
	precision engine.Precision
}

func newServedModel(meta store.ModelMeta, m *engine.Model) (*servedModel, error) {
	sm := &servedModel{meta: meta, model: m, version: strconv.Itoa(meta.Version)}
	for _, c := range m.Classes() {
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encode class %q: %w", c, err)
		}
		sm.classes = append(sm.classes, b)
	}
	names := m.FeatureNames()
	sm.featureIndex = make(map[string]int, len(names))
	for i, n := range names {
		sm.featureIndex[n] = i
	}
	sm.names, sm.featureList = names, nameList(names)
	sm.typed, sm.target = m.Typed(), m.TargetName()
	sm.precision = m.Config().Training.Precision
	if sm.precision == "" {
		sm.precision = engine.Float64
	}
	if sm.typed {
		sm.inputs = m.Inputs()
	}
	return sm, nil
}

type modelKey struct {
	name    string
	version int
}

// cacheEntry is one cached model. ready is closed once sm or err is set, so
// concurrent requests for a model being decoded wait for that one decode
// instead of decoding it again.
type cacheEntry struct {
	key   modelKey
	ready chan struct{}
	sm    *servedModel
	err   error
	elem  *list.Element
}

// modelCache keeps decoded models by exact (name, version), least recently
// used first out. Decoding a model file on every request would dominate a
// prediction's cost; versions are immutable once stored, so a cached model is
// valid until its version is deleted. "Latest" is resolved through the
// store's metadata (see resolveLatest for how often) and then served from
// the cache by exact version.
type modelCache struct {
	store modelStore
	size  int

	mu      sync.Mutex
	entries map[modelKey]*cacheEntry
	lru     *list.List // front: most recently used; values are *cacheEntry
	// gen counts invalidations; a decode that started before one does not
	// enter the cache, so a delete racing a first predict cannot leave the
	// deleted version cached.
	gen uint64
	// latest maps a name to its resolved latest version.
	latest map[string]latestVersion
	// resolving holds the resolutions of latest in flight, by name, so
	// that concurrent requests share one read of the metadata, which for a
	// model of a million features is a million names to decode.
	resolving map[string]*latestCall
	now       func() time.Time // time.Now; tests move it
}

// latestCall is one resolution of a name's latest version in flight:
// done is closed once version or err is set. changes and gen are what
// the resolution read before the store, so that only requests that read
// the same join it.
type latestCall struct {
	done         chan struct{}
	changes, gen uint64
	version      int
	err          error
}

// latestVersion is a resolved "latest": the version, when it was resolved,
// and the store's change count and the cache's gen before resolving.
type latestVersion struct {
	version int
	at      time.Time
	changes uint64
	gen     uint64
}

func newModelCache(st modelStore, size int) *modelCache {
	if size <= 0 {
		size = defaultModelCacheSize
	}
	return &modelCache{store: st, size: size, entries: make(map[modelKey]*cacheEntry), lru: list.New(),
		latest: make(map[string]latestVersion), resolving: make(map[string]*latestCall), now: time.Now}
}

// resolveLatest returns name's latest version, from the store or, while it
// cannot have changed (or for latestTTL without a change counter), from the
// last resolution.
func (c *modelCache) resolveLatest(ctx context.Context, name string) (int, error) {
	for {
		v, again, err := c.resolveLatestOnce(ctx, name)
		if !again {
			return v, err
		}
	}
}

// resolveLatestOnce is one try of resolveLatest. again reports that it
// joined another request's read of the metadata which ended with that
// request's context while this one's is still live: it should read again.
func (c *modelCache) resolveLatestOnce(ctx context.Context, name string) (version int, again bool, err error) {
	counter, exact := c.store.(modelChangeCounter)
	var changes uint64
	if exact {
		changes = counter.ModelChanges()
	}
	now := c.now()
	c.mu.Lock()
	l, ok := c.latest[name]
	gen := c.gen
	if ok && l.gen == gen && ((exact && l.changes == changes) || (!exact && now.Sub(l.at) < latestTTL)) {
		c.mu.Unlock()
		return l.version, false, nil
	}
	if f, ok := c.resolving[name]; ok && f.gen == gen && f.changes == changes {
		// Nothing changed since that resolution read its counts, so its
		// answer is as fresh as this request's own would be.
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
		if f.err != nil && ctx.Err() == nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
			return 0, true, nil
		}
		return f.version, false, f.err
	}
	f := &latestCall{done: make(chan struct{}), changes: changes, gen: gen}
	c.resolving[name] = f
	c.mu.Unlock()
	// The change count and gen were read before the store, so a write that
	// lands during the read makes this resolution stale at once. A read
	// that panics (the recoverer answers this request) still ends the
	// call, so that its waiters get an error instead of waiting forever.
	f.err = errLatestAbandoned
	func() {
		defer func() {
			c.mu.Lock()
			if c.resolving[name] == f {
				delete(c.resolving, name)
			}
			c.mu.Unlock()
			close(f.done)
		}()
		meta, err := c.store.ModelMeta(ctx, name, 0)
		f.version, f.err = meta.Version, err
	}()
	if f.err != nil {
		return 0, false, f.err
	}
	c.mu.Lock()
	if len(c.latest) >= 4*c.size {
		// Bounded like the models: names are cheap to resolve again.
		clear(c.latest)
	}
	c.latest[name] = latestVersion{version: f.version, at: now, changes: changes, gen: gen}
	c.mu.Unlock()
	return f.version, false, nil
}

// errLatestAbandoned is what the requests that shared a resolution of
// latest get when its read of the metadata panicked: a server fault.
var errLatestAbandoned = errors.New("resolve the latest model version: the metadata read it waited for did not finish")

// get returns the model name at version, or at its latest version when
// version is 0. Errors from the store come back unchanged (wrapped), so
// callers can test them with errors.Is(err, store.ErrNotFound).
func (c *modelCache) get(ctx context.Context, name string, version int) (*servedModel, error) {
	if version == 0 {
		v, err := c.resolveLatest(ctx, name)
		if err != nil {
			return nil, err
		}
		version = v
	}
	key := modelKey{name, version}

	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		return e.sm, nil
	}
	e := &cacheEntry{key: key, ready: make(chan struct{})}
	e.elem = c.lru.PushFront(e)
	c.entries[key] = e
	gen := c.gen
	c.evictLocked()
	c.mu.Unlock()

	// The decode runs on its own context: waiters from other requests share
	// it, and one client giving up must not fail them all.
	e.sm, e.err = c.load(context.WithoutCancel(ctx), key)
	close(e.ready)

	c.mu.Lock()
	if e.err != nil || c.gen != gen {
		// Errors are not cached (the next request retries), and neither is a
		// model whose version may have been deleted meanwhile.
		c.removeLocked(e)
	}
	c.mu.Unlock()
	if e.err != nil {
		return nil, e.err
	}
	return e.sm, nil
}

func (c *modelCache) load(ctx context.Context, key modelKey) (*servedModel, error) {
	meta, file, err := c.store.ModelFile(ctx, key.name, key.version)
	if err != nil {
		return nil, err
	}
	m, err := engine.DecodeModel(file)
	if err != nil {
		// A 500: the file is the server's data. The log line names it.
		return nil, fmt.Errorf("decode model %s version %d, %s: %w", meta.Name, meta.Version, store.ModelFilePath(meta.Name, meta.Version), err)
	}
	return newServedModel(meta, m)
}

// invalidate drops every cached version of name when version is 0, or the
// one version otherwise.
func (c *modelCache) invalidate(name string, version int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.latest, name)
	for k, e := range c.entries {
		if k.name == name && (version == 0 || k.version == version) {
			c.removeLocked(e)
		}
	}
}

// forgetLatest drops name's resolved latest version, after a new version
// was stored through the API.
func (c *modelCache) forgetLatest(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.latest, name)
}

// len is the number of cached entries.
func (c *modelCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *modelCache) evictLocked() {
	for c.lru.Len() > c.size {
		c.removeLocked(c.lru.Back().Value.(*cacheEntry))
	}
}

func (c *modelCache) removeLocked(e *cacheEntry) {
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
	}
	if e.elem != nil {
		c.lru.Remove(e.elem)
		e.elem = nil
	}
}
