//go:build openblas && cgo

package openblas

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/netlib/blas/netlib"
)

func TestUseRoutesBlas32ToOpenBLAS(t *testing.T) {
	Use()
	if _, ok := blas32.Implementation().(netlib.Implementation); !ok {
		t.Fatalf("blas32 implementation is %T, want netlib.Implementation", blas32.Implementation())
	}
}

func TestCoreNameNamesAKernel(t *testing.T) {
	if name := CoreName(); name == "" || strings.EqualFold(name, "gonum") {
		t.Errorf("CoreName() = %q, want the OpenBLAS kernel name (e.g. Haswell, SkylakeX, Zen)", name)
	}
}

// TestSgemmMatchesGonum checks float32 products through blas32 after Use()
// against gonum's pure-Go Sgemm on the same inputs. Both sum in float32, in
// different orders, so neither is exact; the bound is twice the classical
// error bound of one float32 dot product of length k,
// |fl(c) - c| <= (k+2) u (|alpha| sum_l |a_il b_lj| + |beta c_ij|)
// with u = 2^-24, which a wrong transpose, stride or scale exceeds by orders
// of magnitude (errors of order 1 on inputs in [-1, 1]).
func TestSgemmMatchesGonum(t *testing.T) {
	Use()
	rng := rand.New(rand.NewPCG(5, 6))
	trans := []blas.Transpose{blas.NoTrans, blas.Trans}
	// The engine's float32 products (batch 64 through 784-256-128-10) plus
	// odd shapes, a padded stride and a partial last batch.
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
		{"odd k above the vector width", 3, 33, 19, 1},
		{"single row", 1, 10, 4, 1},
	}
	const u = 0x1p-24
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
					lda, ldb, ldc := ac+s.pad, bc+s.pad, s.n+s.pad
					a := randSlice32(rng, ar*lda)
					b := randSlice32(rng, br*ldb)
					c0 := randSlice32(rng, s.m*ldc)
					got := append([]float32(nil), c0...)
					want := append([]float32(nil), c0...)
					const alpha, beta = 0.7, -0.3
					blas32.Implementation().Sgemm(ta, tb, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, got, ldc)
					gonum.Implementation{}.Sgemm(ta, tb, s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, want, ldc)
					at := func(i, l int) float32 {
						if ta == blas.Trans {
							return a[l*lda+i]
						}
						return a[i*lda+l]
					}
					bt := func(l, j int) float32 {
						if tb == blas.Trans {
							return b[j*ldb+l]
						}
						return b[l*ldb+j]
					}
					for i := 0; i < s.m; i++ {
						for j := 0; j < s.n; j++ {
							// Padding past column n must be left alone.
							mag := math.Abs(beta * float64(c0[i*ldc+j]))
							for l := 0; l < s.k; l++ {
								mag += math.Abs(alpha * float64(at(i, l)) * float64(bt(l, j)))
							}
							bound := 2 * float64(s.k+2) * u * mag
							g, w := float64(got[i*ldc+j]), float64(want[i*ldc+j])
							if math.Abs(g-w) > bound {
								t.Fatalf("c[%d,%d] = %v, want %v (gonum), off by %.3g > bound %.3g", i, j, g, w, math.Abs(g-w), bound)
							}
						}
						for j := s.n; j < ldc; j++ {
							if got[i*ldc+j] != c0[i*ldc+j] {
								t.Fatalf("padding c[%d,%d] changed from %v to %v", i, j, c0[i*ldc+j], got[i*ldc+j])
							}
						}
					}
				})
			}
		}
	}
}

func randSlice32(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 2*rng.Float32() - 1
	}
	return s
}
