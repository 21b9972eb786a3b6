package engine

import "math"

// probFloor clips probabilities inside logarithms, so that a probability of
// exactly 0 or 1 gives a large finite loss instead of Inf: -log(1e-15) ≈ 34.5.
const probFloor = 1e-15

func clippedLog(p float64) float64 { return math.Log(max(p, probFloor)) }

// lossGrad computes the mean loss of the rows×cols outputs a against targets
// y and writes dL/dZ of the output layer into d.
//
//   - mse: L = Σ (a-y)² / (rows·cols), the mean over every output value.
//   - binary_cross_entropy (sigmoid outputs): L = -Σ [y log a + (1-y)
//     log(1-a)] / (rows·cols); with the sigmoid fused, dL/dZ = (a-y)/(rows·cols).
//   - cross_entropy (softmax outputs, one-hot y): L = -Σ y log a / rows; with
//     the softmax fused, dL/dZ = (a-y)/rows.
//
// Dividing by rows averages the gradient over the batch.
//
// With row weights w (nil: every row weighs 1), row r's terms, and so its
// gradient, are multiplied by w[r] and the divisor stays the same, as
// Keras' class_weight does: L = Σ_r w_r ℓ_r / rows (per output value for
// mse and binary_cross_entropy).
//
// The gradient is in T; the loss is summed in float64 from T's values,
// so that a float32 network's reported loss is not rounded further.
func lossGrad[T float](d, a, y, w []T, rows, cols int, loss Loss, act Activation, slope T) float64 {
	n := rows * cols
	d, a, y = d[:n], a[:n], y[:n]
	var sum float64
	switch loss {
	case MSE:
		scale := T(2 / float64(n))
		for i, v := range a {
			e := v - y[i]
			if w != nil {
				rw := w[i/cols]
				sum += float64(rw) * float64(e) * float64(e)
				d[i] = scale * rw * e
				continue
			}
			sum += float64(e) * float64(e)
			d[i] = scale * e
		}
		activationGrad(d, a, rows, cols, act, slope)
		return sum / float64(n)
	case BinaryCrossEntropy:
		scale := T(1 / float64(n))
		for i, v := range a {
			t := y[i]
			l := bceTerm(float64(t), float64(v))
			if w != nil {
				rw := w[i/cols]
				sum += float64(rw) * l
				d[i] = scale * rw * (v - t)
				continue
			}
			sum += l
			d[i] = scale * (v - t)
		}
		return sum / float64(n)
	case CrossEntropy:
		scale := T(1 / float64(rows))
		for i, v := range a {
			t := y[i]
			rw := T(1)
			if w != nil {
				rw = w[i/cols]
			}
			if t != 0 {
				sum -= float64(rw) * float64(t) * clippedLog(float64(v))
			}
			d[i] = scale * rw * (v - t)
		}
		return sum / float64(rows)
	}
	panic("engine: unknown loss " + string(loss))
}

// bceTerm is binary cross-entropy's -[t log a + (1-t) log(1-a)].
func bceTerm(t, a float64) float64 {
	return -(t*clippedLog(a) + (1-t)*clippedLog(1-a))
}

// lossOnly is lossGrad without the gradient, for evaluation.
func lossOnly[T float](a, y, w []T, rows, cols int, loss Loss) float64 {
	n := rows * cols
	a, y = a[:n], y[:n]
	rw := func(i int) float64 {
		if w == nil {
			return 1
		}
		return float64(w[i/cols])
	}
	var sum float64
	switch loss {
	case MSE:
		for i, v := range a {
			e := v - y[i]
			sum += rw(i) * float64(e) * float64(e)
		}
		return sum / float64(n)
	case BinaryCrossEntropy:
		for i, v := range a {
			t := float64(y[i])
			sum -= rw(i) * (t*clippedLog(float64(v)) + (1-t)*clippedLog(1-float64(v)))
		}
		return sum / float64(n)
	case CrossEntropy:
		for i, v := range a {
			if t := y[i]; t != 0 {
				sum -= rw(i) * float64(t) * clippedLog(float64(v))
			}
		}
		return sum / float64(rows)
	}
	panic("engine: unknown loss " + string(loss))
}

// countCorrect counts correct predictions of a classifier's rows×cols
// outputs a against targets y: for one softmax row, whether the argmax
// matches the one-hot target; for sigmoid outputs, whether each output is on
// the same side of 0.5 as its 0/1 target (so multi-label accuracy is the
// mean over labels). It returns the count and how many predictions it
// judged.
func countCorrect[T float](a, y []T, rows, cols int, act Activation) (correct, total int) {
	n := rows * cols
	a, y = a[:n], y[:n]
	if act == Softmax {
		for r := 0; r < n; r += cols {
			if argmax(a[r:r+cols]) == argmax(y[r:r+cols]) {
				correct++
			}
		}
		return correct, rows
	}
	for i, v := range a {
		if (v >= 0.5) == (y[i] >= 0.5) {
			correct++
		}
	}
	return correct, n
}

// argmax returns the index of the largest value, the first on ties.
func argmax[T float](v []T) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
