package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// adamFunc is the signature of Adam, Adam32 and their oracles.
type adamFunc[T Float] func(p, g, m, v []T, b1, b2, l2, step, c2, eps T)

// adamParams are the scalars of one Adam step.
type adamParams struct{ b1, b2, l2, step, c2, eps float64 }

// pytorchStep is step t of Adam with PyTorch's default hyperparameters
// (lr 1e-3, betas 0.9 and 0.999, eps 1e-8) and weight decay l2.
func pytorchStep(t int, l2 float64) adamParams {
	return adamParams{
		b1: 0.9, b2: 0.999, l2: l2, eps: 1e-8,
		step: 1e-3 / (1 - math.Pow(0.9, float64(t))),
		c2:   math.Sqrt(1 - math.Pow(0.999, float64(t))),
	}
}

// adamLengths are the vector lengths around the 4-, 8- and 16-lane vectors
// of the kernels (nothing, tails alone, one vector exactly, a vector and a
// tail) and two long ones with and without a tail.
var adamLengths = []int{0, 1, 7, 8, 9, 15, 16, 17, 1000, 1001}

// adamSlack is how many elements past len(p) each buffer has; they hold
// sentinels that Adam must leave alone.
const adamSlack = 17

func bitsOf[T Float](x T) uint64 { return math.Float64bits(float64(x)) }

func convert[T Float](xs []float64) []T {
	out := make([]T, len(xs))
	for i, x := range xs {
		out[i] = T(x)
	}
	return out
}

// adamState is the four vectors of one Adam update, each with adamSlack
// sentinel elements past its n: p is passed cut to n, g, m and v whole.
type adamState[T Float] struct {
	n          int
	p, g, m, v []T
}

func (s adamState[T]) clone() adamState[T] {
	c := func(x []T) []T { return append([]T(nil), x...) }
	return adamState[T]{s.n, c(s.p), c(s.g), c(s.m), c(s.v)}
}

func (s adamState[T]) run(f adamFunc[T], a adamParams) {
	f(s.p[:s.n], s.g, s.m, s.v, T(a.b1), T(a.b2), T(a.l2), T(a.step), T(a.c2), T(a.eps))
}

// requireSame fails unless got and want agree in every bit of every
// element, sentinels included.
func requireSame[T Float](t *testing.T, got, want adamState[T]) {
	t.Helper()
	for _, vec := range []struct {
		name      string
		got, want []T
	}{{"p", got.p, want.p}, {"g", got.g, want.g}, {"m", got.m, want.m}, {"v", got.v, want.v}} {
		for i := range vec.want {
			if bitsOf(vec.got[i]) != bitsOf(vec.want[i]) {
				where := "element"
				if i >= got.n {
					where = "sentinel past len(p) at"
				}
				t.Fatalf("%s: %s %d is %v (%#x), the Go loop gives %v (%#x)", vec.name, where, i,
					vec.got[i], bitsOf(vec.got[i]), vec.want[i], bitsOf(vec.want[i]))
			}
		}
	}
}

// randState makes parameters and gradients from N(0,1) and moments as
// after some training (m from N(0, 0.1²), v = |N(0, 0.01²)|), and
// sentinels of 12345.
func randState[T Float](rng *rand.Rand, n int) adamState[T] {
	mk := func(scale float64, abs bool) []T {
		x := make([]float64, n+adamSlack)
		for i := range x {
			switch {
			case i >= n:
				x[i] = 12345
			case abs:
				x[i] = math.Abs(rng.NormFloat64() * scale)
			default:
				x[i] = rng.NormFloat64() * scale
			}
		}
		return convert[T](x)
	}
	return adamState[T]{n, mk(1, false), mk(1, false), mk(0.1, false), mk(0.01, true)}
}

// testAdamRandom runs three steps of f and of the oracle from the same
// random state and compares every bit after each.
func testAdamRandom[T Float](t *testing.T, f, oracle adamFunc[T], seed uint64) {
	lengths := adamLengths
	if !raceEnabled { // instrumented, the Go loops take seconds over it; the plain test run checks it
		lengths = append(lengths, 784*256) // the first layer's weights of the benchmark network
	}
	for _, n := range lengths {
		for _, l2 := range []float64{0, 1e-3} {
			t.Run(fmt.Sprintf("n=%d/l2=%v", n, l2), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, uint64(n)))
				got := randState[T](rng, n)
				want := got.clone()
				for step := 1; step <= 3; step++ {
					a := pytorchStep(step, l2)
					got.run(f, a)
					want.run(oracle, a)
					requireSame(t, got, want)
					copy(got.g, randState[T](rng, n).g)
					copy(want.g, got.g)
				}
			})
		}
	}
}

// TestAdamMatchesGoLoop compares Adam and Adam32 at every level this
// machine has with the engine's Go loop (adamLoop) on random vectors of
// every length in adamLengths: same operations, same order, each correctly
// rounded and none fused, so the bits must agree, and nothing past len(p)
// may change.
func TestAdamMatchesGoLoop(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		t.Run("float64", func(t *testing.T) { testAdamRandom(t, Adam, adamLoop, 1) })
		t.Run("float32", func(t *testing.T) { testAdamRandom(t, Adam32, adamLoop32, 2) })
	})
}

