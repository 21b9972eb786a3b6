//go:build openblas && cgo

package openblas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// adamGo is the plain Go loop of Adam's update that the engine's default
// build runs through kernels.Adam (internal/kernels/adam.go), the oracle for
// Adam.
func adamGo(p, g, m, v []float64, b1, b2, l2, step, c2, eps float64) {
	for i, gi := range g[:len(p)] {
		gi += l2 * p[i]
		m[i] = b1*m[i] + (1-b1)*gi
		v[i] = b2*v[i] + (1-b2)*gi*gi
		p[i] -= step * m[i] / (math.Sqrt(v[i])/c2 + eps)
	}
}

func TestAdamMatchesGoLoop(t *testing.T) {
	tests := []struct {
		name string
		n    int
		l2   float64
	}{
		{"empty", 0, 0},
		{"shorter than a vector", 3, 0},
		{"vectors plus tail", 19, 0},
		{"a layer of the benchmark network", 784 * 256, 0},
		{"with weight decay", 1001, 1e-3},
	}
	for _, width := range []int{8, 4, 1} {
		if width > adamWidth {
			t.Logf("width %d: this CPU lacks it (widest %d)", width, adamWidth)
			continue
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("width=%d/%s", width, tt.name), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(5, uint64(tt.n)))
				p := randSlice(rng, tt.n)
				m := make([]float64, tt.n)
				v := make([]float64, tt.n)
				wantP, wantM, wantV := append([]float64(nil), p...), append([]float64(nil), m...), append([]float64(nil), v...)
				for step := 1; step <= 3; step++ {
					g := randSlice(rng, tt.n)
					c1 := 1 - math.Pow(0.9, float64(step))
					c2 := math.Sqrt(1 - math.Pow(0.999, float64(step)))
					adamWith(width, p, g, m, v, 0.9, 0.999, tt.l2, 1e-3/c1, c2, 1e-8)
					adamGo(wantP, g, wantM, wantV, 0.9, 0.999, tt.l2, 1e-3/c1, c2, 1e-8)
				}
				// Same operations in the same order, each correctly rounded,
				// none fused: the results must agree bit for bit.
				for i := range p {
					if p[i] != wantP[i] || m[i] != wantM[i] || v[i] != wantV[i] {
						t.Fatalf("element %d: p, m, v = %v, %v, %v; Go loop gives %v, %v, %v",
							i, p[i], m[i], v[i], wantP[i], wantM[i], wantV[i])
					}
				}
			})
		}
	}
}

func TestAdamShortInputsPanic(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Adam with a short gradient did not panic")
		}
	}()
	Adam(make([]float64, 4), make([]float64, 3), make([]float64, 4), make([]float64, 4), 0.9, 0.999, 0, 1e-3, 1, 1e-8)
}

// BenchmarkAdam updates the 235,146 parameters of the 784-256-128-10
// network with each kernel width this CPU has, and with the Go loop.
func BenchmarkAdam(b *testing.B) {
	const n = 235146
	rng := rand.New(rand.NewPCG(7, 8))
	p, g := randSlice(rng, n), randSlice(rng, n)
	type kernel struct {
		name string
		f    func(p, g, m, v []float64, b1, b2, l2, step, c2, eps float64)
	}
	kernels := []kernel{{"go", adamGo}}
	for _, w := range []int{1, 4, 8} {
		if w <= adamWidth {
			kernels = append(kernels, kernel{fmt.Sprintf("cgo_width=%d", w), func(p, g, m, v []float64, b1, b2, l2, step, c2, eps float64) {
				adamWith(w, p, g, m, v, b1, b2, l2, step, c2, eps)
			}})
		}
	}
	for _, k := range kernels {
		b.Run(k.name, func(b *testing.B) {
			m, v := make([]float64, n), make([]float64, n)
			for b.Loop() {
				k.f(p, g, m, v, 0.9, 0.999, 0, 1e-3, 0.5, 1e-8)
			}
		})
	}
}
