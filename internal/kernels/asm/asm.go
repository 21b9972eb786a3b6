// Command asm generates the assembly of package kernels with avo: with
// -kernels gemm (the default) the GEMM micro-kernels, ../gemm_amd64.s and
// their Go declarations ../stubs_amd64.go; with -kernels adam the Adam steps
// (see adam.go), ../adam_amd64.s and ../adam_stubs_amd64.go. Run it through
// go generate in package kernels; it is a module of its own so that building
// the service never needs avo.
//
// Every GEMM micro-kernel computes one MR×NR block of C from packed panels:
//
//	acc[r][j] = Σ_{p<k} a[p*MR+r] · b[p*NR+j]    (p ascending, one FMA per p)
//	C[r*ldc+j] = acc[r][j]            if accumulate == 0
//	C[r*ldc+j] += acc[r][j]           otherwise
//
// The packed panel a holds MR values per p and b holds NR values per p, as
// package kernels lays them out. Each element's sum runs over p in order, so
// a kernel gives the same bits on every call with the same operands.
package main

import (
	"flag"
	"fmt"
	"os"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// kernel describes one micro-kernel: its name, its register block and the
// instructions of its element type and vector width.
type kernel struct {
	name  string
	elem  string // Go element type
	size  int    // bytes per element
	mr    int    // rows of the block
	vecs  int    // vectors per row of the block
	lanes int    // elements per vector
	vec   func() reg.VecVirtual
	bcast func(...Op)
	fma   func(...Op)
	add   func(...Op)
	mov   func(...Op)
	zero  func(...Op) // zero(x, x, x) clears x
	// fmaBcast, where set, multiplies by a value broadcast from memory in
	// the FMA itself (AVX-512's embedded broadcast), saving the separate
	// broadcast and its register.
	fmaBcast func(...Op)
	comment  string
}

// which selects the kernels of one output file: "gemm" for the
// micro-kernels, "adam" for the Adam steps.
var which = flag.String("kernels", "gemm", "kernels to generate: gemm or adam")

func main() {
	flag.Parse()
	ConstraintExpr("amd64")
	switch *which {
	case "gemm":
		gemmKernels()
	case "adam":
		for _, k := range adamKernels() {
			k.generate()
		}
	default:
		fmt.Fprintf(os.Stderr, "asm: -kernels %q: want gemm or adam\n", *which)
		os.Exit(2)
	}
	Generate()
}

func gemmKernels() {
	ks := []kernel{
		{name: "dkernAVX2", elem: "float64", size: 8, mr: 6, vecs: 2, lanes: 4, vec: YMM,
			bcast: VBROADCASTSD, fma: VFMADD231PD, add: VADDPD, mov: VMOVUPD, zero: VXORPD,
			comment: "6×8 float64 block, AVX2 and FMA: 12 ymm accumulators."},
		{name: "skernAVX2", elem: "float32", size: 4, mr: 6, vecs: 2, lanes: 8, vec: YMM,
			bcast: VBROADCASTSS, fma: VFMADD231PS, add: VADDPS, mov: VMOVUPS, zero: VXORPS,
			comment: "6×16 float32 block, AVX2 and FMA: 12 ymm accumulators."},
		{name: "dkernAVX512", elem: "float64", size: 8, mr: 8, vecs: 2, lanes: 8, vec: ZMM,
			bcast: VBROADCASTSD, fma: VFMADD231PD, add: VADDPD, mov: VMOVUPD, zero: VPXORQ,
			fmaBcast: VFMADD231PD_BCST, comment: "8×16 float64 block, AVX-512F: 16 zmm accumulators."},
		{name: "skernAVX512", elem: "float32", size: 4, mr: 8, vecs: 2, lanes: 16, vec: ZMM,
			bcast: VBROADCASTSS, fma: VFMADD231PS, add: VADDPS, mov: VMOVUPS, zero: VPXORQ,
			fmaBcast: VFMADD231PS_BCST, comment: "8×32 float32 block, AVX-512F: 16 zmm accumulators."},
	}
	for _, k := range ks {
		k.generate()
	}
}

func (kn kernel) generate() {
	TEXT(kn.name, NOSPLIT, fmt.Sprintf("func(k int, a, b, c *%s, ldc int, accumulate int)", kn.elem))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes a %s", kn.name, kn.comment))

	k := Load(Param("k"), GP64())
	a := Load(Param("a"), GP64())
	b := Load(Param("b"), GP64())

	acc := make([][]reg.VecVirtual, kn.mr)
	for r := range acc {
		acc[r] = make([]reg.VecVirtual, kn.vecs)
		for v := range acc[r] {
			acc[r][v] = kn.vec()
			kn.zero(acc[r][v], acc[r][v], acc[r][v])
		}
	}

	Comment("k steps of rank-1 updates, p ascending")
	TESTQ(k, k)
	JZ(LabelRef(kn.name + "_store"))
	Label(kn.name + "_loop")
	bv := make([]reg.VecVirtual, kn.vecs)
	for v := range bv {
		bv[v] = kn.vec()
		kn.mov(Mem{Base: b, Disp: v * kn.lanes * kn.size}, bv[v])
	}
	for r := 0; r < kn.mr; r++ {
		m := Mem{Base: a, Disp: r * kn.size}
		if kn.fmaBcast != nil {
			for v := range bv {
				kn.fmaBcast(m, bv[v], acc[r][v])
			}
			continue
		}
		x := kn.vec()
		kn.bcast(m, x)
		for v := range bv {
			kn.fma(bv[v], x, acc[r][v])
		}
	}
	ADDQ(U32(kn.mr*kn.size), a)
	ADDQ(U32(kn.vecs*kn.lanes*kn.size), b)
	DECQ(k)
	JNZ(LabelRef(kn.name + "_loop"))

	Label(kn.name + "_store")
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(shift(kn.size)), ldc)
	flag := Load(Param("accumulate"), GP64())
	TESTQ(flag, flag)
	JNZ(LabelRef(kn.name + "_add"))

	Comment("C = acc")
	row := GP64()
	MOVQ(c, row)
	for r := 0; r < kn.mr; r++ {
		for v := 0; v < kn.vecs; v++ {
			kn.mov(acc[r][v], Mem{Base: row, Disp: v * kn.lanes * kn.size})
		}
		if r+1 < kn.mr {
			ADDQ(ldc, row)
		}
	}
	VZEROUPPER()
	RET()

	Label(kn.name + "_add")
	Comment("C += acc")
	for r := 0; r < kn.mr; r++ {
		for v := 0; v < kn.vecs; v++ {
			m := Mem{Base: c, Disp: v * kn.lanes * kn.size}
			kn.add(m, acc[r][v], acc[r][v])
			kn.mov(acc[r][v], m)
		}
		if r+1 < kn.mr {
			ADDQ(ldc, c)
		}
	}
	VZEROUPPER()
	RET()
}

func shift(size int) int {
	switch size {
	case 4:
		return 2
	case 8:
		return 3
	}
	panic(fmt.Sprintf("element size %d", size))
}
