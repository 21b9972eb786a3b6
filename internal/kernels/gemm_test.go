package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// levels returns every level this machine can run, lowest first.
func levels() []Level {
	var ls []Level
	for l := Go; l <= Best(); l++ {
		ls = append(ls, l)
	}
	return ls
}

// forLevels runs f once per level this machine has, with that level forced.
func forLevels(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, l := range levels() {
		t.Run(l.String(), func(t *testing.T) {
			defer setLevel(l)()
			f(t)
		})
	}
}

// shape is one product: op(A) m×k times op(B) k×n, with transposes.
type shape struct {
	name    string
	m, n, k int
	tA, tB  bool
}

// raceMaxProduct bounds m·n·k under the race detector, which makes the
// reference and the Go level tens of times slower: the larger benchmark
// shapes run through the same packing and blocking paths as 65×129×257
// (more than MC rows, NC columns and KC steps), and the plain test run
// checks them.
const raceMaxProduct = 1 << 22

// testShapes are awkward sizes around the block and register-tile edges
// (1×1, non-multiples of MR, NR, MC, NC and KC, depth 1) in every
// transpose, and the exact products of one training step of the benchmark
// network, Fashion-MNIST 784-256-128-10 at batch 64: forward X·W per layer
// (NN), weight gradients dW = Xᵀ·dZ (TN), input gradients dX = dZ·Wᵀ (NT).
func testShapes() []shape {
	var ss []shape
	awkward := [][3]int{{1, 1, 1}, {1, 1, 7}, {3, 5, 2}, {7, 9, 1}, {9, 33, 17}, {13, 17, 300}, {65, 129, 257}, {64, 128, 256}, {100, 3, 513}}
	for _, s := range awkward {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			ss = append(ss, shape{fmt.Sprintf("%dx%dx%d", s[0], s[1], s[2]), s[0], s[1], s[2], tr[0], tr[1]})
		}
	}
	ss = append(ss,
		shape{"forward1", 64, 256, 784, false, false},
		shape{"forward2", 64, 128, 256, false, false},
		shape{"forward3", 64, 10, 128, false, false},
		shape{"dW1", 784, 256, 64, true, false},
		shape{"dW2", 256, 128, 64, true, false},
		shape{"dW3", 128, 10, 64, true, false},
		shape{"dX2", 64, 256, 128, false, true},
		shape{"dX3", 64, 128, 10, false, true},
	)
	if raceEnabled {
		kept := ss[:0]
		for _, s := range ss {
			if s.m*s.n*s.k <= raceMaxProduct {
				kept = append(kept, s)
			}
		}
		ss = kept
	}
	return ss
}

func (s shape) String() string {
	return fmt.Sprintf("%s/tA=%v/tB=%v", s.name, s.tA, s.tB)
}

// operands makes random A, B and C for s, stored with leading dimensions
// pad larger than their rows so that strides are exercised.
type operands struct {
	a, b, c       []float64
	lda, ldb, ldc int
}

func newOperands(rng *rand.Rand, s shape, pad int) operands {
	ar, ac := s.m, s.k
	if s.tA {
		ar, ac = s.k, s.m
	}
	br, bc := s.k, s.n
	if s.tB {
		br, bc = s.n, s.k
	}
	o := operands{lda: ac + pad, ldb: bc + pad, ldc: s.n + pad}
	o.a = randSlice(rng, (ar-1)*o.lda+ac)
	o.b = randSlice(rng, (br-1)*o.ldb+bc)
	o.c = randSlice(rng, (s.m-1)*o.ldc+s.n)
	return o
}

