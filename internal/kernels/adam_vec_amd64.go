package kernels

// dadamVec runs Adam's kernel of level l over the longest prefix of p that
// fills whole vectors and returns its length; the caller does the rest.
// At the Go level it does nothing and returns 0.
func dadamVec(l Level, p, g, m, v []float64, b1, b2, l2, step, c2, eps float64) int {
	switch l {
	case AVX512:
		if n := len(p) &^ 7; n > 0 {
			dadamAVX512(n, &p[0], &g[0], &m[0], &v[0], b1, 1-b1, b2, 1-b2, l2, step, c2, eps)
			return n
		}
	case AVX2:
		if n := len(p) &^ 3; n > 0 {
			dadamAVX2(n, &p[0], &g[0], &m[0], &v[0], b1, 1-b1, b2, 1-b2, l2, step, c2, eps)
			return n
		}
	}
	return 0
}

// sadamVec is dadamVec for float32.
func sadamVec(l Level, p, g, m, v []float32, b1, b2, l2, step, c2, eps float32) int {
	switch l {
	case AVX512:
		if n := len(p) &^ 15; n > 0 {
			sadamAVX512(n, &p[0], &g[0], &m[0], &v[0], b1, 1-b1, b2, 1-b2, l2, step, c2, eps)
			return n
		}
	case AVX2:
		if n := len(p) &^ 7; n > 0 {
			sadamAVX2(n, &p[0], &g[0], &m[0], &v[0], b1, 1-b1, b2, 1-b2, l2, step, c2, eps)
			return n
		}
	}
	return 0
}
