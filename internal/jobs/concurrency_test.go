package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestConcurrentOperations submits, cancels, stops, lists, reads and
// subscribes to many jobs at once (run it with -race). Every job ends in a
// state consistent with what was asked of it, memory and disk agree, and
// after Shutdown no goroutine is left behind.
func TestConcurrentOperations(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	dir := t.TempDir()
	st := openStore(t, dir)
	m, err := New(st, Options{Workers: 2, QueueSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	// A short pause per epoch keeps jobs running long enough to be hit.
	m.hooks.afterEpoch = func(ctx context.Context, id, model string, epoch int) {
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
		}
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	bin := mustDataset(t, st, binaryData(40))

	const submitters, perSubmitter = 4, 6
	ctx := context.Background()
	var (
		mu   sync.Mutex
		ids  []string
		want = map[string]string{} // id -> what was done to it
		wg   sync.WaitGroup
	)
	for g := range submitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSubmitter {
				j, err := m.Submit(ctx, smallSpec(fmt.Sprintf("m%d", g), bin, 3+i))
				if err != nil {
					t.Errorf("Submit: %v", err)
					return
				}
				mu.Lock()
				ids = append(ids, j.ID)
				mu.Unlock()
				switch i % 3 {
				case 0:
					_, err := m.Cancel(ctx, j.ID)
					// A job may finish before the cancel lands.
					if err != nil && !errors.Is(err, ErrConflict) {
						t.Errorf("Cancel: %v", err)
					}
					mu.Lock()
					want[j.ID] = "cancel"
					mu.Unlock()
				case 1:
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							_, err := m.Stop(ctx, j.ID)
							if err == nil {
								break
							}
							if !errors.Is(err, ErrConflict) {
								t.Errorf("Stop: %v", err)
								return
							}
							// Not running yet, or finished: done when finished.
							if cur, _ := m.Get(ctx, j.ID); cur.Status.Terminal() {
								break
							}
							time.Sleep(time.Millisecond)
						}
						mu.Lock()
						want[j.ID] = "stop"
						mu.Unlock()
					}()
				}
			}
		}()
	}
	// Readers and subscribers while that happens.
	stopReaders := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stopReaders:
					return
				default:
				}
				jobs, _, err := m.List(ctx, ListFilter{Limit: 1000})
				if err != nil {
					t.Errorf("List: %v", err)
					return
				}
				for _, j := range jobs {
					if _, err := m.Get(ctx, j.ID); err != nil {
						t.Errorf("Get: %v", err)
					}
					m.DatasetInUse(bin)
					m.Counts()
				}
				if len(jobs) > 0 {
					events, cancel, err := m.Subscribe(jobs[0].ID)
					if err == nil {
						for range events {
						}
						cancel()
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()

	mu.Lock()
	all := append([]string(nil), ids...)
	mu.Unlock()
	if len(all) != submitters*perSubmitter {
		t.Fatalf("%d jobs submitted, want %d", len(all), submitters*perSubmitter)
	}
	for _, id := range all {
		got := waitTerminal(t, m, id)
		rec := storedJob(t, st, id)
		if rec.Status != string(got.Status) {
			t.Errorf("job %s: memory says %s, disk says %s", id, got.Status, rec.Status)
		}
		switch got.Status {
		case Succeeded:
			if got.ModelVersion == 0 {
				t.Errorf("job %s succeeded without a model version", id)
			}
		case Cancelled:
			if want[id] != "cancel" {
				t.Errorf("job %s cancelled, but only %q was asked", id, want[id])
			}
			if got.ModelVersion != 0 {
				t.Errorf("cancelled job %s has model version %d", id, got.ModelVersion)
			}
		default:
			t.Errorf("job %s ended %s: %q", id, got.Status, got.Error)
		}
	}
	close(stopReaders)
	readers.Wait()
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.Close()
	goleak.VerifyNone(t, ignore)
}
