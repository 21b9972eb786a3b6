//go:build openblas && cgo

package openblas

/*
#cgo LDFLAGS: -lm
#include <math.h>
#include <immintrin.h>

// The operations and their order are those of the engine's Go loop, each
// correctly rounded, and never fused into a multiply-add (which AVX-512 or
// -march=native would otherwise allow), so that every lane gives the same
// bits as Go does.
#pragma GCC optimize("fp-contract=off")

static void adam_scalar(long i, long n, double *p, const double *g, double *m, double *v,
		double b1, double b2, double l2, double step, double c2, double eps) {
	for (; i < n; i++) {
		double gi = g[i] + l2 * p[i];
		double mi = b1 * m[i] + (1 - b1) * gi;
		double vi = b2 * v[i] + (1 - b2) * gi * gi;
		m[i] = mi;
		v[i] = vi;
		p[i] -= step * mi / (sqrt(vi) / c2 + eps);
	}
}

__attribute__((target("avx")))
static void adam_avx(long n, double *p, const double *g, double *m, double *v,
		double b1, double b2, double l2, double step, double c2, double eps) {
	__m256d vb1 = _mm256_set1_pd(b1), vb1c = _mm256_set1_pd(1 - b1);
	__m256d vb2 = _mm256_set1_pd(b2), vb2c = _mm256_set1_pd(1 - b2);
	__m256d vl2 = _mm256_set1_pd(l2), vstep = _mm256_set1_pd(step);
	__m256d vc2 = _mm256_set1_pd(c2), veps = _mm256_set1_pd(eps);
	long i = 0;
	for (; i + 4 <= n; i += 4) {
		__m256d pi = _mm256_loadu_pd(p + i);
		__m256d gi = _mm256_add_pd(_mm256_loadu_pd(g + i), _mm256_mul_pd(vl2, pi));
		__m256d mi = _mm256_add_pd(_mm256_mul_pd(vb1, _mm256_loadu_pd(m + i)), _mm256_mul_pd(vb1c, gi));
		__m256d vi = _mm256_add_pd(_mm256_mul_pd(vb2, _mm256_loadu_pd(v + i)),
			_mm256_mul_pd(_mm256_mul_pd(vb2c, gi), gi));
		_mm256_storeu_pd(m + i, mi);
		_mm256_storeu_pd(v + i, vi);
		__m256d den = _mm256_add_pd(_mm256_div_pd(_mm256_sqrt_pd(vi), vc2), veps);
		_mm256_storeu_pd(p + i, _mm256_sub_pd(pi, _mm256_div_pd(_mm256_mul_pd(vstep, mi), den)));
	}
	adam_scalar(i, n, p, g, m, v, b1, b2, l2, step, c2, eps);
}

__attribute__((target("avx512f")))
static void adam_avx512(long n, double *p, const double *g, double *m, double *v,
		double b1, double b2, double l2, double step, double c2, double eps) {
	__m512d vb1 = _mm512_set1_pd(b1), vb1c = _mm512_set1_pd(1 - b1);
	__m512d vb2 = _mm512_set1_pd(b2), vb2c = _mm512_set1_pd(1 - b2);
	__m512d vl2 = _mm512_set1_pd(l2), vstep = _mm512_set1_pd(step);
	__m512d vc2 = _mm512_set1_pd(c2), veps = _mm512_set1_pd(eps);
	long i = 0;
	for (; i + 8 <= n; i += 8) {
		__m512d pi = _mm512_loadu_pd(p + i);
		__m512d gi = _mm512_add_pd(_mm512_loadu_pd(g + i), _mm512_mul_pd(vl2, pi));
		__m512d mi = _mm512_add_pd(_mm512_mul_pd(vb1, _mm512_loadu_pd(m + i)), _mm512_mul_pd(vb1c, gi));
		__m512d vi = _mm512_add_pd(_mm512_mul_pd(vb2, _mm512_loadu_pd(v + i)),
			_mm512_mul_pd(_mm512_mul_pd(vb2c, gi), gi));
		_mm512_storeu_pd(m + i, mi);
		_mm512_storeu_pd(v + i, vi);
		__m512d den = _mm512_add_pd(_mm512_div_pd(_mm512_sqrt_pd(vi), vc2), veps);
		_mm512_storeu_pd(p + i, _mm512_sub_pd(pi, _mm512_div_pd(_mm512_mul_pd(vstep, mi), den)));
	}
	adam_scalar(i, n, p, g, m, v, b1, b2, l2, step, c2, eps);
}

// adam_width is the widest kernel this CPU runs: 8 (AVX-512), 4 (AVX) or 1.
static int adam_width(void) {
	if (__builtin_cpu_supports("avx512f")) return 8;
	if (__builtin_cpu_supports("avx")) return 4;
	return 1;
}

// adam runs the kernel of the given width (which the CPU must support).
static void adam(int width, long n, double *p, const double *g, double *m, double *v,
		double b1, double b2, double l2, double step, double c2, double eps) {
	switch (width) {
	case 8: adam_avx512(n, p, g, m, v, b1, b2, l2, step, c2, eps); break;
	case 4: adam_avx(n, p, g, m, v, b1, b2, l2, step, c2, eps); break;
	default: adam_scalar(0, n, p, g, m, v, b1, b2, l2, step, c2, eps);
	}
}
*/
import "C"

import "unsafe"

// adamWidth is the widest kernel this CPU runs, chosen once.
var adamWidth = int(C.adam_width())

// Adam applies one Adam step to the parameters p in place, with gradient g
// and moment vectors m and v (updated in place), element by element:
//
//	g' = g + l2·p
//	m  = b1·m + (1-b1)·g'
//	v  = b2·v + (1-b2)·g'·g'
//	p  = p - step·m / (√v/c2 + eps)
//
// where the caller passes step = lr/(1-b1ᵗ) and c2 = √(1-b2ᵗ). It is the
// engine's Go loop, vectorized eight wide with AVX-512 or four wide with AVX,
// whichever the CPU has: Go does not vectorize, and this loop (a square root
// and two divisions per parameter) cost as much as the GEMMs of a step. The
// result is bit-identical to the Go loop compiled without fused
// multiply-adds (Go's default on amd64). g, m and v must be at least as long
// as p, and none may overlap another; Adam panics otherwise.
func Adam(p, g, m, v []float64, b1, b2, l2, step, c2, eps float64) {
	adamWith(adamWidth, p, g, m, v, b1, b2, l2, step, c2, eps)
}

// adamWith is Adam with a given kernel width (8, 4 or 1), which the CPU
// must support; the tests run every width the CPU has.
func adamWith(width int, p, g, m, v []float64, b1, b2, l2, step, c2, eps float64) {
	n := len(p)
	if n == 0 {
		return
	}
	if len(g) < n || len(m) < n || len(v) < n {
		panic("openblas: Adam: g, m or v shorter than p")
	}
	C.adam(C.int(width), C.long(n), (*C.double)(unsafe.Pointer(&p[0])), (*C.double)(unsafe.Pointer(&g[0])),
		(*C.double)(unsafe.Pointer(&m[0])), (*C.double)(unsafe.Pointer(&v[0])),
		C.double(b1), C.double(b2), C.double(l2), C.double(step), C.double(c2), C.double(eps))
}
