package bpdclient

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

// TestPredictBody checks the hand-built predict body against
// encoding/json's reading of it: the same rows, bit for bit.
func TestPredictBody(t *testing.T) {
	x := []float64{0, 255, 1.5, -2, 1e-300, math.MaxFloat64, 0.1, 7}
	for _, tc := range []struct {
		name               string
		features, from, to int
	}{
		{"one row", 4, 0, 1},
		{"second row", 4, 1, 2},
		{"two rows", 4, 0, 2},
		{"rows of one", 1, 2, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got struct{ Inputs [][]float64 }
			if err := json.Unmarshal(PredictBody(x, tc.features, tc.from, tc.to), &got); err != nil {
				t.Fatal(err)
			}
			var want [][]float64
			for i := tc.from; i < tc.to; i++ {
				want = append(want, x[i*tc.features:(i+1)*tc.features])
			}
			if !reflect.DeepEqual(got.Inputs, want) {
				t.Errorf("got %v, want %v", got.Inputs, want)
			}
		})
	}
}
