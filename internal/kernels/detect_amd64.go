package kernels

import "golang.org/x/sys/cpu"

// detect reads the CPU's features; x/sys/cpu reports AVX and AVX-512 only
// where the OS also saves their registers.
func detect() Level {
	switch {
	case cpu.X86.HasAVX512F:
		return AVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return AVX2
	}
	return Go
}

var (
	dkernels = [...]micro[float64]{
		Go:     {mr: 4, nr: 8, fn: goKernel[float64](4, 8)},
		AVX2:   {mr: 6, nr: 8, fn: dkernAVX2},
		AVX512: {mr: 8, nr: 16, fn: dkernAVX512},
	}
	skernels = [...]micro[float32]{
		Go:     {mr: 4, nr: 8, fn: goKernel[float32](4, 8)},
		AVX2:   {mr: 6, nr: 16, fn: skernAVX2},
		AVX512: {mr: 8, nr: 32, fn: skernAVX512},
	}
)
