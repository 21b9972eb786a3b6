// Package engine trains multi-layer perceptrons by backpropagation and runs
// them for inference.
//
// It is pure math over gonum: every matrix product goes through package
// kernels' SIMD micro-kernels where the CPU has them, otherwise through
// gonum.org/v1/gonum/blas/blas64 (blas32 for a network trained with
// training.precision float32), so installing another implementation with
// blas64.Use and blas32.Use (OpenBLAS, for example) switches all of them
// at once. It holds
// data in memory and knows nothing about where it came from or where models
// go: it must not import net/http, chi, Prometheus, the os or io/fs file
// APIs, or any other backpropd package.
//
// The pieces, in the order a job uses them:
//
//   - Config (Resolve, Validate) describes a network and its training run.
//     Its JSON encoding is the engine's own contract: every model file
//     embeds the resolved Config in that encoding and must stay readable,
//     and the FieldErrors of Validate name paths in it. Services that take
//     requests keep their own request types, convert them to a Config and
//     rename the paths of data problems (FieldData, FieldValidationSet) to
//     their own.
//   - NewTrainer checks the data, splits off validation rows, fits
//     standardization and allocates every buffer once; Run trains with
//     mini-batch backpropagation, one GEMM per layer and direction.
//   - MarshalState and RestoreState save and resume a run bit-identically.
//   - Model predicts, and MarshalBinary and DecodeModel store it in a
//     versioned, checksummed, data-only format.
package engine
