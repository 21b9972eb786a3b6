//go:build openblas && cgo

package main

import (
	"os"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/openblas"
)

// In the OpenBLAS build the server sizes OpenBLAS's process-wide thread
// count from --workers, so that workers × threads never exceed the cores.
func TestServerSizesOpenBLASThreads(t *testing.T) {
	if os.Getenv(openblas.EnvThreads) != "" {
		t.Skipf("%s is set; ThreadsFor would follow it", openblas.EnvThreads)
	}
	openblas.SetThreads(64) // anything the server must overwrite
	m, _, logs := startServer(t, t.TempDir())
	defer m.Close()
	want := openblas.ThreadsFor(2) // startServer passes --workers 2
	if got := openblas.Threads(); got != want {
		t.Errorf("OpenBLAS threads after start = %d, want ThreadsFor(2) = %d", got, want)
	}
	if !strings.Contains(logs.String(), "blas_threads=") {
		t.Errorf("the startup log does not name the BLAS threads:\n%s", logs)
	}
}
