//go:build openblas && cgo

package openblas

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/netlib/blas/netlib"
)

// The oracle for every numerical test here is gonum's pure-Go BLAS, run on
// the same inputs. The two sum in different orders, so results agree to
// rounding: |got-want| <= 1e-12 * (1 + |want|) for sums of at most a few
// hundred products of numbers in [-1, 1].
const tol = 1e-12

func close(got, want float64) bool { return math.Abs(got-want) <= tol*(1+math.Abs(want)) }

func TestUseRoutesBlas64ToOpenBLAS(t *testing.T) {
	Use()
	if !Enabled {
		t.Fatal("Enabled is false in the openblas build")
	}
	if _, ok := blas64.Implementation().(netlib.Implementation); !ok {
		t.Fatalf("blas64 implementation is %T, want netlib.Implementation", blas64.Implementation())
	}
	if cfg := Config(); !strings.Contains(cfg, "OpenBLAS") {
		t.Errorf("Config() = %q, want an OpenBLAS build string", cfg)
	}
}

var transName = map[blas.Transpose]string{blas.NoTrans: "N", blas.Trans: "T"}

func TestDgemmMatchesGonum(t *testing.T) {
	Use()
	rng := rand.New(rand.NewPCG(1, 2))
	trans := []blas.Transpose{blas.NoTrans, blas.Trans}
	// Shapes of the engine's products (batch 64 through 784-256-128-10,
	// forward, weight gradient and input gradient), plus odd sizes, a
	// padded stride and a partial last batch.
	shapes := []struct {
		name    string
		m, n, k int
		pad     int
	}{
		{"forward layer 1", 64, 256, 784, 0},
		{"weight gradient layer 2", 256, 128, 64, 0},
		{"input gradient layer 3", 64, 128, 10, 0},
		{"partial batch", 17, 10, 128, 0},
		{"odd with stride padding", 5, 7, 3, 3},
		{"single row", 1, 10, 4, 1},
	}
	for _, s := range shapes {
		for _, ta := range trans {
			for _, tb := range trans {
				name := s.name + "/" + transName[ta] + transName[tb]
				t.Run(name, func(t *testing.T) {
					ar, ac := s.m, s.k
					if ta == blas.Trans {
						ar, ac = s.k, s.m
					}
					br, bc := s.k, s.n
					if tb == blas.Trans {
						br, bc = s.n, s.k
					}
					a := randSlice(rng, ar*(ac+s.pad))
					b := randSlice(rng, br*(bc+s.pad))
					c0 := randSlice(rng, s.m*(s.n+s.pad))
					got := append([]float64(nil), c0...)
					want := append([]float64(nil), c0...)
					alpha, beta := 0.7, -0.3
					blas64.Implementation().Dgemm(ta, tb, s.m, s.n, s.k, alpha, a, ac+s.pad, b, bc+s.pad, beta, got, s.n+s.pad)
					gonum.Implementation{}.Dgemm(ta, tb, s.m, s.n, s.k, alpha, a, ac+s.pad, b, bc+s.pad, beta, want, s.n+s.pad)
					for i := range got {
						if !close(got[i], want[i]) {
							t.Fatalf("c[%d] = %v, want %v (gonum)", i, got[i], want[i])
						}
					}
				})
			}
		}
	}
}

func TestLevel1And2MatchGonum(t *testing.T) {
	Use()
	rng := rand.New(rand.NewPCG(3, 4))
	const m, n = 37, 53
	x := randSlice(rng, n)
	y := randSlice(rng, n)
	a := randSlice(rng, m*n)
	impl := blas64.Implementation()
	var ref gonum.Implementation

	t.Run("ddot", func(t *testing.T) {
		if got, want := impl.Ddot(n, x, 1, y, 1), ref.Ddot(n, x, 1, y, 1); !close(got, want) {
			t.Errorf("Ddot = %v, want %v", got, want)
		}
	})
	t.Run("daxpy", func(t *testing.T) {
		got := append([]float64(nil), y...)
		want := append([]float64(nil), y...)
		impl.Daxpy(n, -1.5, x, 1, got, 1)
		ref.Daxpy(n, -1.5, x, 1, want, 1)
		for i := range got {
			if !close(got[i], want[i]) {
				t.Fatalf("y[%d] = %v, want %v", i, got[i], want[i])
			}
		}
	})
	t.Run("dscal", func(t *testing.T) {
		got := append([]float64(nil), x...)
		impl.Dscal(n, 0.25, got, 1)
		for i := range got {
			if got[i] != 0.25*x[i] {
				t.Fatalf("x[%d] = %v, want %v (exact: scaling by a power of two)", i, got[i], 0.25*x[i])
			}
		}
	})
	t.Run("dgemv", func(t *testing.T) {
		got := randSlice(rng, m)
		want := append([]float64(nil), got...)
		impl.Dgemv(blas.NoTrans, m, n, 2, a, n, x, 1, 0.5, got, 1)
		ref.Dgemv(blas.NoTrans, m, n, 2, a, n, x, 1, 0.5, want, 1)
		for i := range got {
			if !close(got[i], want[i]) {
				t.Fatalf("y[%d] = %v, want %v", i, got[i], want[i])
			}
		}
	})
	t.Run("dger", func(t *testing.T) {
		xm := randSlice(rng, m)
		got := append([]float64(nil), a...)
		want := append([]float64(nil), a...)
		impl.Dger(m, n, 0.3, xm, 1, y, 1, got, n)
		ref.Dger(m, n, 0.3, xm, 1, y, 1, want, n)
		for i := range got {
			if !close(got[i], want[i]) {
				t.Fatalf("a[%d] = %v, want %v", i, got[i], want[i])
			}
		}
	})
}

func TestSetThreads(t *testing.T) {
	before := Threads()
	t.Cleanup(func() { SetThreads(before) })
	cores := runtime.GOMAXPROCS(0)
	tests := []struct {
		name string
		env  string
		n    int
		want int
	}{
		{"one", "", 1, 1},
		{"zero means one", "", 0, 1},
		{"capped by cores", "", cores + 5, cores},
		{"capped by OPENBLAS_NUM_THREADS", "1", cores + 5, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvThreads, tt.env)
			if got := SetThreads(tt.n); got != tt.want {
				t.Errorf("SetThreads(%d) with %s=%q = %d, want %d", tt.n, EnvThreads, tt.env, got, tt.want)
			}
			if got := Threads(); got != tt.want {
				t.Errorf("Threads() = %d after SetThreads, want %d", got, tt.want)
			}
		})
	}
}