// Special values: signed zeros, the extreme subnormals, the normal
// extremes, values whose square overflows, infinities. The square roots
// and divisions of 0, subnormals and infinities, and the NaNs of ∞-∞, 0/0
// and ∞/∞ (one default NaN on x86, so the same bits wherever they arise),
// all go through the kernels.
var (
	specials64 = []float64{0, math.Copysign(0, -1), 5e-324, -2.5e-320, 0x1p-1022 - 0x1p-1074, 0x1p-1022,
		1e-300, 1, -3.5, 1e200, -1e300, math.MaxFloat64, math.Inf(1), math.Inf(-1)}
	specials32 = []float64{0, math.Copysign(0, -1), 0x1p-149, -0x1p-140, 0x1p-126 - 0x1p-149, 0x1p-126,
		1e-30, 1, -3.5, 1e25, -1e30, math.MaxFloat32, math.Inf(1), math.Inf(-1)}
)

// specialState puts every pair of special values in (p, g), with m and v
// running through them at other strides, and sentinels after.
func specialState[T Float](specials []float64) adamState[T] {
	k := len(specials)
	n := k * k
	x := func(f func(i int) float64) []T {
		out := make([]float64, n+adamSlack)
		for i := range out {
			out[i] = 12345
			if i < n {
				out[i] = f(i)
			}
		}
		return convert[T](out)
	}
	return adamState[T]{
		n: n,
		p: x(func(i int) float64 { return specials[i%k] }),
		g: x(func(i int) float64 { return specials[i/k] }),
		m: x(func(i int) float64 { return specials[(5*i+1)%k] }),
		v: x(func(i int) float64 { return math.Abs(specials[(7*i+3)%k]) }),
	}
}

// specialParams are steps with PyTorch's defaults, with weight decay, with
// no epsilon (so 0/0 occurs), with β1 = 0, and with a huge step.
var specialParams = []struct {
	name string
	a    adamParams
}{
	{"pytorch step 1", pytorchStep(1, 0)},
	{"weight decay", pytorchStep(7, 1e-2)},
	{"eps 0", adamParams{b1: 0.9, b2: 0.999, step: 1e-3, c2: 1, eps: 0}},
	{"beta1 0", adamParams{b1: 0, b2: 0.5, l2: 1, step: 1, c2: 0.5, eps: 1e-8}},
	{"huge step", adamParams{b1: 0.5, b2: 0.5, step: 1e30, c2: 1e-20, eps: 1e-30}},
}

func testAdamSpecial[T Float](t *testing.T, f, oracle adamFunc[T], specials []float64) {
	for _, sp := range specialParams {
		t.Run(sp.name, func(t *testing.T) {
			got := specialState[T](specials)
			want := got.clone()
			for range 2 {
				got.run(f, sp.a)
				want.run(oracle, sp.a)
				requireSame(t, got, want)
			}
		})
	}
}

// TestAdamSpecialValues runs two steps over every pair of special values
// at every level and compares every bit with the Go loop.
func TestAdamSpecialValues(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		t.Run("float64", func(t *testing.T) { testAdamSpecial(t, Adam, adamLoop, specials64) })
		t.Run("float32", func(t *testing.T) { testAdamSpecial(t, Adam32, adamLoop32, specials32) })
	})
}

// TestAdamAllocs shows that Adam and Adam32 allocate nothing at any level.
func TestAdamAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	d, s := randState[float64](rng, 1001), randState[float32](rng, 1001)
	a := pytorchStep(1, 1e-4)
	forLevels(t, func(t *testing.T) {
		if n := testing.AllocsPerRun(10, func() {
			d.run(Adam, a)
			s.run(Adam32, a)
		}); n != 0 {
			t.Errorf("%v allocations per Adam and Adam32 step, want 0", n)
		}
	})
}

// TestAdamPanics checks that Adam and Adam32 refuse a gradient or moment
// shorter than p instead of running past its end.
func TestAdamPanics(t *testing.T) {
	long, short := make([]float64, 9), make([]float64, 8)
	long32, short32 := make([]float32, 9), make([]float32, 8)
	tests := []struct {
		name string
		f    func()
	}{
		{"short g", func() { Adam(long, short, long, long, 0.9, 0.999, 0, 1e-3, 1, 1e-8) }},
		{"short m", func() { Adam(long, long, short, long, 0.9, 0.999, 0, 1e-3, 1, 1e-8) }},
		{"short v", func() { Adam(long, long, long, short, 0.9, 0.999, 0, 1e-3, 1, 1e-8) }},
		{"float32 short g", func() { Adam32(long32, short32, long32, long32, 0.9, 0.999, 0, 1e-3, 1, 1e-8) }},
		{"float32 short v", func() { Adam32(long32, long32, long32, short32, 0.9, 0.999, 0, 1e-3, 1, 1e-8) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forLevels(t, func(t *testing.T) {
				defer func() {
					if recover() == nil {
						t.Error("no panic")
					}
				}()
				tt.f()
			})
		})
	}
}
