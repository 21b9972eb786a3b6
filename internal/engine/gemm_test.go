package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/backpropd/backpropd/internal/kernels"
)

// TestGemm checks the tiled product against a plain triple loop (tolerance
// 1e-12 relative: the two sum in different orders) for every transpose
// combination and shapes around the 64-wide tile edges (and the 64×128
// tiles of package kernels), plus the two largest products of a training
// step of the benchmark network (784-256-128-10 at batch 64: the first
// layer's forward product and its weight gradient), and checks that the
// result is bit-identical for any number of threads.
func TestGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := [][3]int{{1, 1, 1}, {3, 5, 2}, {64, 64, 64}, {65, 130, 63}, {200, 7, 150}, {7, 200, 129}, {129, 257, 300}, {64, 256, 784}, {784, 256, 64}}
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
					pool := newGemmPool[float64](threads)
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

// recordingBLAS is gonum's BLAS, noting the largest C block any Dgemm call
// was given.
type recordingBLAS struct {
	gonum.Implementation
	mu                    sync.Mutex
	calls                 int
	maxM, maxN            int
	inFlight, maxInFlight int
}

func (r *recordingBLAS) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	r.mu.Lock()
	r.calls++
	r.maxM, r.maxN = max(r.maxM, m), max(r.maxN, n)
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
	r.mu.Unlock()
	r.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	r.mu.Lock()
	r.inFlight--
	r.mu.Unlock()
}

// TestGemmKeepsGonumSerial: gonum's Dgemm starts its own goroutines (up to
// GOMAXPROCS) once C spans 4 or more 64×64 blocks. Every call the engine
// makes during training steps and a prediction of a 784-256-128-10
// network must stay within one block, so the only parallelism is the
// job's own: at most Threads calls in flight at once. Where the CPU has
// package kernels' SIMD level, training and predictions of at least
// inferKernelRows rows make no Dgemm call at all: their products run on
// the kernels.
func TestGemmKeepsGonumSerial(t *testing.T) {
	if blasOwnsThreads {
		t.Skip("this build hands whole products to a BLAS with its own threads")
	}
	rec := &recordingBLAS{}
	prev := blas64.Implementation()
	blas64.Use(rec)
	defer blas64.Use(prev)

	const threads = 3
	tr := benchTrainer(t, threads)
	tr.core.start(threads)
	for range 3 {
		tr.core.step(tr, tr.data.trainIdx[:tr.batch], 0.001)
	}
	tr.core.stop()
	if useKernels() && rec.calls != 0 {
		t.Errorf("training made %d Dgemm calls on a CPU with kernels level %v; want its products on package kernels", rec.calls, kernels.Active())
	}
	m := tr.Model()
	x := make([]float64, 256*m.Features())
	if err := m.Predict(make([]float64, 256*m.Outputs()), x, 256); err != nil {
		t.Fatal(err)
	}
	if useKernels() {
		if rec.calls != 0 {
			t.Errorf("a prediction of 256 rows made %d Dgemm calls on a CPU with kernels level %v; want its products on package kernels", rec.calls, kernels.Active())
		}
		// Passes of fewer than inferKernelRows rows stay on the BLAS.
		if err := m.Predict(make([]float64, m.Outputs()), x[:m.Features()], 1); err != nil {
			t.Fatal(err)
		}
	}
	if rec.calls == 0 || rec.maxM > gemmTile || rec.maxN > gemmTile {
		t.Errorf("%d Dgemm calls, largest C block %d×%d; want calls, none over %d×%d", rec.calls, rec.maxM, rec.maxN, gemmTile, gemmTile)
	}
	if rec.maxInFlight > threads {
		t.Errorf("%d Dgemm calls ran at once; want at most Threads = %d", rec.maxInFlight, threads)
	}
}

// countJob counts, per piece, how often it ran and on which slot.
type countJob struct {
	pieces int
	next   atomic.Int64
	runs   []atomic.Int32
	slots  [8]atomic.Int32 // goroutines of each slot inside run at once
	bad    atomic.Bool
}

func (j *countJob) run(slot int) {
	if j.slots[slot].Add(1) != 1 {
		j.bad.Store(true) // two goroutines shared a slot's buffers
	}
	defer j.slots[slot].Add(-1)
	for {
		i := int(j.next.Add(1) - 1)
		if i >= j.pieces {
			return
		}
		j.runs[i].Add(1)
	}
}

// TestPoolRunsEachPieceOnce dispatches many small jobs in a row, as a
// training step does, on pools of 2 to 4 goroutines: every piece runs
// exactly once, no two goroutines run with the same slot at once, and no
// goroutine still works on a job after dispatch returned (the next job's
// counts would show it). Run it with -race too: workers that wake late
// must not touch a job that has ended.
func TestPoolRunsEachPieceOnce(t *testing.T) {
	for _, threads := range []int{2, 3, 4} {
		p := newGemmPool[float64](threads)
		for round := range 2000 {
			j := &countJob{pieces: 1 + round%7, runs: make([]atomic.Int32, 1+round%7)}
			p.dispatch(j, j.pieces)
			for i := range j.runs {
				if n := j.runs[i].Load(); n != 1 {
					t.Fatalf("threads %d, round %d: piece %d ran %d times", threads, round, i, n)
				}
			}
			if j.bad.Load() {
				t.Fatalf("threads %d, round %d: two goroutines ran with one slot", threads, round)
			}
			for s := range j.slots {
				if n := j.slots[s].Load(); n != 0 {
					t.Fatalf("threads %d, round %d: slot %d still inside the job after dispatch returned", threads, round, s)
				}
			}
		}
		p.close()
	}
}
