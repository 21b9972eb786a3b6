package api

import (
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

// defaultModelCacheSize bounds the decoded models kept in memory. A model of
// the size the README's examples train is well under a megabyte; 64 of the
// largest allowed networks would still fit a modest container.
const defaultModelCacheSize = 64

// modelStore is what the cache needs from the store.
type modelStore interface {
	ModelMeta(ctx context.Context, name string, version int) (store.ModelMeta, error)
	ModelFile(ctx context.Context, name string, version int) (store.ModelMeta, []byte, error)
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
// store's metadata on every request (a new version may have been trained
// since) and then served from the cache by exact version.
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
}

func newModelCache(st modelStore, size int) *modelCache {
	if size <= 0 {
		size = defaultModelCacheSize
	}
	return &modelCache{store: st, size: size, entries: make(map[modelKey]*cacheEntry), lru: list.New()}
}

// get returns the model name at version, or at its latest version when
// version is 0. Errors from the store come back unchanged (wrapped), so
// callers can test them with errors.Is(err, store.ErrNotFound).
func (c *modelCache) get(ctx context.Context, name string, version int) (*servedModel, error) {
	if version == 0 {
		meta, err := c.store.ModelMeta(ctx, name, 0)
		if err != nil {
			return nil, err
		}
		version = meta.Version
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
		return nil, fmt.Errorf("decode model %s version %d: %w", key.name, key.version, err)
	}
	return newServedModel(meta, m)
}

// invalidate drops every cached version of name when version is 0, or the
// one version otherwise.
func (c *modelCache) invalidate(name string, version int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.entries {
		if k.name == name && (version == 0 || k.version == version) {
			c.removeLocked(e)
		}
	}
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
