package main

import (
	"fmt"
	"log/slog"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/membudget"
)

// Shares of the memory limit.
//
// budgetShare is what training jobs, uploads and predictions reserve from
// (their estimates, taken before they allocate). The other 30% is for what
// no reservation counts: the decoded-model cache, request and response
// buffers, the store's in-memory index, goroutine stacks and the metrics
// (20%), and memory the Go heap does not account for, such as runtime
// metadata, fragmentation and a C BLAS's buffers (the last 10%).
//
// goMemLimitShare is the Go runtime's soft limit (GOMEMLIMIT): the
// collector works harder as the heap nears it, so garbage left by finished
// jobs and requests is reclaimed before the process reaches the hard
// limit. Between the budget and the soft limit lie 20% of headroom, so
// that a heap whose reserved part is full does not make the collector run
// continuously.
const (
	budgetShare     = 0.70
	goMemLimitShare = 0.90
)

// memory is the server's memory configuration as Run derives it.
type memory struct {
	limit    int64  // bytes the server may use
	source   string // where limit came from: flag, cgroup or system
	budget   *membudget.Budget
	jobMax   int64 // the most one job's estimate may be
	maxCells int64 // the largest dataset, in rows × features
}

// newMemory finds the memory limit (--memory-limit, else the cgroup's,
// else the machine's), sets the Go runtime's soft limit from it and
// derives the budget, the per-job cap and the dataset cell cap, logging
// them.
//
// automemlimit reads the limit from cgroup v1 and v2, following the
// process's cgroup up its hierarchy to the tightest limit as container
// runtimes nest them; the Go runtime itself reads a cgroup's CPU quota but
// not its memory limit. An explicit GOMEMLIMIT in the environment is left
// as it is.
func newMemory(c Config, log *slog.Logger) (memory, error) {
	mem := memory{limit: int64(c.MemoryLimit), source: "flag"}
	if mem.limit == 0 {
		v, err := memlimit.FromCgroup()
		mem.source = "cgroup"
		if err != nil {
			if v, err = memlimit.FromSystem(); err != nil {
				return mem, fmt.Errorf("--memory-limit is 0 and neither a cgroup limit nor the machine's memory can be read (%v): set --memory-limit", err)
			}
			mem.source = "system"
		}
		mem.limit = int64(min(v, 1<<62))
	}
	soft, err := memlimit.Set(memlimit.WithProvider(memlimit.Limit(uint64(mem.limit))), memlimit.WithRatio(goMemLimitShare))
	if err != nil {
		return mem, fmt.Errorf("set the Go memory limit: %w", err)
	}
	mem.budget = membudget.New(int64(float64(mem.limit) * budgetShare))
	mem.jobMax = int64(c.JobMaxMemory)
	switch {
	case mem.jobMax == 0:
		mem.jobMax = mem.budget.Size() / 2
	case mem.jobMax > mem.budget.Size():
		return mem, fmt.Errorf("--job-max-memory %s is more than the memory budget of %s (%.0f%% of the %s memory limit from %s): no such job could ever start; lower it or raise --memory-limit",
			engine.FormatBytes(mem.jobMax), engine.FormatBytes(mem.budget.Size()), budgetShare*100, engine.FormatBytes(mem.limit), mem.source)
	}
	mem.maxCells = jobs.MaxCellsFor(mem.jobMax)
	log.Info("memory", "limit_bytes", mem.limit, "limit", engine.FormatBytes(mem.limit), "source", mem.source,
		"go_soft_limit_bytes", soft, "budget_bytes", mem.budget.Size(), "job_max_memory_bytes", mem.jobMax,
		"max_dataset_cells", mem.maxCells)
	return mem, nil
}
