//go:build openblas && cgo

package openblas

/*
#cgo LDFLAGS: -lopenblas
// Declared here rather than taken from cblas.h, which Debian's alternatives
// may point at another BLAS's header that lacks OpenBLAS's extensions.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);
*/
import "C"

import (
	"os"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
)

// Enabled reports whether this build routes BLAS calls to OpenBLAS.
const Enabled = true

var useOnce sync.Once

// Use makes OpenBLAS the implementation behind gonum's blas64 and blas32
// (and so behind gonum/mat). It is idempotent and safe to call from init.
func Use() {
	useOnce.Do(func() {
		blas64.Use(netlib.Implementation{})
		blas32.Use(netlib.Implementation{})
	})
}

// SetThreads sets the number of threads one OpenBLAS call may use and
// returns the number in force: n clamped to at least 1, at most
// runtime.GOMAXPROCS(0), and at most OPENBLAS_NUM_THREADS when that is set.
// The setting is process-wide, so call it once at startup with
// ThreadsFor(workers), before any training runs.
func SetThreads(n int) int {
	n = clampThreads(n, runtime.GOMAXPROCS(0), os.Getenv(EnvThreads))
	C.openblas_set_num_threads(C.int(n))
	return Threads()
}

// Threads returns the number of threads OpenBLAS currently uses per call.
func Threads() int { return int(C.openblas_get_num_threads()) }

// Config returns OpenBLAS's build description, for example
// "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".
func Config() string { return C.GoString(C.openblas_get_config()) }

// CoreName returns the name of the kernel set OpenBLAS chose for this CPU
// at load time, for example "SkylakeX", "Haswell" or "Zen": Debian builds
// with DYNAMIC_ARCH, so Config names the build target, not the kernels that
// run, and OPENBLAS_CORETYPE can override the choice.
func CoreName() string { return C.GoString(C.openblas_get_corename()) }
