package allocbound

import (
	"fmt"
	"strings"
	"testing"
)

var sink []byte

// recorder is a testing.TB that records Fatalf instead of stopping.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func allocate(n int) func() { return func() { sink = make([]byte, n) } }

// TestMeasure allocates 1 MiB, a large object, which both counters count
// when it is allocated; the slack of 8 KiB is the span granularity of the
// fast counter for whatever small objects the runtime allocates meanwhile.
func TestMeasure(t *testing.T) {
	const n = 1 << 20
	for _, tc := range []struct {
		name    string
		measure func(func()) uint64
	}{
		{"exact", Exact},
		{"fast", Fast},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.measure(allocate(n)); got < n || got > n+8<<10 {
				t.Errorf("%s counted %d bytes for a %d-byte slice", tc.name, got, n)
			}
		})
	}
}

// TestCheck holds Check to the bound: 64 KiB allocated passes a bound of
// 1 MiB and one of 1 KiB per byte for 64 input bytes, and fails a bound
// of 1 KiB, stating the bytes allocated and the bound.
func TestCheck(t *testing.T) {
	const alloc = 64 << 10
	for _, tc := range []struct {
		name string
		n    int
		b    Bound
		fail bool
	}{
		{"fixed room", 0, Bound{Fixed: 1 << 20}, false},
		{"room per byte", 64, Bound{PerByte: 1 << 10}, false},
		{"over", 0, Bound{Fixed: 1 << 10}, true},
		{"over per byte", 63, Bound{PerByte: 1 << 10}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			runs := 0
			Check(r, "slice", tc.n, tc.b, func() { runs++; sink = make([]byte, alloc) })
			if (r.failed != "") != tc.fail {
				t.Fatalf("Check failed = %q, want failure %v", r.failed, tc.fail)
			}
			if tc.fail {
				if want := fmt.Sprintf("allocated %d bytes, more than %d", alloc, tc.b.For(tc.n)); !strings.Contains(r.failed, want) {
					t.Errorf("message %q does not say %q", r.failed, want)
				}
				if runs != 1+confirmations {
					t.Errorf("decode ran %d times before failing, want %d", runs, 1+confirmations)
				}
			} else if runs != 1 {
				t.Errorf("decode ran %d times within the bound, want 1", runs)
			}
		})
	}
}