func randSlice(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// reference returns op(A)·op(B) + beta·C by the definition, in float64,
// and for each element the bound Σ_p |a_ip·b_pj| + |beta·c_ij| that scales
// its rounding error.
func reference(s shape, o operands, beta float64) (want, scale []float64) {
	want = make([]float64, s.m*s.n)
	scale = make([]float64, s.m*s.n)
	for i := range s.m {
		for j := range s.n {
			var sum, abs float64
			if beta != 0 {
				sum = beta * o.c[i*o.ldc+j]
				abs = math.Abs(sum)
			}
			for p := range s.k {
				var av, bv float64
				if s.tA {
					av = o.a[p*o.lda+i]
				} else {
					av = o.a[i*o.lda+p]
				}
				if s.tB {
					bv = o.b[j*o.ldb+p]
				} else {
					bv = o.b[p*o.ldb+j]
				}
				sum += av * bv
				abs += math.Abs(av * bv)
			}
			want[i*s.n+j] = sum
			scale[i*s.n+j] = abs
		}
	}
	return want, scale
}

// gammaTol is the tolerance for a sum of k products, and a beta term, in a
// precision with unit roundoff u: Higham's bound for any order of
// summation, |error| ≤ γ(k+2)·Σ|terms| with γ(n) ≈ n·u, taken twice
// because the float64 reference rounds too.
func gammaTol(k int, u float64) float64 { return 2 * float64(k+2) * u }

// TestDgemm compares Dgemm at every level the machine has with the
// definition, on every test shape, for beta 0 (C holds NaN and must not be
// read), 1 and 0.5, with and without padded leading dimensions. Tolerance:
// gammaTol with u = 2⁻⁵³, relative to Σ|a·b|.
func TestDgemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ws := NewWorkspace[float64]()
	for _, s := range testShapes() {
		for _, beta := range []float64{0, 1, 0.5} {
			pad := int(rng.IntN(2)) * 3
			o := newOperands(rng, s, pad)
			if beta == 0 {
				for i := range o.c {
					o.c[i] = math.NaN()
				}
			}
			want, scale := reference(s, o, beta)
			t.Run(fmt.Sprintf("%v/beta=%v/pad=%d", s, beta, pad), func(t *testing.T) {
				forLevels(t, func(t *testing.T) {
					c := append([]float64(nil), o.c...)
					Dgemm(ws, s.tA, s.tB, s.m, s.n, s.k, o.a, o.lda, o.b, o.ldb, beta, c, o.ldc)
					checkResult(t, s, o.ldc, c, o.c, want, scale, gammaTol(s.k, 0x1p-53))
				})
			})
		}
	}
}

// TestSgemm is TestDgemm for float32: the operands are rounded to float32
// first and the reference is computed from those values in float64.
// Tolerance: gammaTol with u = 2⁻²⁴.
func TestSgemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ws := NewWorkspace[float32]()
	for _, s := range testShapes() {
		for _, beta := range []float32{0, 1, 0.5} {
			pad := int(rng.IntN(2)) * 3
			o := newOperands(rng, s, pad)
			a32, b32, c32 := to32(o.a), to32(o.b), to32(o.c)
			if beta == 0 {
				for i := range c32 {
					c32[i] = float32(math.NaN())
				}
			}
			o.a, o.b, o.c = to64(a32), to64(b32), to64(c32)
			want, scale := reference(s, o, float64(beta))
			t.Run(fmt.Sprintf("%v/beta=%v/pad=%d", s, beta, pad), func(t *testing.T) {
				forLevels(t, func(t *testing.T) {
					c := append([]float32(nil), c32...)
					Sgemm(ws, s.tA, s.tB, s.m, s.n, s.k, a32, o.lda, b32, o.ldb, beta, c, o.ldc)
					checkResult(t, s, o.ldc, to64(c), o.c, want, scale, gammaTol(s.k, 0x1p-24))
				})
			})
		}
	}
}

func to32(v []float64) []float32 {
	w := make([]float32, len(v))
	for i, x := range v {
		w[i] = float32(x)
	}
	return w
}

func to64(v []float32) []float64 {
	w := make([]float64, len(v))
	for i, x := range v {
		w[i] = float64(x)
	}
	return w
}

