package kernels

import (
	"fmt"
	"unsafe"
)

// Block sizes of the BLIS loops. MC×NC is the largest block of C computed
// from one packing of op(A) and op(B); KC is the depth of one packing.
// A packed MC×KC block of float64 is 128 KiB and a KC×NC block 256 KiB, so
// both stay in a core's L2 cache.
const (
	MC = 64
	NC = 128
	KC = 256
)

// maxMR and maxNR bound the register blocks of every level; buffers are
// sized for them.
const (
	maxMR = 8
	maxNR = 32
)

// Float is an element type the kernels multiply.
type Float interface{ ~float32 | ~float64 }

// micro is one micro-kernel: it computes an mr×nr block of C from a packed
// panel of mr rows of op(A) and one of nr columns of op(B), k steps deep
// (see asm/asm.go for the contract).
type micro[T Float] struct {
	mr, nr int
	fn     func(k int, a, b, c *T, ldc int, accumulate int)
}

// Workspace holds the packing buffers of one goroutine's products. Make it
// once with NewWorkspace and reuse it: Dgemm and Sgemm then allocate
// nothing. A Workspace must not be used by two products at once.
type Workspace[T Float] struct {
	a, b, edge []T
}

// NewWorkspace allocates the packing buffers for products of any size at
// any level.
func NewWorkspace[T Float]() *Workspace[T] {
	return &Workspace[T]{
		a:    make([]T, (MC+maxMR)*KC),
		b:    make([]T, (NC+maxNR)*KC),
		edge: make([]T, maxMR*maxNR),
	}
}

// WorkspaceBytes is the memory one Workspace of element type T holds, for
// callers that budget memory: its three buffers and its header.
func WorkspaceBytes[T Float]() int64 {
	var zero T
	elems := (MC+maxMR)*KC + (NC+maxNR)*KC + maxMR*maxNR
	return int64(elems)*int64(unsafe.Sizeof(zero)) + int64(unsafe.Sizeof(Workspace[T]{}))
}

