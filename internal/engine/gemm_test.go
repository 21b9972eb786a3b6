package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemm checks the tiled product against a plain triple loop (tolerance
// 1e-12 relative: the two sum in different orders) for every transpose
// combination and shapes around the 64-wide tile edges, and checks that the
// result is bit-identical for any number of threads.
func TestGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][3]int{{1, 1, 1}, {3, 5, 2}, {64, 64, 64}, {65, 130, 63}, {200, 7, 150}, {7, 200, 129}}
	for _, s := range shapes {
		for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			m, n, k := s[0], s[1], s[2]
			tA, tB := tr[0], tr[1]
			t.Run(fmt.Sprintf("%dx%dx%d/tA=%v/tB=%v", m, n, k, tA, tB), func(t *testing.T) {
				a := make([]float64, m*k)
				b := make([]float64, k*n)
				c0 := make([]float64, m*n)
				for _, v := range [][]float64{a, b, c0} {
					for i := range v {
						v[i] = rng.NormFloat64()
					}
				}
				lda, ldb := k, n
				if tA {
					lda = m
				}
				if tB {
					ldb = k
				}
				at := func(i, l int) float64 {
					if tA {
						return a[l*lda+i]
					}
					return a[i*lda+l]
				}
				bt := func(l, j int) float64 {
					if tB {
						return b[j*ldb+l]
					}
					return b[l*ldb+j]
				}
				const beta = 0.5
				want := make([]float64, m*n)
				for i := range m {
					for j := range n {
						s := beta * c0[i*n+j]
						for l := range k {
							s += at(i, l) * bt(l, j)
						}
						want[i*n+j] = s
					}
				}
				var first []float64
				for _, threads := range []int{1, 2, 4} {
					pool := newGemmPool(threads)
					c := append([]float64(nil), c0...)
					pool.gemm(tA, tB, m, n, k, a, lda, b, ldb, beta, c, n)
					pool.close()
					for i := range c {
						if d := math.Abs(c[i] - want[i]); d > 1e-12*(1+math.Abs(want[i])) {
							t.Fatalf("threads=%d: C[%d] = %v, want %v", threads, i, c[i], want[i])
						}
					}
					if first == nil {
						first = c
					} else if i := sameBits(c, first); i >= 0 {
						t.Fatalf("threads=%d: C[%d] differs in bits from threads=1", threads, i)
					}
				}
			})
		}
	}
}
