package engine

import "math"

// biasActivate adds the bias b to every row of the rows×cols matrix z and
// applies the activation in the same pass, in place: z becomes the layer's
// output A = f(Z + b).
func biasActivate[T float](z, b []T, rows, cols int, act Activation, slope T) {
	z = z[:rows*cols]
	b = b[:cols]
	switch act {
	case Identity:
		for r := 0; r < len(z); r += cols {
			row := z[r : r+cols]
			for j, bj := range b {
				row[j] += bj
			}
		}
	case ReLU:
		for r := 0; r < len(z); r += cols {
			row := z[r : r+cols]
			for j, bj := range b {
				row[j] = max(row[j]+bj, 0)
			}
		}
	case LeakyReLU:
		for r := 0; r < len(z); r += cols {
			row := z[r : r+cols]
			for j, bj := range b {
				v := row[j] + bj
				if v < 0 {
					v *= slope
				}
				row[j] = v
			}
		}
	case Sigmoid:
		for r := 0; r < len(z); r += cols {
			row := z[r : r+cols]
			for j, bj := range b {
				row[j] = sigmoid(row[j] + bj)
			}
		}
	case Tanh:
		for r := 0; r < len(z); r += cols {
			row := z[r : r+cols]
			for j, bj := range b {
				row[j] = T(math.Tanh(float64(row[j] + bj)))
			}
		}
	case Softmax:
		for r := 0; r < len(z); r += cols {
			row := z[r : r+cols]
			hi := T(math.Inf(-1))
			for j, bj := range b {
				row[j] += bj
				hi = max(hi, row[j])
			}
			var sum T
			for j, v := range row {
				e := T(math.Exp(float64(v - hi)))
				row[j] = e
				sum += e
			}
			inv := 1 / sum
			for j := range row {
				row[j] *= inv
			}
		}
	default:
		panic("engine: unknown activation " + string(act))
	}
}

// sigmoid is 1/(1+e^-v), computed without overflow for either sign of v.
// In float32 the exponential is float64's, rounded.
func sigmoid[T float](v T) T {
	if v >= 0 {
		return 1 / (1 + T(math.Exp(float64(-v))))
	}
	e := T(math.Exp(float64(v)))
	return e / (1 + e)
}

// activationGrad multiplies the gradient d (dL/dA, rows×cols) in place by
// the derivative of the activation, written in terms of the layer's output
// a = f(z), giving dL/dZ. For softmax it applies the row's Jacobian:
// dz_j = a_j (d_j - Σ_i d_i a_i).
func activationGrad[T float](d, a []T, rows, cols int, act Activation, slope T) {
	d = d[:rows*cols]
	a = a[:rows*cols]
	switch act {
	case Identity:
	case ReLU:
		for i, v := range a {
			if v <= 0 {
				d[i] = 0
			}
		}
	case LeakyReLU:
		for i, v := range a {
			if v <= 0 {
				d[i] *= slope
			}
		}
	case Sigmoid:
		for i, v := range a {
			d[i] *= v * (1 - v)
		}
	case Tanh:
		for i, v := range a {
			d[i] *= 1 - v*v
		}
	case Softmax:
		for r := 0; r < len(d); r += cols {
			dr, ar := d[r:r+cols], a[r:r+cols]
			var s T
			for j, v := range ar {
				s += dr[j] * v
			}
			for j, v := range ar {
				dr[j] = v * (dr[j] - s)
			}
		}
	default:
		panic("engine: unknown activation " + string(act))
	}
}
