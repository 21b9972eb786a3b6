package engine

import (
	"sync/atomic"
	"time"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/backpropd/backpropd/internal/kernels"
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
// Where the CPU has AVX2+FMA or AVX-512 (package kernels), the tiles are
// kernels.MC×kernels.NC instead, each multiplied by one kernels.Dgemm call
// over the whole inner dimension, with packing buffers that every
// goroutine of the pool owns for the pool's life. The tiling again depends
// only on the shape, so the bits do not depend on Threads; they do depend
// on the CPU's kernel level, which is fixed for a machine, so a checkpoint
// resumed on the same machine continues bit for bit.
//
// A BLAS with its own thread pool (OpenBLAS) is better called once per
// product: an implementation file that installs one sets
// blasOwnsThreads, and its thread count then bounds the job instead.
//
// All of this holds for both precisions: a float32 network's products go
// through kernels.Sgemm, or gonum's blas32 tiled the same way (gonum's
// Sgemm has the same 64×64 blocks), or one blas32 Sgemm call per product.

// float is the element type of a network: its weights, gradients,
// activations, deltas and optimizer moments. Losses, norms and metrics
// are accumulated in float64 whatever it is.
type float interface{ float32 | float64 }

// arith is what a precision's numeric core calls that differs between
// float32 and float64: the SIMD product, the installed BLAS's product
// and matrix-vector product, and Adam's update. The BLAS functions look
// the implementation up at every call (blas64.Implementation(),
// blas32.Implementation()), because a build may install another one
// after package variables are initialized.
type arith[T float] struct {
	precision Precision
	kgemm     func(ws *kernels.Workspace[T], tA, tB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int)
	bgemm     func(tA, tB blas.Transpose, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int)
	gemv      func(tA blas.Transpose, m, n int, alpha T, a []T, lda int, x []T, incX int, beta T, y []T, incY int)
	adam      func(p, g, m, v []T, b1, b2, l2, step, c2, eps T)
}

var arith64 = arith[float64]{
	precision: Float64,
	kgemm:     kernels.Dgemm,
	bgemm: func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
		blas64.Implementation().Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	},
	gemv: func(tA blas.Transpose, m, n int, alpha float64, a []float64, lda int, x []float64, incX int, beta float64, y []float64, incY int) {
		blas64.Implementation().Dgemv(tA, m, n, alpha, a, lda, x, incX, beta, y, incY)
	},
	// adamUpdate is read at every call: a build may replace it in init.
	adam: func(p, g, m, v []float64, b1, b2, l2, step, c2, eps float64) {
		adamUpdate(p, g, m, v, b1, b2, l2, step, c2, eps)
	},
}

var arith32 = arith[float32]{
	precision: Float32,
	kgemm:     kernels.Sgemm,
	bgemm: func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		blas32.Implementation().Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	},
	gemv: func(tA blas.Transpose, m, n int, alpha float32, a []float32, lda int, x []float32, incX int, beta float32, y []float32, incY int) {
		blas32.Implementation().Sgemv(tA, m, n, alpha, a, lda, x, incX, beta, y, incY)
	},
	adam: kernels.Adam32,
}

// arithOf is T's arith. The size test is a constant in each
// instantiation, so this is a pointer and nothing else: no interface
// conversion that could allocate in the training loop.
func arithOf[T float]() *arith[T] {
	var zero T
	if unsafe.Sizeof(zero) == 4 {
		return (*arith[T])(unsafe.Pointer(&arith32))
	}
	return (*arith[T])(unsafe.Pointer(&arith64))
}

// precisionOf is T's Precision.
func precisionOf[T float]() Precision { return arithOf[T]().precision }

// gemmTile is gonum's block size; a tile of at most this many rows and
// columns of C keeps gonum's Dgemm serial.
const gemmTile = 64

// gemmParallelMin is the number of multiply-adds below which a product runs
// on the calling goroutine: handing tiles to workers costs a few
// microseconds.
const gemmParallelMin = 64 * 64 * 64

// useKernels reports whether products run on package kernels' SIMD
// micro-kernels rather than on the installed blas64 implementation.
func useKernels() bool { return !blasOwnsThreads && kernels.SIMD() }

// blasOwnsThreads, when true, makes every product a single call into the
// installed blas64 (or blas32) implementation, which then decides its own parallelism.
var blasOwnsThreads = false

