package kernels

import "fmt"

// Level is a family of micro-kernels, ordered from the most portable to the
// widest.
type Level int

// The levels of micro-kernels.
const (
	// Go is the pure-Go micro-kernel: every CPU has it.
	Go Level = iota
	// AVX2 is 256-bit AVX2 with fused multiply-add.
	AVX2
	// AVX512 is 512-bit AVX-512F.
	AVX512
)

// String names the level as the CPU feature it needs.
func (l Level) String() string {
	switch l {
	case Go:
		return "go"
	case AVX2:
		return "avx2+fma"
	case AVX512:
		return "avx512f"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// best is the widest level this CPU and OS support; active is the one in
// use, equal to best except while a test forces a lower one.
var (
	best   = detect()
	active = best
)

// Best returns the widest level this machine supports.
func Best() Level { return best }

// Active returns the level Dgemm and Sgemm use.
func Active() Level { return active }

// SIMD reports whether the active level uses vector instructions, that is
// whether Dgemm beats a good generic GEMM.
func SIMD() bool { return active > Go }

// setLevel makes Dgemm and Sgemm use level l, which must not exceed Best,
// and returns a function that restores the previous level. Tests use it to
// run every level the machine has; it must not be called while a product
// runs.
func setLevel(l Level) (restore func()) {
	if l < Go || l > best {
		panic(fmt.Sprintf("kernels: level %v is not available (best is %v)", l, best))
	}
	prev := active
	active = l
	return func() { active = prev }
}
