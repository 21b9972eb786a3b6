//go:build !(openblas && cgo)

package openblas

// Enabled reports whether this build routes BLAS calls to OpenBLAS.
const Enabled = false

// Use does nothing without the openblas build tag: gonum's pure-Go BLAS
// stays in place.
func Use() {}

// SetThreads does nothing without the openblas build tag and returns 0:
// gonum's pure-Go BLAS takes its parallelism from GOMAXPROCS instead.
func SetThreads(n int) int { return 0 }

// Threads returns 0 without the openblas build tag.
func Threads() int { return 0 }

// Config returns "gonum" without the openblas build tag.
func Config() string { return "gonum" }

// CoreName returns "gonum" without the openblas build tag.
func CoreName() string { return "gonum" }
