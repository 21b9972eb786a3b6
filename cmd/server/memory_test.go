package main

import (
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/jobs"
)

func TestNewMemory(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	const gib = 1 << 30
	tests := []struct {
		name        string
		args        []string
		env         map[string]string
		limit       int64
		jobMax      int64
		wantErrPart string
	}{
		// 2 GiB is deploy/kubernetes/deployment.yaml's limit: a budget of
		// 70%, and half of that per job.
		{"flag", []string{"--memory-limit", "2GiB"}, nil, 2 * gib, share(2*gib, budgetShare) / 2, ""},
		{"environment", nil, map[string]string{"BACKPROPD_MEMORY_LIMIT": "1GiB"}, gib, share(gib, budgetShare) / 2, ""},
		{"explicit job cap", []string{"--memory-limit", "2GiB", "--job-max-memory", "1GiB"}, nil, 2 * gib, gib, ""},
		{"job cap over the budget", []string{"--memory-limit", "1GiB", "--job-max-memory", "1GiB"}, nil, 0, 0, "--job-max-memory 1 GiB is more than the memory budget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, env(tt.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			mem, err := newMemory(c, slog.New(slog.DiscardHandler))
			if tt.wantErrPart != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrPart) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErrPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mem.limit != tt.limit || mem.source != "flag" {
				t.Errorf("limit %d from %s, want %d from the flag", mem.limit, mem.source, tt.limit)
			}
			if want := share(tt.limit, budgetShare); mem.budget.Size() != want {
				t.Errorf("budget %d, want %.0f%% of %d = %d", mem.budget.Size(), budgetShare*100, tt.limit, want)
			}
			if mem.jobMax != tt.jobMax {
				t.Errorf("job max %d, want %d", mem.jobMax, tt.jobMax)
			}
			if want := jobs.MaxCellsFor(mem.jobMax); mem.maxCells != want {
				t.Errorf("max cells %d, want MaxCellsFor(job max) = %d", mem.maxCells, want)
			}
			if got, want := debug.SetMemoryLimit(-1), share(tt.limit, goMemLimitShare); got != want {
				t.Errorf("Go soft memory limit %d, want %.0f%% of %d = %d", got, goMemLimitShare*100, tt.limit, want)
			}
		})
	}

	t.Run("detected", func(t *testing.T) {
		mem, err := newMemory(Config{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if mem.limit <= 0 || mem.limit == math.MaxInt64 || (mem.source != "cgroup" && mem.source != "system") {
			t.Errorf("detected limit %d from %q, want a positive amount from the cgroup or the system", mem.limit, mem.source)
		}
	})
}

// share is f of n bytes, rounded down, as newMemory computes it.
func share(n int64, f float64) int64 { return int64(float64(n) * f) }
