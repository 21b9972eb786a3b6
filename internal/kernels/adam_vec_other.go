//go:build !amd64

package kernels

// dadamVec has no vector kernel to run here: Adam is all Go.
func dadamVec(Level, []float64, []float64, []float64, []float64, float64, float64, float64, float64, float64, float64) int {
	return 0
}

// sadamVec has no vector kernel to run here: Adam32 is all Go.
func sadamVec(Level, []float32, []float32, []float32, []float32, float32, float32, float32, float32, float32, float32) int {
	return 0
}
