package openblas

import (
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// BenchmarkDgemm times the products of one training step of the
// 784-256-128-10 network at batch 64 (forward, weight gradient, input
// gradient of the first layer, the largest) with whatever blas64 runs in
// this build, and with gonum's pure-Go Dgemm for comparison, in GFLOP/s.
func BenchmarkDgemm(b *testing.B) {
	Use()
	shapes := []struct {
		name    string
		ta, tb  blas.Transpose
		m, n, k int
	}{
		{"forward_64x256x784", blas.NoTrans, blas.NoTrans, 64, 256, 784},
		{"weightgrad_784x256x64", blas.Trans, blas.NoTrans, 784, 256, 64},
		{"inputgrad_64x256x128", blas.NoTrans, blas.Trans, 64, 256, 128},
	}
	impls := []struct {
		name string
		impl blas.Float64
	}{
		{"installed", blas64.Implementation()},
		{"gonum", gonum.Implementation{}},
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range shapes {
		a := randSlice(rng, s.m*s.k)
		bm := randSlice(rng, s.k*s.n)
		c := make([]float64, s.m*s.n)
		lda, ldb := s.k, s.n
		if s.ta == blas.Trans {
			lda = s.m
		}
		if s.tb == blas.Trans {
			ldb = s.k
		}
		for _, im := range impls {
			b.Run(s.name+"/"+im.name, func(b *testing.B) {
				for b.Loop() {
					im.impl.Dgemm(s.ta, s.tb, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
				}
				b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func randSlice(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = 2*rng.Float64() - 1
	}
	return s
}
