package openblas

import (
	"os"
	"runtime"
	"strconv"
	"strings"
)

// EnvThreads is the environment variable that OpenBLAS itself reads at load
// time; SetThreads never goes above it.
const EnvThreads = "OPENBLAS_NUM_THREADS"

// ThreadsPerWorker returns how many BLAS threads each of workers concurrent
// jobs may use so that workers × threads never exceeds cores: cores/workers
// rounded down, at least 1, and at most the positive integer in envValue
// (the value of OPENBLAS_NUM_THREADS; empty or unparsable means no cap).
// workers < 1 counts as 1 and cores < 1 as 1.
func ThreadsPerWorker(workers, cores int, envValue string) int {
	workers = max(workers, 1)
	cores = max(cores, 1)
	n := max(cores/workers, 1)
	if c, ok := parseEnvThreads(envValue); ok {
		n = min(n, c)
	}
	return n
}

// ThreadsFor is ThreadsPerWorker for this process: cores is
// runtime.GOMAXPROCS(0) (which follows cgroup CPU limits) and the cap is
// OPENBLAS_NUM_THREADS from the environment.
func ThreadsFor(workers int) int {
	return ThreadsPerWorker(workers, runtime.GOMAXPROCS(0), os.Getenv(EnvThreads))
}

// clampThreads bounds a requested thread count the way SetThreads applies
// it: at least 1, at most cores, at most the positive integer in envValue.
func clampThreads(n, cores int, envValue string) int {
	n = min(max(n, 1), max(cores, 1))
	if c, ok := parseEnvThreads(envValue); ok {
		n = min(n, c)
	}
	return n
}

// parseEnvThreads reads a thread cap from OPENBLAS_NUM_THREADS. OpenBLAS
// treats 0 and garbage as "unset", and so do we.
func parseEnvThreads(s string) (int, bool) {
	c, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || c < 1 {
		return 0, false
	}
	return c, true
}
