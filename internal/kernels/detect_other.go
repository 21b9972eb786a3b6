//go:build !amd64

package kernels

func detect() Level { return Go }

var (
	dkernels = [...]micro[float64]{Go: {mr: 4, nr: 8, fn: goKernel[float64](4, 8)}}
	skernels = [...]micro[float32]{Go: {mr: 4, nr: 8, fn: goKernel[float32](4, 8)}}
)
