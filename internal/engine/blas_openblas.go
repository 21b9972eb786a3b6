//go:build openblas && cgo

package engine

import "github.com/backpropd/backpropd/internal/openblas"

// With the openblas build tag every blas64 call the engine makes, directly
// or through gonum/mat, runs on OpenBLAS. Package-level variables are
// initialized before init runs, so the engine must look the implementation
// up at call time (blas64.Gemm, blas64.Implementation()), not cache it in a
// package variable.
func init() { openblas.Use() }
