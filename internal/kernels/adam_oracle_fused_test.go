//go:build !amd64 || amd64.v3

package kernels

import "math"

// adamLoop is the engine's Adam loop with each product converted
// explicitly: here (GOAMD64 v3 and up, arm64 and others) Go may fuse a
// product and a sum into one multiply-add, which the plain loop would
// allow and the kernels never do. The conversions forbid it, so the oracle
// still rounds every operation on its own.
func adamLoop(p, g, m, v []float64, b1, b2, l2, step, c2, eps float64) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for i, gi := range g {
		gi += float64(l2 * p[i])
		m[i] = float64(b1*m[i]) + float64((1-b1)*gi)
		v[i] = float64(b2*v[i]) + float64(float64((1-b2)*gi)*gi)
		p[i] -= float64(step*m[i]) / (math.Sqrt(v[i])/c2 + eps)
	}
}

// adamLoop32 is adamLoop in float32, its square root rounded from
// float64's.
func adamLoop32(p, g, m, v []float32, b1, b2, l2, step, c2, eps float32) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for i, gi := range g {
		gi += float32(l2 * p[i])
		m[i] = float32(b1*m[i]) + float32((1-b1)*gi)
		v[i] = float32(b2*v[i]) + float32(float32((1-b2)*gi)*gi)
		p[i] -= float32(step*m[i]) / (float32(math.Sqrt(float64(v[i])))/c2 + eps)
	}
}