// gemmOp is one product C = A·B + beta·C with optional transposes, in
// row-major storage as blas64 takes it.
type gemmOp[T float] struct {
	ar      *arith[T]
	tA, tB  bool
	m, n, k int
	a       []T
	lda     int
	b       []T
	ldb     int
	beta    T
	c       []T
	ldc     int

	tileM, tileN int // rows and columns of a tile of C
	tilesN       int // tiles per row of C
	tiles        int
	next         atomic.Int64

	// With useKernels, the goroutine of slot s uses the packing buffers
	// ws[s].
	ws []*kernels.Workspace[T]
}

// poolJob is work that a pool's goroutines share: run takes pieces from an
// atomic counter until none is left. slot identifies the goroutine (0 is
// the caller's), so that each uses its own packing buffers.
type poolJob interface{ run(slot int) }

// gemmPool runs one job at a time (the tiles of a product, or the chunks
// of an optimizer update) on a fixed set of goroutines. A nil *gemmPool
// computes everything on the caller.
//
// A worker joins a job only while it is open, and the caller closes it
// once it has run out of pieces itself: so the caller waits for workers
// that are computing, never for one the scheduler has not woken yet (on a
// busy machine that can take longer than the whole product). state holds
// the closed bit and the number of goroutines in the job; the last one to
// leave a closed job signals fin. gen counts the jobs opened.
//
// Waking a parked goroutine on another core costs tens of microseconds on
// a VM, as much as a product of the benchmark network takes, and a step
// opens a job every few tens of microseconds: so a worker spins for
// poolSpin after each job, watching gen, before it parks on wake, and the
// caller spins for as long before it blocks on fin. The spinning is on the
// job's own threads, which the job manager sizes so that jobs never share
// a core.
type gemmPool[T float] struct {
	workers int
	wake    chan struct{}
	state   atomic.Int64
	gen     atomic.Int64
	stopped atomic.Bool
	job     poolJob
	fin     chan struct{}
	op      gemmOp[T]
	upd     updateOp[T]
	rows    rowsOp[T]
	ws      []*kernels.Workspace[T] // with useKernels, one per goroutine: caller first
}

// closedJob is the bit of gemmPool.state set while no job is open.
const closedJob = 1 << 62

// poolSpin is how long a pool's goroutines spin for the next job, or for
// the end of the current one, before they block.
const poolSpin = 200 * time.Microsecond

// spin calls done until it reports true, for at most poolSpin, and
// reports whether it did.
func spin(done func() bool) bool {
	var until time.Time
	for n := 0; ; n++ {
		if done() {
			return true
		}
		if n&63 == 0 {
			now := time.Now()
			if until.IsZero() {
				until = now.Add(poolSpin)
			} else if now.After(until) {
				return false
			}
		}
	}
}

// newGemmPool starts threads-1 workers. For threads <= 1 it returns nil,
// unless products run on package kernels: then it returns a pool without
// workers that holds the caller's packing buffers, so that training
// allocates nothing per step. Call close to stop them.
func newGemmPool[T float](threads int) *gemmPool[T] {
	if threads <= 1 && !useKernels() {
		return nil
	}
	threads = max(threads, 1)
	p := &gemmPool[T]{workers: threads - 1, wake: make(chan struct{}, threads-1), fin: make(chan struct{}, 1)}
	p.state.Store(closedJob)
	if useKernels() {
		p.ws = make([]*kernels.Workspace[T], threads)
		for i := range p.ws {
			p.ws[i] = kernels.NewWorkspace[T]()
		}
	}
	for i := range p.workers {
		go p.work(i + 1)
	}
	return p
}

// work is the loop of the worker of slot: join every job opened, spinning
// between them for poolSpin before parking on wake.
func (p *gemmPool[T]) work(slot int) {
	var seen int64
	for {
		for spin(func() bool { return p.gen.Load() != seen || p.stopped.Load() }) {
			if p.stopped.Load() {
				return
			}
			seen = p.gen.Load()
			p.join(slot)
		}
		if _, ok := <-p.wake; !ok {
			return
		}
		seen = p.gen.Load()
		p.join(slot)
	}
}

