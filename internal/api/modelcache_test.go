package api

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/store"
)

// countingStore serves one model file under any name and version up to
// latest, counting the reads that lead to a decode.
type countingStore struct {
	file      []byte
	latest    int
	files     atomic.Int64  // ModelFile calls
	metas     atomic.Int64  // ModelMeta calls
	gate      chan struct{} // when set, ModelFile waits on it
	metaGate  chan struct{} // when set, ModelMeta waits on it
	panicNext atomic.Bool   // when set, the next ModelMeta panics
	mu        sync.Mutex
	deleted   map[modelKey]bool
	failNext  atomic.Bool
}

func (s *countingStore) ModelMeta(_ context.Context, name string, version int) (store.ModelMeta, error) {
	s.metas.Add(1)
	if s.metaGate != nil {
		<-s.metaGate
	}
	if s.panicNext.CompareAndSwap(true, false) {
		panic("metadata read fails")
	}
	if version == 0 {
		version = s.latest
	}
	return store.ModelMeta{Name: name, Version: version}, nil
}

func (s *countingStore) ModelFile(_ context.Context, name string, version int) (store.ModelMeta, []byte, error) {
	s.files.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	if s.failNext.CompareAndSwap(true, false) {
		return store.ModelMeta{}, nil, store.ErrCorrupt
	}
	s.mu.Lock()
	gone := s.deleted[modelKey{name, version}]
	s.mu.Unlock()
	if gone {
		return store.ModelMeta{}, nil, store.ErrNotFound
	}
	return store.ModelMeta{Name: name, Version: version}, s.file, nil
}

// changeCountingStore is a countingStore that counts model changes, as the
// real store may (modelChangeCounter).
type changeCountingStore struct {
	*countingStore
	changes atomic.Uint64
}

func (s *changeCountingStore) ModelChanges() uint64 { return s.changes.Load() }

// givingUpStore is a countingStore whose first metadata read waits until
// its request's context ends, as a read from a stalled disk would.
type givingUpStore struct {
	*countingStore
	started chan struct{}
	once    sync.Once
}

func (s *givingUpStore) ModelMeta(ctx context.Context, name string, version int) (store.ModelMeta, error) {
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.started)
		<-ctx.Done()
		return store.ModelMeta{}, ctx.Err()
	}
	return s.countingStore.ModelMeta(ctx, name, version)
}

