//go:build !(openblas && cgo)

package openblas

import (
	"testing"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

func TestDefaultBuildKeepsGonum(t *testing.T) {
	Use()
	if Enabled {
		t.Fatal("Enabled is true without the openblas tag")
	}
	if _, ok := blas64.Implementation().(gonum.Implementation); !ok {
		t.Errorf("blas64 implementation is %T, want gonum.Implementation", blas64.Implementation())
	}
	if _, ok := blas32.Implementation().(gonum.Implementation); !ok {
		t.Errorf("blas32 implementation is %T, want gonum.Implementation", blas32.Implementation())
	}
	if got := SetThreads(2); got != 0 {
		t.Errorf("SetThreads(2) = %d without OpenBLAS, want 0", got)
	}
	if got, want := CoreName(), "gonum"; got != want {
		t.Errorf("CoreName() = %q without OpenBLAS, want %q", got, want)
	}
}
