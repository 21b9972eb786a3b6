package engine

import (
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// How a job's parallelism is bounded.
//
// gonum's pure-Go Dgemm (blas/gonum/dgemm.go) cuts C into 64×64 blocks and,
// when there are at least 4 of them, starts one goroutine per block,
// throttled by a channel of capacity runtime.GOMAXPROCS(0). Left alone, every
// job would therefore use every core, so that N concurrent jobs run N×cores
// goroutines, and each large product allocates its goroutines and channel.
//
// The engine instead cuts every product into the same 64×64 tiles of C
// itself and multiplies each tile with its own Dgemm calls, one per 64-wide
// slice of the inner dimension: a tile has a single block, so gonum stays on
// its serial kernel, and the arithmetic is exactly that of gonum's parallel
// path. The tiles of one product are shared out through an atomic counter
// among the calling goroutine and Threads-1 workers that live as long as one
// Run. So a job never uses more than Threads cores, the steady state
// allocates nothing, and because the tiling does not depend on Threads the
// results are bit-identical for any thread count.
//
// A BLAS with its own thread pool (OpenBLAS) is better called once per
// product: an implementation file that installs one sets
// blasOwnsThreads, and its thread count then bounds the job instead.

// gemmTile is gonum's block size; a tile of at most this many rows and
// columns of C keeps gonum's Dgemm serial.
const gemmTile = 64

// gemmParallelMin is the number of multiply-adds below which a product runs
// on the calling goroutine: handing tiles to workers costs a few
// microseconds.
const gemmParallelMin = 64 * 64 * 64

// blasOwnsThreads, when true, makes every product a single call into the
// installed blas64 implementation, which then decides its own parallelism.
var blasOwnsThreads = false

// gemmOp is one product C = A·B + beta·C with optional transposes, in
// row-major storage as blas64 takes it.
type gemmOp struct {
	tA, tB  bool
	m, n, k int
	a       []float64
	lda     int
	b       []float64
	ldb     int
	beta    float64
	c       []float64
	ldc     int

	tilesN int // tiles per row of C
	tiles  int
	next   atomic.Int64
}

// poolJob is work that a pool's goroutines share: run takes pieces from an
// atomic counter until none is left.
type poolJob interface{ run() }

// gemmPool runs one job at a time (the tiles of a product, or the chunks
// of an optimizer update) on a fixed set of goroutines. A nil *gemmPool
// computes everything on the caller.
type gemmPool struct {
	workers int
	work    chan poolJob
	done    sync.WaitGroup
	op      gemmOp
	upd     updateOp
}

// newGemmPool starts threads-1 workers (none for threads <= 1, in which case
// it returns nil). Call close to stop them.
func newGemmPool(threads int) *gemmPool {
	if threads <= 1 {
		return nil
	}
	p := &gemmPool{workers: threads - 1, work: make(chan poolJob)}
	for range p.workers {
		go func() {
			for j := range p.work {
				j.run()
				p.done.Done()
			}
		}()
	}
	return p
}

// dispatch runs j on the caller and on up to pieces-1 workers, and returns
// when all are done.
func (p *gemmPool) dispatch(j poolJob, pieces int) {
	w := min(p.workers, pieces-1)
	p.done.Add(w)
	for range w {
		p.work <- j
	}
	j.run()
	p.done.Wait()
}

func (p *gemmPool) close() {
	if p != nil {
		close(p.work)
	}
}

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// gemm computes C = op(A)·op(B) + beta·C, where op(A) is m×k, op(B) is k×n
// and C is m×n, all row-major with leading dimensions lda, ldb and ldc. It
// panics (through blas64) on inconsistent sizes, which callers rule out.
func (p *gemmPool) gemm(tA, tB bool, m, n, k int, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if blasOwnsThreads {
		blas64.Implementation().Dgemm(trans(tA), trans(tB), m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if p == nil || m*n*k < gemmParallelMin || (m <= gemmTile && n <= gemmTile) {
		var op gemmOp
		op.set(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
		op.run()
		return
	}
	op := &p.op
	op.set(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
	p.dispatch(op, op.tiles)
	op.a, op.b, op.c = nil, nil, nil
}

func (op *gemmOp) set(tA, tB bool, m, n, k int, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	op.tA, op.tB, op.m, op.n, op.k = tA, tB, m, n, k
	op.a, op.lda, op.b, op.ldb, op.beta, op.c, op.ldc = a, lda, b, ldb, beta, c, ldc
	op.tilesN = (n + gemmTile - 1) / gemmTile
	op.tiles = op.tilesN * ((m + gemmTile - 1) / gemmTile)
	op.next.Store(0)
}

// run multiplies tiles until none is left.
func (op *gemmOp) run() {
	impl := blas64.Implementation()
	tA, tB := trans(op.tA), trans(op.tB)
	for {
		t := int(op.next.Add(1) - 1)
		if t >= op.tiles {
			return
		}
		i0 := (t / op.tilesN) * gemmTile
		j0 := (t % op.tilesN) * gemmTile
		mi := min(gemmTile, op.m-i0)
		nj := min(gemmTile, op.n-j0)
		c := op.c[i0*op.ldc+j0:]
		if op.k == 0 {
			impl.Dgemm(tA, tB, mi, nj, 0, 1, op.a, op.lda, op.b, op.ldb, op.beta, c, op.ldc)
			continue
		}
		beta := op.beta
		for k0 := 0; k0 < op.k; k0 += gemmTile {
			kk := min(gemmTile, op.k-k0)
			var a, b []float64
			if op.tA {
				a = op.a[k0*op.lda+i0:]
			} else {
				a = op.a[i0*op.lda+k0:]
			}
			if op.tB {
				b = op.b[j0*op.ldb+k0:]
			} else {
				b = op.b[k0*op.ldb+j0:]
			}
			impl.Dgemm(tA, tB, mi, nj, kk, 1, a, op.lda, b, op.ldb, beta, c, op.ldc)
			beta = 1
		}
	}
}
