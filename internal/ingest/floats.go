package ingest

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMemory is wrapped by the error a parse returns when its Reserve
// callback refuses the memory for more numbers.
var ErrMemory = errors.New("no memory for the dataset")

// meterStep is how many bytes a parse asks its Reserve callback for at a
// time: large enough that a 1 GB upload asks about a thousand times, small
// enough that a refusal comes within a megabyte of the limit.
const meterStep = 1 << 20

// meter counts the bytes a parse holds for its numbers and asks reserve
// for them in steps of meterStep as they are taken, so that what a parse
// reserves follows what has arrived, never what the client announced.
type meter struct {
	reserve func(n int64) error // nil reserves nothing
	granted int64
	used    int64
}

// take accounts for n more bytes, asking reserve when they go past what it
// granted. Its error wraps ErrMemory and the callback's error; the bytes
// refused are not accounted.
func (m *meter) take(n int64) error {
	m.used += n
	if m.reserve == nil || m.used <= m.granted {
		return nil
	}
	step := max(int64(meterStep), m.used-m.granted)
	if err := m.reserve(step); err != nil {
		m.used -= n
		return fmt.Errorf("%w: %d bytes held, %d more refused: %w", ErrMemory, m.granted, step, err)
	}
	m.granted += step
	return nil
}

// Chunk sizes of floats, in values: they start small so that a tiny
// upload allocates little, and stop doubling at a size whose allocation
// is cheap to make often.
const (
	minChunk = 256
	maxChunk = 64 << 10 // 512 KiB
)

// floats collects float64 values in chunks that are never copied while
// the values arrive: growing costs one new chunk, not a copy of all that
// came before, so the buffer is at most one chunk larger than its values.
// flat then copies them once into a slice of the exact length.
type floats struct {
	chunks [][]float64
	n      int
	m      *meter
}

// add appends v, taking a new chunk (accounted to the meter) when the last
// one is full.
func (f *floats) add(v float64) error {
	if k := len(f.chunks); k == 0 || len(f.chunks[k-1]) == cap(f.chunks[k-1]) {
		size := minChunk
		if k > 0 {
			size = min(2*cap(f.chunks[k-1]), maxChunk)
		}
		if err := f.m.take(8 * int64(size)); err != nil {
			return err
		}
		f.chunks = append(f.chunks, make([]float64, 0, size))
		k++
	}
	last := &f.chunks[len(f.chunks)-1]
	*last = append(*last, v)
	f.n++
	return nil
}

// len is the number of values added.
func (f *floats) len() int { return f.n }

// flat returns the values in one slice of exactly their length, accounted
// to the meter, and drops the chunks so that the collector can take them.
func (f *floats) flat() ([]float64, error) {
	if err := f.m.take(8 * int64(f.n)); err != nil {
		return nil, err
	}
	out := make([]float64, 0, f.n)
	for i, c := range f.chunks {
		out = append(out, c...)
		f.chunks[i] = nil
	}
	f.chunks = nil
	return out, nil
}

// parts returns the values as the chunks that hold them, in order, with
// no empty one, and drops them from f.
func (f *floats) parts() [][]float64 {
	out := make([][]float64, 0, len(f.chunks))
	for _, c := range f.chunks {
		if len(c) > 0 {
			out = append(out, c)
		}
	}
	f.chunks, f.n = nil, 0
	return out
}

// interner shares the text of repeated target cells (class labels), so
// that a million rows of ten classes hold ten strings, not a million. It
// stops adding new strings at MaxClasses+1 distinct ones: past that the
// column is not labels, and the map would only grow.
type interner map[string]string

// intern returns s, or the earlier string equal to it; s may be a view of
// a reused buffer (it is copied when kept).
func (in interner) intern(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	c := strings.Clone(s)
	if len(in) <= MaxClasses {
		in[c] = c
	}
	return c
}

// internBytes is intern for the text in b, which it does not keep.
func (in interner) internBytes(b []byte) string {
	if v, ok := in[string(b)]; ok {
		return v
	}
	c := string(b)
	if len(in) <= MaxClasses {
		in[c] = c
	}
	return c
}
