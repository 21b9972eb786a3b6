//go:build openblas && cgo

package openblas

/*
#cgo LDFLAGS: -lm
#include <math.h>
#include <immintrin.h>

// The operations and their order are those of the engine's Go loop, with no
// fused multiply-add, so that (IEEE sqrt and division being correctly
// rounded) every lane gives the same bits as Go does.
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

static void adam(long n, double *p, const double *g, double *m, double *v,
		double b1, double b2, double l2, double step, double c2, double eps) {
	if (__builtin_cpu_supports("avx")) {
		adam_avx(n, p, g, m, v, b1, b2, l2, step, c2, eps);
		return;
	}
	adam_scalar(0, n, p, g, m, v, b1, b2, l2, step, c2, eps);
}
*/
import "C"

import "unsafe"

// Adam applies one Adam step to the parameters p in place, with gradient g
// and moment vectors m and v (updated in place), element by element:
//
//	g' = g + l2·p
//	m  = b1·m + (1-b1)·g'
//	v  = b2·v + (1-b2)·g'·g'
//	p  = p - step·m / (√v/c2 + eps)
//
// where the caller passes step = lr/(1-b1ᵗ) and c2 = √(1-b2ᵗ). It is the
// engine's Go loop, vectorized four wide with AVX where the CPU has it: Go
// does not vectorize, and this loop (a square root and two divisions per
// parameter) costs as much as the GEMMs of a step. The result is
// bit-identical to the Go loop compiled without fused multiply-adds (Go's
// default on amd64). g, m and v must be at least as long as p, and none may
// overlap another; Adam panics otherwise.
func Adam(p, g, m, v []float64, b1, b2, l2, step, c2, eps float64) {
	n := len(p)
	if n == 0 {
		return
	}
	if len(g) < n || len(m) < n || len(v) < n {
		panic("openblas: Adam: g, m or v shorter than p")
	}
	C.adam(C.long(n), (*C.double)(unsafe.Pointer(&p[0])), (*C.double)(unsafe.Pointer(&g[0])),
		(*C.double)(unsafe.Pointer(&m[0])), (*C.double)(unsafe.Pointer(&v[0])),
		C.double(b1), C.double(b2), C.double(l2), C.double(step), C.double(c2), C.double(eps))
}
