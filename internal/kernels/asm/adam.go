package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// adamKernel describes one Adam kernel: its name, element type and the
// instructions of its vector width. Every kernel updates n elements (a
// multiple of its lanes), one vector at a time, with the operations of
// package kernels' Go loop in the same order:
//
//	g' = g + l2·p
//	m  = b1·m + b1c·g'
//	v  = b2·v + b2c·g'·g'        ((b2c·g')·g')
//	p  = p - (step·m) / (√v/c2 + eps)
//
// where b1c = 1-b1 and b2c = 1-b2 come from the caller. Each instruction is
// a correctly rounded IEEE operation (vector square root and division are
// exact to half an ulp like their scalar forms) and none is fused into a
// multiply-add, so every lane gives the bits of the scalar loop.
type adamKernel struct {
	name  string
	elem  string // Go element type
	size  int    // bytes per element
	lanes int    // elements per vector
	vec   func() reg.VecVirtual
	bcast func(...Op)
	mov   func(...Op)
	add   func(...Op)
	sub   func(...Op)
	mul   func(...Op)
	div   func(...Op)
	sqrt  func(...Op)
	isa   string
}

func adamKernels() []adamKernel {
	d := func(name string, vec func() reg.VecVirtual, lanes int, isa string) adamKernel {
		return adamKernel{name: name, elem: "float64", size: 8, lanes: lanes, vec: vec, bcast: VBROADCASTSD,
			mov: VMOVUPD, add: VADDPD, sub: VSUBPD, mul: VMULPD, div: VDIVPD, sqrt: VSQRTPD, isa: isa}
	}
	s := func(name string, vec func() reg.VecVirtual, lanes int, isa string) adamKernel {
		return adamKernel{name: name, elem: "float32", size: 4, lanes: lanes, vec: vec, bcast: VBROADCASTSS,
			mov: VMOVUPS, add: VADDPS, sub: VSUBPS, mul: VMULPS, div: VDIVPS, sqrt: VSQRTPS, isa: isa}
	}
	return []adamKernel{
		d("dadamAVX2", YMM, 4, "AVX"),
		s("sadamAVX2", YMM, 8, "AVX"),
		d("dadamAVX512", ZMM, 8, "AVX-512F"),
		s("sadamAVX512", ZMM, 16, "AVX-512F"),
	}
}

func (kn adamKernel) generate() {
	TEXT(kn.name, NOSPLIT, fmt.Sprintf("func(n int, p, grad, m, v *%[1]s, b1, b1c, b2, b2c, l2, step, c2, eps %[1]s)", kn.elem))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s applies one Adam step to n %s elements, n a multiple of %d,", kn.name, kn.elem, kn.lanes),
		fmt.Sprintf("%d lanes at a time with %s: the operations of the Go loop in its", kn.lanes, kn.isa),
		"order, none fused, so the same bits.")

	n := Load(Param("n"), GP64())
	p := Load(Param("p"), GP64())
	g := Load(Param("grad"), GP64()) // "g" names a register in Go assembly
	m := Load(Param("m"), GP64())
	v := Load(Param("v"), GP64())
	coef := func(name string) reg.VecVirtual {
		arg, err := Param(name).Resolve()
		if err != nil {
			panic(fmt.Sprintf("%s: parameter %s: %v", kn.name, name, err))
		}
		x := kn.vec()
		kn.bcast(arg.Addr, x)
		return x
	}
	b1, b1c, b2, b2c := coef("b1"), coef("b1c"), coef("b2"), coef("b2c")
	l2, step, c2, eps := coef("l2"), coef("step"), coef("c2"), coef("eps")

	i := GP64()
	XORQ(i, i)
	TESTQ(n, n)
	JZ(LabelRef(kn.name + "_done"))
	Label(kn.name + "_loop")
	at := func(base reg.Register) Mem { return Mem{Base: base, Index: i, Scale: uint8(kn.size)} }

	Comment("g' = g + l2·p")
	pi, gi := kn.vec(), kn.vec()
	kn.mov(at(p), pi)
	kn.mul(pi, l2, gi)
	kn.add(at(g), gi, gi)

	Comment("m = b1·m + (1-b1)·g'")
	mi, t := kn.vec(), kn.vec()
	kn.mul(at(m), b1, mi)
	kn.mul(gi, b1c, t)
	kn.add(t, mi, mi)
	kn.mov(mi, at(m))

	Comment("v = b2·v + ((1-b2)·g')·g'")
	vi, u := kn.vec(), kn.vec()
	kn.mul(at(v), b2, vi)
	kn.mul(gi, b2c, u)
	kn.mul(gi, u, u)
	kn.add(u, vi, vi)
	kn.mov(vi, at(v))

	Comment("p = p - (step·m) / (√v/c2 + eps)")
	den, num := kn.vec(), kn.vec()
	kn.sqrt(vi, den)
	kn.div(c2, den, den)
	kn.add(eps, den, den)
	kn.mul(mi, step, num)
	kn.div(den, num, num)
	kn.sub(num, pi, pi)
	kn.mov(pi, at(p))

	ADDQ(U32(kn.lanes), i)
	CMPQ(i, n)
	JB(LabelRef(kn.name + "_loop"))

	Label(kn.name + "_done")
	VZEROUPPER()
	RET()
}
