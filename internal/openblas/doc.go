// Package openblas routes gonum's blas64 and blas32 to OpenBLAS through cgo
// when the program is built with the build tag openblas (and cgo enabled),
// and sizes OpenBLAS's thread pool so that concurrent training jobs do not
// oversubscribe the cores.
//
// Without the tag the package still compiles: Use does nothing, Enabled
// reports false and the program keeps gonum's pure-Go BLAS, so that callers
// such as cmd/server can call SetThreads unconditionally.
//
// The cgo build links Debian's libopenblas-dev (-lopenblas).
// The calls themselves go through gonum.org/v1/netlib, whose cblas wrappers
// still satisfy gonum v0.17's blas.Float64 and blas.Float32 interfaces.
//
// This package imports nothing of backpropd: the engine imports it (from its
// openblas-tagged file), never the other way round.
package openblas
