// Package allocbound holds the decoders that fuzz targets exercise to an
// allocation bound per input byte: decoding one input of n bytes may
// allocate at most k × n + c bytes. A decoder that trusts a size from its
// input (a shape of [1e9, 4] wants 32 GB) or grows superlinearly fails
// the bound on a small input, where no memory limit would notice. Tests
// import it; nothing in the server does.
//
// Counting. Both counters the runtime offers are process-wide. A fuzz
// worker is a process of its own that runs one input at a time, so what
// they count is the decode's own as long as no other goroutine allocates
// meanwhile; Check also re-measures before it fails, and keeps the
// smallest reading, so that a stray allocation elsewhere cannot fail it.
// The fast reading is runtime/metrics' /gc/heap/allocs:bytes (about 2 µs,
// no stop of the world). It counts a small object when its span leaves the
// per-P cache, so one reading can be short or long by the spans of the size
// classes in use (8 KiB to 80 KiB each). A reading over the bound is
// therefore confirmed with runtime.ReadMemStats, which stops the world
// (about 20 µs), flushes every cache and is exact. A short reading can let
// one input over the bound pass, by less than those spans; the fuzzer's
// many inputs of each shape do not all fall short.
package allocbound

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

// Bound is the allocation allowed for decoding n input bytes: PerByte × n
// + Fixed.
type Bound struct {
	PerByte, Fixed uint64
}

// For returns the bound for an input of n bytes.
func (b Bound) For(n int) uint64 { return b.PerByte*uint64(n) + b.Fixed }

// confirmations is how many exact measurements Check takes before it
// fails: each must exceed the bound.
const confirmations = 2

// Check runs decode, the decoding of an n-byte input, and fails tb unless
// it allocated at most b.For(n) bytes. decode runs once when the fast
// reading is within the bound; otherwise it runs again for each exact
// measurement, so it must give the same result each time (a pure decoder,
// or a request that changes no state the next run depends on).
func Check(tb testing.TB, what string, n int, b Bound, decode func()) {
	tb.Helper()
	limit := b.For(n)
	if Fast(decode) <= limit {
		return
	}
	least := ^uint64(0)
	for range confirmations {
		least = min(least, Exact(decode))
		if least <= limit {
			return
		}
	}
	tb.Fatalf("%s: decoding %d bytes allocated %d bytes, more than %d (%d per byte + %d)",
		what, n, least, limit, b.PerByte, b.Fixed)
}

const allocsBytes = "/gc/heap/allocs:bytes"

// Fast runs f and returns the heap bytes allocated meanwhile as
// runtime/metrics counts them: cheap, but off by up to a span per size
// class in use (see the package comment).
func Fast(f func()) uint64 {
	s := []metrics.Sample{{Name: allocsBytes}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	f()
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

// Exact runs f and returns the heap bytes allocated meanwhile
// (runtime.MemStats.TotalAlloc), exact but twice a stop of the world.
func Exact(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
