//go:build amd64 && !amd64.v3

package kernels

import "math"

// adamLoop is the engine's Adam loop as it was written before Adam
// (internal/engine/optimizer.go's adamGo), word for word: the oracle Adam
// must match bit for bit. Go compiles it for amd64 below GOAMD64 v3 without
// fused multiply-adds, so each operation is rounded on its own, as in the
// kernels.
func adamLoop(p, g, m, v []float64, b1, b2, l2, step, c2, eps float64) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for i, gi := range g {
		gi += l2 * p[i]
		m[i] = b1*m[i] + (1-b1)*gi
		v[i] = b2*v[i] + (1-b2)*gi*gi
		p[i] -= step * m[i] / (math.Sqrt(v[i])/c2 + eps)
	}
}

// adamLoop32 is adamLoop in float32, its square root rounded from
// float64's.
func adamLoop32(p, g, m, v []float32, b1, b2, l2, step, c2, eps float32) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for i, gi := range g {
		gi += l2 * p[i]
		m[i] = b1*m[i] + (1-b1)*gi
		v[i] = b2*v[i] + (1-b2)*gi*gi
		p[i] -= step * m[i] / (float32(math.Sqrt(float64(v[i])))/c2 + eps)
	}
}
