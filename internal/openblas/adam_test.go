//go:build openblas && cgo

package openblas

import (
	"math"
	"math/rand/v2"
	"testing"
)

// adamGo is the engine's Adam loop (internal/engine/optimizer.go), the
// oracle for Adam.
func adamGo(p, g, m, v []float64, b1, b2, l2, step, c2, eps float64) {
	for i, gi := range g[:len(p)] {
		gi += l2 * p[i]
		m[i] = b1*m[i] + (1-b1)*gi
		v[i] = b2*v[i] + (1-b2)*gi*gi
		p[i] -= step * m[i] / (math.Sqrt(v[i])/c2 + eps)
	}
}

func TestAdamMatchesGoLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tests := []struct {
		name string
		n    int
		l2   float64
	}{
		{"empty", 0, 0},
		{"shorter than a vector", 3, 0},
		{"vector plus tail", 11, 0},
		{"a layer of the benchmark network", 784 * 256, 0},
		{"with weight decay", 1001, 1e-3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := randSlice(rng, tt.n)
			m := make([]float64, tt.n)
			v := make([]float64, tt.n)
			wantP, wantM, wantV := append([]float64(nil), p...), append([]float64(nil), m...), append([]float64(nil), v...)
			for step := 1; step <= 3; step++ {
				g := randSlice(rng, tt.n)
				c1 := 1 - math.Pow(0.9, float64(step))
				c2 := math.Sqrt(1 - math.Pow(0.999, float64(step)))
				Adam(p, g, m, v, 0.9, 0.999, tt.l2, 1e-3/c1, c2, 1e-8)
				adamGo(wantP, g, wantM, wantV, 0.9, 0.999, tt.l2, 1e-3/c1, c2, 1e-8)
			}
			// Same operations in the same order, each correctly rounded:
			// the results must agree bit for bit.
			for i := range p {
				if p[i] != wantP[i] || m[i] != wantM[i] || v[i] != wantV[i] {
					t.Fatalf("element %d: p, m, v = %v, %v, %v; Go loop gives %v, %v, %v",
						i, p[i], m[i], v[i], wantP[i], wantM[i], wantV[i])
				}
			}
		})
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
// network, once with this kernel and once with the Go loop.
func BenchmarkAdam(b *testing.B) {
	const n = 235146
	rng := rand.New(rand.NewPCG(7, 8))
	p, g := randSlice(rng, n), randSlice(rng, n)
	for _, k := range []struct {
		name string
		f    func(p, g, m, v []float64, b1, b2, l2, step, c2, eps float64)
	}{{"cgo_avx", Adam}, {"go", adamGo}} {
		b.Run(k.name, func(b *testing.B) {
			m, v := make([]float64, n), make([]float64, n)
			for b.Loop() {
				k.f(p, g, m, v, 0.9, 0.999, 0, 1e-3, 0.5, 1e-8)
			}
		})
	}
}
