package kernels

import (
	"fmt"
	"math"
)

//go:generate sh -c "cd asm && go run . -kernels adam -out ../adam_amd64.s -stubs ../adam_stubs_amd64.go -pkg kernels"

// Adam applies one Adam step to the parameters p in place, with gradient g
// and the moment vectors m and v (updated in place), element by element:
//
//	g' = g + l2·p
//	m  = b1·m + (1-b1)·g'
//	v  = b2·v + (1-b2)·g'·g'
//	p  = p - step·m / (√v/c2 + eps)
//
// where the caller passes step = lr/(1-b1ᵗ) and c2 = √(1-b2ᵗ). The SIMD
// levels run the loop four (AVX2) or eight (AVX-512) elements at a time
// and the elements past the last full vector in Go. Every level does the
// same correctly rounded operations in the same order and fuses none of
// them into a multiply-add, so, unlike Dgemm's, Adam's result has the same
// bits at every level and on every CPU: those of the plain Go loop as Go
// compiles it for amd64 by default (GOAMD64 v1, which never fuses). g, m
// and v must be at least as long as p and none may overlap another; Adam
// panics if one is shorter. It allocates nothing.
func Adam(p, g, m, v []float64, b1, b2, l2, step, c2, eps float64) {
	checkAdam(len(p), len(g), len(m), len(v))
	done := dadamVec(active, p, g, m, v, b1, b2, l2, step, c2, eps)
	adamGo(p[done:], g[done:], m[done:], v[done:], b1, b2, l2, step, c2, eps)
}

// Adam32 is Adam for float32, eight (AVX2) or sixteen (AVX-512) elements
// at a time. Its square root is float32(math.Sqrt(float64(x))), which is
// the correctly rounded float32 square root (float64 has more than twice
// float32's precision, so rounding twice cannot differ), as the vector
// instruction computes it.
func Adam32(p, g, m, v []float32, b1, b2, l2, step, c2, eps float32) {
	checkAdam(len(p), len(g), len(m), len(v))
	done := sadamVec(active, p, g, m, v, b1, b2, l2, step, c2, eps)
	adamGo(p[done:], g[done:], m[done:], v[done:], b1, b2, l2, step, c2, eps)
}

// checkAdam panics unless g, m and v hold at least the n elements of p: the
// kernels write through pointers, so this is all that keeps them inside
// their slices.
func checkAdam(n, ng, nm, nv int) {
	if ng < n || nm < n || nv < n {
		panic(fmt.Sprintf("kernels: Adam: len(g), len(m), len(v) = %d, %d, %d, shorter than len(p) = %d", ng, nm, nv, n))
	}
}

// adamGo is the Go level of Adam and the tail of the SIMD levels. Each
// explicit conversion T(…) rounds its product, which the Go specification
// says forbids fusing it into a multiply-add: on amd64 at GOAMD64 v1 the
// loop compiles to the instructions of the plain loop without conversions,
// and where Go would fuse (GOAMD64 v3, arm64) it still gives the bits of
// the vector kernels.
func adamGo[T Float](p, g, m, v []T, b1, b2, l2, step, c2, eps T) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	b1c, b2c := 1-b1, 1-b2
	for i, gi := range g {
		gi += T(l2 * p[i])
		m[i] = T(b1*m[i]) + T(b1c*gi)
		v[i] = T(b2*v[i]) + T(T(b2c*gi)*gi)
		p[i] -= T(step*m[i]) / (T(math.Sqrt(float64(v[i])))/c2 + eps)
	}
}