// Dgemm computes C = op(A)·op(B) + beta·C where op(A) is m×k, op(B) is k×n
// and C is m×n, all row-major: op(A) is A, stored m×k with leading
// dimension lda, or Aᵀ if tA, with A stored k×m; likewise op(B) is B
// (k×n, ldb) or Bᵀ if tB (B stored n×k). With beta == 0, C is only
// written, never read. ws provides the packing buffers. Dgemm panics if a
// dimension is negative, a leading dimension is smaller than its row, or a
// slice is too short for its matrix.
func Dgemm(ws *Workspace[float64], tA, tB bool, m, n, k int, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	gemm(ws, &dkernels[active], tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// Sgemm is Dgemm for float32.
func Sgemm(ws *Workspace[float32], tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemm(ws, &skernels[active], tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// checkMatrix panics unless s holds a rows×cols row-major matrix with
// leading dimension ld. The kernels write through pointers, so these checks
// are all that keeps them inside their slices.
func checkMatrix[T Float](name string, s []T, rows, cols, ld int) {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("kernels: ld%s = %d, less than its %d columns", name, ld, cols))
	}
	if rows > 0 && cols > 0 && len(s) < (rows-1)*ld+cols {
		panic(fmt.Sprintf("kernels: len(%s) = %d, too short for %d×%d with ld%s = %d", name, len(s), rows, cols, name, ld))
	}
}

func gemm[T Float](ws *Workspace[T], kn *micro[T], tA, tB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	if tA {
		checkMatrix("a", a, k, m, lda)
	} else {
		checkMatrix("a", a, m, k, lda)
	}
	if tB {
		checkMatrix("b", b, n, k, ldb)
	} else {
		checkMatrix("b", b, k, n, ldb)
	}
	checkMatrix("c", c, m, n, ldc)
	if m == 0 || n == 0 {
		return
	}
	if beta != 0 && beta != 1 {
		for i := range m {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				row[j] *= beta
			}
		}
	}
	if k == 0 {
		if beta == 0 {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	mr, nr := kn.mr, kn.nr
	for jc := 0; jc < n; jc += NC {
		nc := min(NC, n-jc)
		for pc := 0; pc < k; pc += KC {
			kc := min(KC, k-pc)
			packB(ws.b, tB, b, ldb, pc, jc, kc, nc, nr)
			accumulate := 0
			if pc > 0 || beta != 0 {
				accumulate = 1
			}
			for ic := 0; ic < m; ic += MC {
				mc := min(MC, m-ic)
				packA(ws.a, tA, a, lda, ic, pc, mc, kc, mr)
				for jr := 0; jr < nc; jr += nr {
					bp := &ws.b[(jr/nr)*nr*kc]
					cols := min(nr, nc-jr)
					for ir := 0; ir < mc; ir += mr {
						ap := &ws.a[(ir/mr)*mr*kc]
						rows := min(mr, mc-ir)
						off := (ic+ir)*ldc + jc + jr
						if rows == mr && cols == nr {
							kn.fn(kc, ap, bp, &c[off], ldc, accumulate)
							continue
						}
						kn.fn(kc, ap, bp, &ws.edge[0], nr, 0)
						writeEdge(c[off:], ldc, ws.edge, nr, rows, cols, accumulate)
					}
				}
			}
		}
	}
}

// writeEdge stores or adds the valid rows×cols part of an edge block e
// (row length nr) into C.
func writeEdge[T Float](c []T, ldc int, e []T, nr, rows, cols, accumulate int) {
	for r := range rows {
		dst := c[r*ldc : r*ldc+cols]
		src := e[r*nr : r*nr+cols]
		if accumulate == 0 {
			copy(dst, src)
			continue
		}
		for j, v := range src {
			dst[j] += v
		}
	}
}

// packA copies the mc×kc block of op(A) at (ic, pc) into mr-row panels:
// panel q holds rows q·mr… as kc groups of mr values (one per step p),
// with rows past mc zero.
func packA[T Float](dst []T, tA bool, a []T, lda, ic, pc, mc, kc, mr int) {
	for ir := 0; ir < mc; ir += mr {
		panel := dst[(ir/mr)*mr*kc : (ir/mr+1)*mr*kc]
		rows := min(mr, mc-ir)
		if tA { // op(A)[i][p] = a[p*lda+i]
			for p := range kc {
				src := a[(pc+p)*lda+ic+ir:]
				copy(panel[p*mr:p*mr+rows], src[:rows])
			}
		} else if rows == 8 && mr == 8 { // op(A)[i][p] = a[i*lda+p]
			packRows8(panel, a[(ic+ir)*lda+pc:], lda, kc, 8)
		} else if rows == 6 && mr == 6 {
			packRows6(panel, a[(ic+ir)*lda+pc:], lda, kc)
		} else {
			for r := range rows {
				src := a[(ic+ir+r)*lda+pc:]
				src = src[:kc]
				for p, v := range src {
					panel[p*mr+r] = v
				}
			}
		}
		if rows < mr {
			for p := range kc {
				clear(panel[p*mr+rows : (p+1)*mr])
			}
		}
	}
}

// packRows8 interleaves 8 rows of kc values, lda apart in a, into dst
// with a stride of stride ≥ 8 per step: dst[p*stride+r] = a[r*lda+p].
// Reading the rows side by side writes dst in order, which is what makes
// it faster than one row at a time.
func packRows8[T Float](dst, a []T, lda, kc, stride int) {
	r0, r1, r2, r3 := a[:kc], a[lda:][:kc], a[2*lda:][:kc], a[3*lda:][:kc]
	r4, r5, r6, r7 := a[4*lda:][:kc], a[5*lda:][:kc], a[6*lda:][:kc], a[7*lda:][:kc]
	dst = dst[:(kc-1)*stride+8]
	for p := range kc {
		d := dst[p*stride : p*stride+8 : p*stride+8]
		d[0], d[1], d[2], d[3] = r0[p], r1[p], r2[p], r3[p]
		d[4], d[5], d[6], d[7] = r4[p], r5[p], r6[p], r7[p]
	}
}

// packRows6 is packRows8 for 6 rows.
func packRows6[T Float](dst, a []T, lda, kc int) {
	r0, r1, r2 := a[:kc], a[lda:][:kc], a[2*lda:][:kc]
	r3, r4, r5 := a[3*lda:][:kc], a[4*lda:][:kc], a[5*lda:][:kc]
	dst = dst[:6*kc]
	for p := range kc {
		d := dst[p*6 : p*6+6 : p*6+6]
		d[0], d[1], d[2] = r0[p], r1[p], r2[p]
		d[3], d[4], d[5] = r3[p], r4[p], r5[p]
	}
}

// packB copies the kc×nc block of op(B) at (pc, jc) into nr-column panels:
// panel q holds columns q·nr… as kc groups of nr values (one per step p),
// with columns past nc zero.
func packB[T Float](dst []T, tB bool, b []T, ldb, pc, jc, kc, nc, nr int) {
	for jr := 0; jr < nc; jr += nr {
		panel := dst[(jr/nr)*nr*kc : (jr/nr+1)*nr*kc]
		cols := min(nr, nc-jr)
		if tB && cols == nr && nr%8 == 0 { // op(B)[p][j] = b[j*ldb+p]
			for j := 0; j < nr; j += 8 {
				packRows8(panel[j:], b[(jc+jr+j)*ldb+pc:], ldb, kc, nr)
			}
		} else if tB {
			for j := range cols {
				src := b[(jc+jr+j)*ldb+pc:]
				src = src[:kc]
				for p, v := range src {
					panel[p*nr+j] = v
				}
			}
		} else { // op(B)[p][j] = b[p*ldb+j]
			src := b[pc*ldb+jc+jr:]
			switch {
			case cols < nr:
				for p := range kc {
					copy(panel[p*nr:p*nr+cols], src[p*ldb:p*ldb+cols])
				}
			case cols == 8:
				for p := range kc {
					*(*[8]T)(panel[p*8:]) = *(*[8]T)(src[p*ldb:])
				}
			case cols == 16:
				for p := range kc {
					*(*[16]T)(panel[p*16:]) = *(*[16]T)(src[p*ldb:])
				}
			case cols == 32:
				for p := range kc {
					*(*[32]T)(panel[p*32:]) = *(*[32]T)(src[p*ldb:])
				}
			default:
				for p := range kc {
					copy(panel[p*nr:p*nr+nr], src[p*ldb:p*ldb+nr])
				}
			}
		}
		if cols < nr {
			for p := range kc {
				clear(panel[p*nr+cols : (p+1)*nr])
			}
		}
	}
}

// goKernel returns the pure-Go micro-kernel for mr×nr blocks: the reference
// for the assembly ones, with the same contract and the same order of
// summation (p ascending for each element).
func goKernel[T Float](mr, nr int) func(k int, a, b, c *T, ldc int, accumulate int) {
	return func(k int, a, b, c *T, ldc int, accumulate int) {
		as := unsafe.Slice(a, k*mr)
		bs := unsafe.Slice(b, k*nr)
		cs := unsafe.Slice(c, (mr-1)*ldc+nr)
		var acc [maxMR * maxNR]T
		for p := range k {
			ap := as[p*mr : p*mr+mr]
			bp := bs[p*nr : p*nr+nr]
			for r, av := range ap {
				row := acc[r*nr : r*nr+nr]
				for j, bv := range bp {
					row[j] += av * bv
				}
			}
		}
		for r := range mr {
			dst := cs[r*ldc : r*ldc+nr]
			src := acc[r*nr : r*nr+nr]
			if accumulate == 0 {
				copy(dst, src)
				continue
			}
			for j, v := range src {
				dst[j] += v
			}
		}
	}
}
