package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// benchShapes are the products of one training step of the benchmark
// network, Fashion-MNIST 784-256-128-10 at batch 64, with the two largest
// first.
var benchShapes = []shape{
	{"forward1", 64, 256, 784, false, false},
	{"dW1", 784, 256, 64, true, false},
	{"forward2", 64, 128, 256, false, false},
	{"dW2", 256, 128, 64, true, false},
	{"dX2", 64, 256, 128, false, true},
}

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// BenchmarkDgemm reports GFLOP/s (2·m·n·k per product) of Dgemm at every
// level the machine has, single-threaded, and of gonum's pure-Go Dgemm on
// the same shapes (which may use several goroutines for the larger ones).
func BenchmarkDgemm(b *testing.B) {
	for _, s := range benchShapes {
		rng := rand.New(rand.NewPCG(1, 1))
		o := newOperands(rng, s, 0)
		flops := 2 * float64(s.m*s.n*s.k)
		for _, l := range levels() {
			b.Run(fmt.Sprintf("%s/%v", s.name, l), func(b *testing.B) {
				defer setLevel(l)()
				ws := NewWorkspace[float64]()
				for b.Loop() {
					Dgemm(ws, s.tA, s.tB, s.m, s.n, s.k, o.a, o.lda, o.b, o.ldb, 0, o.c, o.ldc)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		b.Run(s.name+"/gonum", func(b *testing.B) {
			var impl gonum.Implementation
			for b.Loop() {
				impl.Dgemm(trans(s.tA), trans(s.tB), s.m, s.n, s.k, 1, o.a, o.lda, o.b, o.ldb, 0, o.c, o.ldc)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkSgemm reports GFLOP/s of Sgemm at every level on the same
// shapes.
func BenchmarkSgemm(b *testing.B) {
	for _, s := range benchShapes {
		rng := rand.New(rand.NewPCG(1, 1))
		o := newOperands(rng, s, 0)
		a, bb, c := to32(o.a), to32(o.b), to32(o.c)
		flops := 2 * float64(s.m*s.n*s.k)
		for _, l := range levels() {
			b.Run(fmt.Sprintf("%s/%v", s.name, l), func(b *testing.B) {
				defer setLevel(l)()
				ws := NewWorkspace[float32]()
				for b.Loop() {
					Sgemm(ws, s.tA, s.tB, s.m, s.n, s.k, a, o.lda, bb, o.ldb, 0, c, o.ldc)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// adamBenchParams is the number of parameters of the benchmark network,
// 784·256+256 + 256·128+128 + 128·10+10.
const adamBenchParams = 235146

// BenchmarkAdam times one Adam step over the benchmark network's
// parameters with the plain Go loop and with Adam at every level, in
// float64 and float32. Bytes are the memory traffic: four vectors read,
// three written.
func BenchmarkAdam(b *testing.B) {
	benchAdam(b, "float64", adamLoop, Adam)
	benchAdam(b, "float32", adamLoop32, Adam32)
}

func benchAdam[T Float](b *testing.B, elem string, loop, f adamFunc[T]) {
	rng := rand.New(rand.NewPCG(7, 8))
	s := randState[T](rng, adamBenchParams)
	a := pytorchStep(1, 0)
	var zero T
	bytes := int64(adamBenchParams) * 7 * int64(unsafe.Sizeof(zero))
	b.Run(elem+"/loop", func(b *testing.B) {
		b.SetBytes(bytes)
		for b.Loop() {
			s.run(loop, a)
		}
	})
	for _, l := range levels() {
		b.Run(fmt.Sprintf("%s/%v", elem, l), func(b *testing.B) {
			defer setLevel(l)()
			b.SetBytes(bytes)
			for b.Loop() {
				s.run(f, a)
			}
		})
	}
}