// join runs the open job, if any, as the goroutine of slot.
func (p *gemmPool[T]) join(slot int) {
	for {
		s := p.state.Load()
		if s&closedJob != 0 {
			return
		}
		if p.state.CompareAndSwap(s, s+1) {
			break
		}
	}
	p.job.run(slot)
	if p.state.Add(-1) == closedJob {
		p.fin <- struct{}{}
	}
}

// dispatch runs j on the caller and on up to pieces-1 workers, and returns
// when every goroutine that took part is done.
func (p *gemmPool[T]) dispatch(j poolJob, pieces int) {
	w := min(p.workers, pieces-1)
	if w == 0 {
		j.run(0)
		return
	}
	p.job = j
	p.state.Store(1) // open, with the caller in it
	p.gen.Add(1)     // after opening: a worker that sees the new gen finds the job open, or already closed
	for range w {
		select {
		case p.wake <- struct{}{}:
		default: // every worker already has a wake-up waiting
		}
	}
	j.run(0)
	if p.state.Add(closedJob-1) != closedJob {
		// The last worker to leave sends on fin right after it leaves;
		// spinning first saves being parked and woken for it.
		spin(func() bool { return p.state.Load() == closedJob })
		<-p.fin
	}
	p.job = nil
}

func (p *gemmPool[T]) close() {
	if p != nil {
		p.stopped.Store(true)
		close(p.wake)
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
// panics (through the BLAS) on inconsistent sizes, which callers rule out.
func (p *gemmPool[T]) gemm(tA, tB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if blasOwnsThreads {
		arithOf[T]().bgemm(trans(tA), trans(tB), m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if p != nil && p.ws != nil {
		p.gemmKernels(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if p == nil || m*n*k < gemmParallelMin || (m <= gemmTile && n <= gemmTile) {
		var op gemmOp[T]
		op.set(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
		op.run(0)
		return
	}
	op := &p.op
	op.set(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
	p.dispatch(op, op.tiles)
	op.a, op.b, op.c = nil, nil, nil
}

// gemmKernels is gemm on package kernels, for a pool that holds packing
// buffers (products without a pool, that is inference, stay on blas64 and
// allocate nothing beyond what PredictMemory counts). kernels.Dgemm
// blocks C into the same MC×NC tiles that the pool shares out and sums
// each tile over the whole inner dimension in the same order, so one call
// for the whole product gives the same bits as a call per tile.
func (p *gemmPool[T]) gemmKernels(tA, tB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if p.workers == 0 || m*n*k < gemmParallelMin || (m <= kernels.MC && n <= kernels.NC) {
		arithOf[T]().kgemm(p.ws[0], tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
		return
	}
	op := &p.op
	op.ws = p.ws
	op.set(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
	p.dispatch(op, op.tiles)
	op.a, op.b, op.c, op.ws = nil, nil, nil, nil
}

func (op *gemmOp[T]) set(tA, tB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	op.ar = arithOf[T]()
	op.tA, op.tB, op.m, op.n, op.k = tA, tB, m, n, k
	op.a, op.lda, op.b, op.ldb, op.beta, op.c, op.ldc = a, lda, b, ldb, beta, c, ldc
	op.tileM, op.tileN = gemmTile, gemmTile
	if op.ws != nil {
		op.tileM, op.tileN = kernels.MC, kernels.NC
	}
	op.tilesN = (n + op.tileN - 1) / op.tileN
	op.tiles = op.tilesN * ((m + op.tileM - 1) / op.tileM)
	op.next.Store(0)
}

// run multiplies tiles until none is left.
func (op *gemmOp[T]) run(slot int) {
	if op.ws != nil {
		op.runKernels(slot)
		return
	}
	gemm := op.ar.bgemm
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
			gemm(tA, tB, mi, nj, 0, 1, op.a, op.lda, op.b, op.ldb, op.beta, c, op.ldc)
			continue
		}
		beta := op.beta
		for k0 := 0; k0 < op.k; k0 += gemmTile {
			kk := min(gemmTile, op.k-k0)
			var a, b []T
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
			gemm(tA, tB, mi, nj, kk, 1, a, op.lda, b, op.ldb, beta, c, op.ldc)
			beta = 1
		}
	}
}

// runKernels multiplies tiles with kernels.Dgemm (Sgemm), in this
// goroutine's own packing buffers, until none is left.
func (op *gemmOp[T]) runKernels(slot int) {
	ws := op.ws[slot]
	for {
		t := int(op.next.Add(1) - 1)
		if t >= op.tiles {
			return
		}
		i0 := (t / op.tilesN) * op.tileM
		j0 := (t % op.tilesN) * op.tileN
		mi := min(op.tileM, op.m-i0)
		nj := min(op.tileN, op.n-j0)
		var a, b []T
		if op.tA {
			a = op.a[i0:]
		} else {
			a = op.a[i0*op.lda:]
		}
		if op.tB {
			b = op.b[j0*op.ldb:]
		} else {
			b = op.b[j0:]
		}
		op.ar.kgemm(ws, op.tA, op.tB, mi, nj, op.k, a, op.lda, b, op.ldb, op.beta, op.c[i0*op.ldc+j0:], op.ldc)
	}
}

// rowsChunk is the number of rows a pool goroutine takes at a time in the
// row-wise passes of rowsOp, and rowsParallelMin the number of values
// below which such a pass stays on the caller.
const (
	rowsChunk       = 8
	rowsParallelMin = 16384
)

// Kinds of rowsOp.
const (
	rowsScale   = iota // scaleRow of the rows idx of src into x
	rowsActGrad        // activationGrad of d by a
)

// rowsOp is a pass over the rows of a batch in which each row's result
// depends on that row alone, shared out over a pool in chunks of
// rowsChunk rows: the bits do not depend on who computes which.
type rowsOp[T float] struct {
	kind   int
	rows   int
	chunks int
	next   atomic.Int64

	x   []T // rowsScale
	src *source
	idx []int
	sc  *scaler

	d, a  []T // rowsActGrad
	cols  int
	act   Activation
	slope T
}

func (o *rowsOp[T]) run(int) {
	for {
		i := int(o.next.Add(1) - 1)
		if i >= o.chunks {
			return
		}
		lo := i * rowsChunk
		hi := min(lo+rowsChunk, o.rows)
		switch o.kind {
		case rowsScale:
			f := o.src.features
			for r := lo; r < hi; r++ {
				row := o.idx[r]
				scaleRow(o.sc, o.x[r*f:r*f+f], o.src.x[row*f:row*f+f])
			}
		case rowsActGrad:
			activationGrad(o.d[lo*o.cols:hi*o.cols], o.a[lo*o.cols:hi*o.cols], hi-lo, o.cols, o.act, o.slope)
		}
	}
}

// shareRows reports whether a row-wise pass of rows × cols values is
// worth sharing out over p. Not when a BLAS runs its own threads: the
// pool's workers would spin on the cores its next product needs.
func (p *gemmPool[T]) shareRows(rows, cols int) bool {
	return p != nil && p.workers > 0 && !blasOwnsThreads && rows > rowsChunk && rows*cols >= rowsParallelMin
}

// runRows shares o, set up but for its counters, out over p.
func (p *gemmPool[T]) runRows(o *rowsOp[T]) {
	o.chunks = (o.rows + rowsChunk - 1) / rowsChunk
	o.next.Store(0)
	p.dispatch(o, o.chunks)
	*o = rowsOp[T]{}
}

// scaleRows writes the rows idx of src, scaled by sc, into x (see
// scaleRow).
func (p *gemmPool[T]) scaleRows(x []T, src *source, idx []int, sc *scaler) {
	f := src.features
	if !p.shareRows(len(idx), f) {
		for r, row := range idx {
			scaleRow(sc, x[r*f:r*f+f], src.x[row*f:row*f+f])
		}
		return
	}
	o := &p.rows
	o.kind, o.rows, o.x, o.src, o.idx, o.sc = rowsScale, len(idx), x, src, idx, sc
	p.runRows(o)
}

// activationGrad is the package's activationGrad, shared out by rows.
func (p *gemmPool[T]) activationGrad(d, a []T, rows, cols int, act Activation, slope T) {
	if !p.shareRows(rows, cols) || act == Identity {
		activationGrad(d, a, rows, cols, act, slope)
		return
	}
	o := &p.rows
	o.kind, o.rows, o.d, o.a, o.cols, o.act, o.slope = rowsActGrad, rows, d, a, cols, act, slope
	p.runRows(o)
}