// checkResult compares the m×n result in c (leading dimension ldc) with
// want within tol·scale, and checks that the padding of each row of c still
// holds what c0 held there.
func checkResult(t *testing.T, s shape, ldc int, c, c0, want, scale []float64, tol float64) {
	t.Helper()
	for i := range s.m {
		for j := range s.n {
			got, w := c[i*ldc+j], want[i*s.n+j]
			if d := math.Abs(got - w); !(d <= tol*scale[i*s.n+j]) {
				t.Fatalf("C[%d][%d] = %v, want %v (|error| %.3g > %.3g = tol %.3g × Σ|a·b| %.3g)", i, j, got, w, d, tol*scale[i*s.n+j], tol, scale[i*s.n+j])
			}
		}
	}
	for i := range s.m - 1 {
		for j := s.n; j < ldc; j++ {
			got, was := c[i*ldc+j], c0[i*ldc+j]
			if got != was && !(math.IsNaN(got) && math.IsNaN(was)) {
				t.Fatalf("C[%d][%d], past the %d columns, changed from %v to %v", i, j, s.n, was, got)
			}
		}
	}
}

// TestGemmEveryEdge runs small products with every number of rows and
// columns left over at the edge of a register block (rows 1 to 17 cover
// MR = 4, 6 and 8; columns 1 to 65 cover NR = 8, 16 and 32), in every
// transpose, against the definition with TestDgemm's and TestSgemm's
// tolerances.
func TestGemmEveryEdge(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 10))
		ws := NewWorkspace[float64]()
		ws32 := NewWorkspace[float32]()
		const k = 5
		for m := 1; m <= 17; m++ {
			for n := 1; n <= 65; n++ {
				for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
					s := shape{fmt.Sprintf("%dx%dx%d", m, n, k), m, n, k, tr[0], tr[1]}
					o := newOperands(rng, s, 1)
					a32, b32, c32 := to32(o.a), to32(o.b), to32(o.c)
					o.a, o.b, o.c = to64(a32), to64(b32), to64(c32)
					want, scale := reference(s, o, 1)
					c := append([]float64(nil), o.c...)
					Dgemm(ws, s.tA, s.tB, m, n, k, o.a, o.lda, o.b, o.ldb, 1, c, o.ldc)
					checkResult(t, s, o.ldc, c, o.c, want, scale, gammaTol(k, 0x1p-53))
					Sgemm(ws32, s.tA, s.tB, m, n, k, a32, o.lda, b32, o.ldb, 1, c32, o.ldc)
					checkResult(t, s, o.ldc, to64(c32), o.c, want, scale, gammaTol(k, 0x1p-24))
				}
			}
		}
	})
}

// TestGemmDepthZero: with k = 0, C = beta·C, and beta = 0 clears C
// without reading it.
func TestGemmDepthZero(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		ws := NewWorkspace[float64]()
		c := []float64{1, 2, 3, math.NaN()}
		Dgemm(ws, false, false, 2, 2, 0, nil, 1, nil, 2, 0, c, 2)
		for i, v := range c {
			if v != 0 {
				t.Errorf("beta=0: C[%d] = %v, want 0", i, v)
			}
		}
		c = []float64{1, 2, 3, 4}
		Dgemm(ws, false, false, 2, 2, 0, nil, 1, nil, 2, 0.5, c, 2)
		for i, v := range c {
			if want := 0.5 * float64(i+1); v != want {
				t.Errorf("beta=0.5: C[%d] = %v, want %v", i, v, want)
			}
		}
	})
}

