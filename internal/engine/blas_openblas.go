//go:build openblas && cgo

package engine

import "github.com/backpropd/backpropd/internal/openblas"

// With the openblas build tag:
//   - every blas64 call the engine makes, directly or through gonum/mat,
//     runs on OpenBLAS, and each product is one Dgemm call, because
//     OpenBLAS runs its own thread pool, sized process-wide by
//     openblas.SetThreads (call it once at startup with
//     openblas.ThreadsFor(workers), so that workers × threads never
//     exceeds the cores);
//   - Adam's update runs on openblas.Adam, the same bits as kernels.Adam
//     and the plain Go loop, eight (AVX-512) or four (AVX) lanes at a
//     time: in Go it cost as much as the products.
//
// Package-level variables are initialized before init runs, so the engine
// looks the implementation up at call time (blas64.Implementation()), never
// caches it in a package variable.
func init() {
	openblas.Use()
	blasOwnsThreads = true
	adamUpdate = openblas.Adam
}
