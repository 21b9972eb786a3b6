package membudget

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestTryReserve(t *testing.T) {
	b := New(100)
	tests := []struct {
		name   string
		n      int64
		wantOK bool
		used   int64
	}{
		{"fits", 60, true, 60},
		{"the rest exactly", 40, true, 100},
		{"nothing left", 1, false, 100},
		{"zero always fits", 0, true, 100},
	}
	var releases []func()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel, ok := b.TryReserve(tt.n)
			if ok != tt.wantOK {
				t.Fatalf("TryReserve(%d) ok = %v, want %v", tt.n, ok, tt.wantOK)
			}
			if ok {
				releases = append(releases, rel)
			}
			if got := b.Used(); got != tt.used {
				t.Errorf("Used() = %d, want %d", got, tt.used)
			}
		})
	}
	releases[0]()
	releases[0]() // a second call gives nothing back again
	if got := b.Used(); got != 40 {
		t.Errorf("after releasing 60 twice, Used() = %d, want 40", got)
	}
	if _, ok := b.TryReserve(101); ok {
		t.Error("TryReserve(101) of a 100-byte budget succeeded")
	}
}

func TestReserveWaitsForRelease(t *testing.T) {
	b := New(10)
	first, ok := b.TryReserve(8)
	if !ok {
		t.Fatal("TryReserve(8) of 10 failed")
	}
	got := make(chan error, 1)
	go func() {
		rel, err := b.Reserve(context.Background(), 5)
		if err == nil {
			defer rel()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Reserve(5) returned %v while only 2 bytes were free", err)
	case <-time.After(50 * time.Millisecond):
	}
	first()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Reserve(5) after the release: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Reserve(5) still waiting 5 s after 8 bytes were released")
	}
}

func TestReserveRefusesWhatNeverFits(t *testing.T) {
	b := New(10)
	if _, err := b.Reserve(context.Background(), 11); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Reserve(11) of 10: err = %v, want ErrTooLarge", err)
	}
	hold, _ := b.TryReserve(10)
	defer hold()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.Reserve(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Reserve(1) of a full budget: err = %v, want the context's deadline", err)
	}
}

// TestConcurrentReservationsNeverOverbook has 8 goroutines reserve and
// release 30 of 100 bytes in a loop; at most 3 may hold a reservation at
// once (3 × 30 = 90 <= 100 < 4 × 30).
func TestConcurrentReservationsNeverOverbook(t *testing.T) {
	b := New(100)
	var mu sync.Mutex
	holding, most := 0, 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				rel, err := b.Reserve(context.Background(), 30)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				holding++
				most = max(most, holding)
				mu.Unlock()
				mu.Lock()
				holding--
				mu.Unlock()
				rel()
			}
		}()
	}
	wg.Wait()
	if most > 3 {
		t.Errorf("%d reservations of 30 bytes held at once in a 100-byte budget, want at most 3", most)
	}
	if u := b.Used(); u != 0 {
		t.Errorf("Used() = %d after every release, want 0", u)
	}
}