// TestGemmRepeatable: at each level, the same product twice gives the
// same bits, into a fresh C and into a C that the first call left dirty.
func TestGemmRepeatable(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		ws := NewWorkspace[float64]()
		for _, s := range []shape{{"dW1", 784, 256, 64, true, false}, {"odd", 65, 129, 257, false, true}} {
			o := newOperands(rng, s, 0)
			c1 := make([]float64, len(o.c))
			c2 := make([]float64, len(o.c))
			Dgemm(ws, s.tA, s.tB, s.m, s.n, s.k, o.a, o.lda, o.b, o.ldb, 0, c1, o.ldc)
			Dgemm(NewWorkspace[float64](), s.tA, s.tB, s.m, s.n, s.k, o.a, o.lda, o.b, o.ldb, 0, c2, o.ldc)
			for i := range c1 {
				if math.Float64bits(c1[i]) != math.Float64bits(c2[i]) {
					t.Fatalf("%v: C[%d] = %v then %v", s, i, c1[i], c2[i])
				}
			}
		}
	})
}

// TestGemmAllocs: with a Workspace made beforehand, a product allocates
// nothing, at every level and for both element types.
func TestGemmAllocs(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		s := shape{"odd", 65, 129, 257, true, true}
		o := newOperands(rng, s, 1)
		ws := NewWorkspace[float64]()
		if n := testing.AllocsPerRun(10, func() {
			Dgemm(ws, s.tA, s.tB, s.m, s.n, s.k, o.a, o.lda, o.b, o.ldb, 0.5, o.c, o.ldc)
		}); n != 0 {
			t.Errorf("Dgemm: %v allocations per call, want 0", n)
		}
		a, b, c := to32(o.a), to32(o.b), to32(o.c)
		ws32 := NewWorkspace[float32]()
		if n := testing.AllocsPerRun(10, func() {
			Sgemm(ws32, s.tA, s.tB, s.m, s.n, s.k, a, o.lda, b, o.ldb, 0.5, c, o.ldc)
		}); n != 0 {
			t.Errorf("Sgemm: %v allocations per call, want 0", n)
		}
	})
}

// TestGemmPanics: operands too small for their shape are refused before
// any kernel writes through a pointer.
func TestGemmPanics(t *testing.T) {
	ws := NewWorkspace[float64]()
	a, b, c := make([]float64, 6), make([]float64, 6), make([]float64, 4)
	cases := []struct {
		name string
		f    func()
	}{
		{"short a", func() { Dgemm(ws, false, false, 2, 2, 3, a[:5], 3, b, 2, 0, c, 2) }},
		{"short b", func() { Dgemm(ws, false, false, 2, 2, 3, a, 3, b[:5], 2, 0, c, 2) }},
		{"short c", func() { Dgemm(ws, false, false, 2, 2, 3, a, 3, b, 2, 0, c[:3], 2) }},
		{"small lda", func() { Dgemm(ws, false, false, 2, 2, 3, a, 2, b, 2, 0, c, 2) }},
		{"small ldb transposed", func() { Dgemm(ws, false, true, 2, 2, 3, a, 3, b, 2, 0, c, 2) }},
		{"small ldc", func() { Dgemm(ws, false, false, 2, 2, 3, a, 3, b, 2, 0, c, 1) }},
		{"negative", func() { Dgemm(ws, false, false, -1, 2, 3, a, 3, b, 2, 0, c, 2) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tc.f()
		})
	}
}

// TestLevels: the machine's best level is what its features say, levels
// above it cannot be forced, and forcing a lower one changes Active.
func TestLevels(t *testing.T) {
	if got := detect(); got != Best() {
		t.Errorf("Best() = %v, detect() = %v", Best(), got)
	}
	t.Logf("best level on this machine: %v", Best())
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("setLevel(%v) above Best did not panic", Best()+1)
			}
		}()
		setLevel(Best() + 1)
	}()
	restore := setLevel(Go)
	if Active() != Go || SIMD() {
		t.Errorf("after setLevel(Go): Active() = %v, SIMD() = %v", Active(), SIMD())
	}
	restore()
	if Active() != Best() {
		t.Errorf("after restore: Active() = %v, want %v", Active(), Best())
	}
}