func TestModelCache(t *testing.T) {
	file := mustTrain(t, "classifier").file
	ctx := context.Background()

	t.Run("decodes once per version", func(t *testing.T) {
		st := &countingStore{file: file, latest: 3}
		c := newModelCache(st, 4)
		for range 5 {
			sm, err := c.get(ctx, "iris", 0)
			if err != nil {
				t.Fatal(err)
			}
			if sm.meta.Version != 3 || sm.version != "3" {
				t.Fatalf("latest resolved to %d (%q), want 3", sm.meta.Version, sm.version)
			}
		}
		if _, err := c.get(ctx, "iris", 3); err != nil {
			t.Fatal(err)
		}
		if n := st.files.Load(); n != 1 {
			t.Errorf("%d model file reads for one version, want 1", n)
		}
	})
	t.Run("latest without a change counter is reused for latestTTL", func(t *testing.T) {
		st := &countingStore{file: file, latest: 3}
		c := newModelCache(st, 4)
		clock := time.Unix(1e9, 0)
		c.now = func() time.Time { return clock }
		for range 5 {
			c.get(ctx, "iris", 0)
		}
		if n := st.metas.Load(); n != 1 {
			t.Errorf("%d metadata reads for 5 latest lookups within the TTL, want 1", n)
		}
		st.latest = 4
		if sm, _ := c.get(ctx, "iris", 0); sm.meta.Version != 3 {
			t.Errorf("within the TTL latest moved to %d; want the resolved 3", sm.meta.Version)
		}
		clock = clock.Add(latestTTL)
		if sm, _ := c.get(ctx, "iris", 0); sm.meta.Version != 4 {
			t.Errorf("after the TTL latest is %d, want the new 4", sm.meta.Version)
		}
	})
	t.Run("latest with a change counter is exact", func(t *testing.T) {
		st := &changeCountingStore{countingStore: &countingStore{file: file, latest: 3}}
		c := newModelCache(st, 4)
		for range 5 {
			c.get(ctx, "iris", 0)
		}
		if n := st.metas.Load(); n != 1 {
			t.Errorf("%d metadata reads for 5 latest lookups without a change, want 1", n)
		}
		st.latest = 4
		st.changes.Add(1) // a job stored version 4
		if sm, _ := c.get(ctx, "iris", 0); sm.meta.Version != 4 {
			t.Errorf("right after a change latest is %d, want 4", sm.meta.Version)
		}
	})
	t.Run("invalidate forgets latest", func(t *testing.T) {
		st := &countingStore{file: file, latest: 3}
		c := newModelCache(st, 4)
		c.get(ctx, "iris", 0)
		st.latest = 2 // version 3 was deleted through the API
		c.invalidate("iris", 3)
		if sm, _ := c.get(ctx, "iris", 0); sm.meta.Version != 2 {
			t.Errorf("after deleting the latest version, latest is %d, want 2", sm.meta.Version)
		}
	})
	t.Run("concurrent first requests share one decode", func(t *testing.T) {
		st := &countingStore{file: file, latest: 1, gate: make(chan struct{})}
		c := newModelCache(st, 4)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				_, err := c.get(ctx, "iris", 1)
				errs <- err
			})
		}
		// Let the goroutines pile up on the one loading entry, then release.
		for st.files.Load() == 0 {
			runtime.Gosched()
		}
		close(st.gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := st.files.Load(); n != 1 {
			t.Errorf("%d decodes for 8 concurrent requests, want 1", n)
		}
	})
	t.Run("concurrent first requests for latest share one metadata read", func(t *testing.T) {
		// The metadata holds every feature name: for a model of a million
		// features each read decoded about 50 MB, and 20 requests at once
		// on a model not yet resolved held 1.3 GB.
		st := &changeCountingStore{countingStore: &countingStore{file: file, latest: 2, metaGate: make(chan struct{})}}
		c := newModelCache(st, 4)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				sm, err := c.get(ctx, "iris", 0)
				if err == nil && sm.meta.Version != 2 {
					err = errors.New("latest resolved to version " + sm.version + ", want 2")
				}
				errs <- err
			})
		}
		// Without sharing, each goroutine would be in ModelMeta within
		// this time, waiting on the gate.
		for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline) && st.metas.Load() < 8; {
			time.Sleep(time.Millisecond)
		}
		close(st.metaGate)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := st.metas.Load(); n != 1 {
			t.Errorf("%d metadata reads for 8 concurrent requests for latest, want 1", n)
		}
	})
	t.Run("a metadata read that panics does not hold up the next request", func(t *testing.T) {
		st := &countingStore{file: file, latest: 2}
		st.panicNext.Store(true)
		c := newModelCache(st, 4)
		func() {
			defer func() { _ = recover() }()
			_, _ = c.get(ctx, "iris", 0)
			t.Fatal("the store's panic did not reach the caller")
		}()
		done := make(chan error, 1)
		go func() {
			_, err := c.get(ctx, "iris", 0)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the request after a panicked metadata read still waits after 5 s")
		}
	})
	t.Run("a shared metadata read whose request gave up is read again", func(t *testing.T) {
		st := &givingUpStore{countingStore: &countingStore{file: file, latest: 2}, started: make(chan struct{})}
		c := newModelCache(st, 4)
		leaderCtx, cancel := context.WithCancel(ctx)
		leader := make(chan error, 1)
		go func() {
			_, err := c.get(leaderCtx, "iris", 0)
			leader <- err
		}()
		<-st.started // the leader's read is in flight
		waiter := make(chan error, 1)
		go func() {
			sm, err := c.get(ctx, "iris", 0)
			if err == nil && sm.meta.Version != 2 {
				err = errors.New("latest resolved to version " + sm.version + ", want 2")
			}
			waiter <- err
		}()
		time.Sleep(50 * time.Millisecond) // let the waiter join the read
		cancel()
		if err := <-leader; !errors.Is(err, context.Canceled) {
			t.Errorf("the request that gave up got %v, want context.Canceled", err)
		}
		select {
		case err := <-waiter:
			if err != nil {
				t.Errorf("the request still waiting got %v, want the model", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the request still waiting has no answer after 5 s")
		}
	})
	t.Run("least recently used goes first", func(t *testing.T) {
		st := &countingStore{file: file, latest: 1}
		c := newModelCache(st, 2)
		for _, name := range []string{"a", "b", "a", "c"} { // b is least recent when c arrives
			if _, err := c.get(ctx, name, 1); err != nil {
				t.Fatal(err)
			}
		}
		if c.len() != 2 {
			t.Errorf("cache holds %d, want its bound 2", c.len())
		}
		before := st.files.Load()
		c.get(ctx, "a", 1)
		if st.files.Load() != before {
			t.Errorf("a was evicted, but b was the least recently used")
		}
		c.get(ctx, "b", 1)
		if st.files.Load() != before+1 {
			t.Errorf("b was still cached after eviction")
		}
	})
	t.Run("invalidate", func(t *testing.T) {
		st := &countingStore{file: file, latest: 2, deleted: map[modelKey]bool{}}
		c := newModelCache(st, 8)
		c.get(ctx, "iris", 1)
		c.get(ctx, "iris", 2)
		c.get(ctx, "other", 1)
		c.invalidate("iris", 1)
		if c.len() != 2 {
			t.Errorf("after invalidating one version, %d entries, want 2", c.len())
		}
		st.deleted[modelKey{"iris", 1}] = true
		if _, err := c.get(ctx, "iris", 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted version: err = %v, want not found", err)
		}
		c.invalidate("iris", 0)
		if c.len() != 1 {
			t.Errorf("after invalidating a name, %d entries, want 1 (other)", c.len())
		}
	})
	t.Run("a delete during a decode is not undone", func(t *testing.T) {
		st := &countingStore{file: file, latest: 1, gate: make(chan struct{})}
		c := newModelCache(st, 8)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.get(ctx, "iris", 1)
		}()
		for st.files.Load() == 0 {
			runtime.Gosched()
		}
		c.invalidate("iris", 1) // the delete lands while the file is being read
		close(st.gate)
		<-done
		if c.len() != 0 {
			t.Errorf("a model loaded across a delete was cached")
		}
	})
	t.Run("errors are not cached", func(t *testing.T) {
		st := &countingStore{file: file, latest: 1}
		st.failNext.Store(true)
		c := newModelCache(st, 8)
		if _, err := c.get(ctx, "iris", 1); !errors.Is(err, store.ErrCorrupt) {
			t.Fatalf("err = %v, want the store's", err)
		}
		if _, err := c.get(ctx, "iris", 1); err != nil {
			t.Errorf("retry after a failed load: %v", err)
		}
	})
	t.Run("garbage file", func(t *testing.T) {
		c := newModelCache(&countingStore{file: []byte("not a model"), latest: 1}, 8)
		if _, err := c.get(ctx, "iris", 1); err == nil {
			t.Errorf("a garbage model file decoded")
		}
	})
}
