package ingest

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"math/bits"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// The parallel path of ReadCSV. Most uploads are plain tables of numbers:
// no quotes but around a label, every feature a number or missing, every
// row complete. Their data rows are read in blocks of whole lines, and
// the blocks are parsed on every core at once into blocks of numbers,
// which ReadCSV takes in file order. A block parser that meets anything
// else (a quote that may span lines, a cell that is neither a number nor
// missing, a row of the wrong length) stops at that line, and ReadCSV
// reads the rest of the file, from that line on, with encoding/csv as the
// serial path always did: so every problem, and the switch to typed
// columns, is found by the same code at the same place, and the result
// is the same byte for byte.

// csvChunkSize is the size of the blocks of text the parallel path reads;
// tests make it tiny, to put block boundaries everywhere.
var csvChunkSize = 1 << 20

// csvParallel turns the parallel path on; tests turn it off to compare.
var csvParallel = true

// plainSpec is what a block parser needs to know of the table.
type plainSpec struct {
	delim    byte
	fields   int
	isTarget []bool // by field
	features int
	targets  int
	na       map[string]bool
	abort    *atomic.Bool // set once ReadCSV stops taking blocks
}

// chunk is one block of whole lines and what its parser made of it.
type chunk struct {
	buf   []byte
	line0 int // the line, 1-based, of buf's first line
	lines int // the lines in buf, and so the most rows it may hold
	done  chan struct{}

	// x holds rows × features numbers, row-major.
	x    []float64
	rows int
	// rowLine is each kept row's line, relative to line0.
	rowLine []int32
	// spans are each kept row's target cells, as start and end offsets
	// into buf.
	spans []int32
	// dropped counts the rows left out for a missing target; missing[j]
	// the rows whose target j is missing.
	dropped int
	missing []int
	scratch []int
	// nan says a row holds a missing feature cell (NaN in x); it may be
	// set by a row that is then dropped.
	nan bool
	// stop says the parser stopped at the line at offset stopOff of buf,
	// stopLine lines after line0: that line and all after it are for the
	// serial path.
	stop     bool
	stopOff  int
	stopLine int
}

// parse parses c.buf, whose lines are whole: every one ends in a newline
// but, at the end of the file, the last.
func (s *plainSpec) parse(c *chunk) {
	defer close(c.done)
	b := c.buf
	quote := bytes.IndexByte(b, '"')
	if quote < 0 {
		quote = len(b)
	}
	upper := c.lines
	c.x = make([]float64, upper*s.features)
	c.rowLine = make([]int32, 0, upper)
	c.spans = make([]int32, 0, 2*upper*s.targets)
	c.missing = make([]int, s.targets)
	pos, line := 0, 0
	for pos < len(b) {
		end := bytes.IndexByte(b[pos:], '\n')
		next := len(b)
		if end < 0 {
			end = len(b)
		} else {
			end += pos
			next = end + 1
		}
		if line&63 == 0 && s.abort.Load() {
			c.stop, c.stopOff, c.stopLine = true, pos, line
			return
		}
		quoted := quote < next
		if quoted && quote < pos {
			if quote = bytes.IndexByte(b[pos:], '"'); quote < 0 {
				quote = len(b)
			} else {
				quote += pos
			}
			quoted = quote < next
		}
		l := b[pos:end]
		// encoding/csv drops the \r of a \r\n, and of a last line's \r.
		if n := len(l); n > 0 && l[n-1] == '\r' {
			l = l[:n-1]
		}
		if len(l) > 0 {
			switch s.row(c, l, int32(pos), line, quoted) {
			case rowStop:
				c.stop, c.stopOff, c.stopLine = true, pos, line
				return
			case rowDropped:
				c.dropped++
			}
		}
		pos = next
		line++
	}
}

// Outcomes of plainSpec.row.
const (
	rowKept = iota
	rowDropped
	rowStop
)

// row parses line l (without its newline) at offset off of c.buf and
// relative line line, as ReadCSV's row function would: a row of the wrong
// length, or a kept row with a feature that is not a number, stops it; a
// row with a missing target is dropped (its features may be anything, as
// the serial path never reads them).
//
// A line that holds a double quote (quoted says so) may have quoted
// fields of the simplest kind, "text" with no quote inside and the
// delimiter or the end of the line right after it, as R's write.csv
// writes every text cell; any other quote stops it (a doubled quote, a
// quote inside a field, a field that goes on past the line), and so
// does a field that may span lines, as it does not end on its line.
func (s *plainSpec) row(c *chunk, l []byte, off int32, line int, quoted bool) int {
	out := c.x[c.rows*s.features : (c.rows+1)*s.features]
	spans := len(c.spans)
	miss := c.scratch[:0]
	n := len(l)
	f, j, k, p := 0, 0, 0, 0
	bad := false
	for {
		var e int
		if quoted && p < n && l[p] == '"' {
			// The text is l[p+1:e-1], within the quotes.
			i := bytes.IndexByte(l[p+1:], '"')
			if i < 0 {
				return s.unrow(c, spans, miss)
			}
			e = p + 1 + i + 1
			if e < n && l[e] != s.delim {
				return s.unrow(c, spans, miss)
			}
			text := l[p+1 : e-1]
			if s.isTarget[f] {
				if cell := bytes.TrimSpace(text); len(cell) == 0 || s.na[string(cell)] {
					miss = append(miss, j)
				}
				c.spans = append(c.spans, off+int32(p+1), off+int32(e-1))
				j++
			} else {
				v, err := parseNumber(unsafe.String(unsafe.SliceData(text), len(text)))
				if err != nil && s.missingCell(c, text) {
					v, err = math.NaN(), nil
				}
				out[k] = v
				bad = bad || err != nil
				k++
			}
		} else if s.isTarget[f] {
			e = p + fieldEnd(l[p:], s.delim)
			if quoted && bytes.IndexByte(l[p:e], '"') >= 0 {
				return s.unrow(c, spans, miss)
			}
			if cell := bytes.TrimSpace(l[p:e]); len(cell) == 0 || s.na[string(cell)] {
				miss = append(miss, j)
			}
			c.spans = append(c.spans, off+int32(p), off+int32(e))
			j++
		} else {
			// Unsigned integers of up to 15 digits, pixels and counts,
			// are read here, without a call: eight bytes at a time when
			// the line has them, else digit by digit.
			var m uint64
			q := p
			if p+8 <= n {
				var d int
				if m, d = leadingDigits(binary.LittleEndian.Uint64(l[p:])); d > 0 && d < 8 && l[p+d] == s.delim {
					q = p + d
				} else {
					m = 0
				}
			}
			if q == p {
				for q < n && q-p < 15 && l[q]-'0' <= 9 {
					m = m*10 + uint64(l[q]-'0')
					q++
				}
			}
			if q > p && (q == n || l[q] == s.delim) {
				out[k], e = float64(m), q
			} else {
				var ok bool
				out[k], e, ok = parseCell(l, p, s.delim)
				if !ok {
					if quoted && bytes.IndexByte(l[p:e], '"') >= 0 {
						return s.unrow(c, spans, miss)
					}
					if s.missingCell(c, l[p:e]) {
						out[k], ok = math.NaN(), true
					}
				}
				bad = bad || !ok
			}
			k++
		}
		f++
		if e >= n {
			break
		}
		p = e + 1
		if f == s.fields {
			f++ // more fields than the header: the serial path says so
			break
		}
	}
	c.scratch = miss
	switch {
	case f != s.fields:
		c.spans = c.spans[:spans]
		return rowStop
	case len(miss) > 0:
		for _, j := range miss {
			c.missing[j]++
		}
		c.spans = c.spans[:spans]
		return rowDropped
	case bad:
		c.spans = c.spans[:spans]
		return rowStop
	}
	c.rowLine = append(c.rowLine, int32(line))
	c.rows++
	return rowKept
}

// missingCell reports whether a feature cell that is not a number is
// missing (empty, or a missing token), and notes in c that a row held
// one. Such a cell is NaN in c.x, which no number there can be
// (parseNumber refuses NaN): ReadCSV turns the features typed.
func (s *plainSpec) missingCell(c *chunk, cell []byte) bool {
	cell = bytes.TrimSpace(cell)
	if len(cell) == 0 || s.na[string(cell)] {
		c.nan = true
		return true
	}
	return false
}

// unrow undoes what row took of a row it stops at.
func (s *plainSpec) unrow(c *chunk, spans int, miss []int) int {
	c.scratch = miss
	c.spans = c.spans[:spans]
	return rowStop
}

// leadingDigits reads the decimal digits that start w, eight bytes of
// text in little-endian order (the first byte lowest), and returns their
// value and how many there are, 0 to 8; the value is only for 1 to 7.
//
// A byte c is a digit when it is neither at least 0x80, nor, below that,
// under '0' or over '9'; the three tests run on all eight bytes at once,
// with no carry from one byte into the next ((c&0x7F)+0x46 <= 0xC5,
// (c|0x80)-0x30 >= 0x50). The digits, moved to the high bytes so that the
// low ones are leading zeros, are combined two, four, then eight at a
// time by multiplication (as in simdjson's parse_eight_digits_unrolled).
func leadingDigits(w uint64) (uint64, int) {
	const hi = 0x8080808080808080
	nondigit := (((w & 0x7F7F7F7F7F7F7F7F) + 0x4646464646464646) | w | ^((w | hi) - 0x3030303030303030)) & hi
	k := bits.TrailingZeros64(nondigit) >> 3
	if k == 0 || k == 8 {
		return 0, k
	}
	d := (w - 0x3030303030303030) << (64 - 8*k)
	d = (d & 0x0F0F0F0F0F0F0F0F) * 2561 >> 8
	d = (d & 0x00FF00FF00FF00FF) * 6553601 >> 16
	return (d & 0x0000FFFF0000FFFF) * 42949672960001 >> 32, k
}

// fieldEnd is the length of the field that b starts with.
func fieldEnd(b []byte, delim byte) int {
	if i := bytes.IndexByte(b, delim); i >= 0 {
		return i
	}
	return len(b)
}

// parseCell parses the feature field of l that starts at p as
// parseNumber would, and returns the offset where the field ends.
//
// Plain decimals of up to 15 digits ("-12", "0.125", "3.") are read
// here: the digits make an integer m below 2^53 and the point a power of
// ten 10^k with k <= 15, both exact in float64, so that m / 10^k, one
// correctly rounded division, is the correctly rounded value of the text,
// which is what strconv.ParseFloat returns (Clinger's fast path; strconv
// takes it too). Anything else goes to parseNumber.
func parseCell(l []byte, p int, delim byte) (float64, int, bool) {
	n := len(l)
	q := p
	neg := q < n && l[q] == '-'
	if neg {
		q++
	}
	var m uint64
	digits, frac := 0, -1
	for ; q < n; q++ {
		c := l[q]
		if d := c - '0'; d <= 9 {
			m = m*10 + uint64(d)
			digits++
			if frac >= 0 {
				frac++
			}
			continue
		}
		if c == '.' && frac < 0 {
			frac = 0
			continue
		}
		break
	}
	if digits > 0 && digits <= 15 && (q == n || l[q] == delim) {
		v := float64(m)
		if frac > 0 {
			v /= pow10[frac]
		}
		if neg {
			v = -v
		}
		return v, q, true
	}
	e := p + fieldEnd(l[p:], delim)
	v, err := parseNumber(unsafe.String(unsafe.SliceData(l[p:e]), e-p))
	return v, e, err == nil
}

// pow10 are the powers of ten parseCell divides by, exact in float64.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// chunker cuts what r gives into blocks of whole lines.
type chunker struct {
	r     io.Reader
	carry []byte // the start of a line not yet in a block
	line  int    // the line of the next block's first line
	eof   bool
	err   error // r's error other than io.EOF, once it has failed
	free  [][]byte
	size  int  // the last block's size
	over  bool // a line was too long for a block: the rest is serial
}

// csvMaxLineBlock bounds the block a long line grows: offsets into a
// block are int32, and a line of a gigabyte is no table's. Tests make it
// tiny.
var csvMaxLineBlock = 1 << 30

// next reads the next block: whole lines, the last of which ends in a
// newline unless the file ends there. It returns nil when r has given all
// it has; what r gave after its last full line before an error is left
// in k.carry, for the serial path to read on to the error.
func (k *chunker) next() *chunk {
	if k.over {
		return nil
	}
	// Blocks start small, so that a small upload costs little, and
	// double up to csvChunkSize.
	k.size = min(max(2*k.size, 64<<10), csvChunkSize)
	size := max(k.size, 2*len(k.carry))
	var buf []byte
	if n := len(k.free); n > 0 && cap(k.free[n-1]) >= size {
		buf, k.free = k.free[n-1][:size], k.free[:n-1]
	} else {
		buf = make([]byte, size)
	}
	n := copy(buf, k.carry)
	k.carry = nil
	for {
		if !k.eof && n < len(buf) {
			m, err := io.ReadFull(k.r, buf[n:])
			n += m
			switch err {
			case nil:
			case io.EOF, io.ErrUnexpectedEOF:
				k.eof = true
			default:
				k.eof, k.err = true, err
			}
		}
		data := buf[:n]
		if k.eof && k.err == nil {
			if n == 0 {
				return nil
			}
			return k.emit(data)
		}
		i := bytes.LastIndexByte(data, '\n')
		if i >= 0 {
			k.carry = append([]byte(nil), data[i+1:]...)
			return k.emit(data[:i+1])
		}
		if k.eof {
			k.carry = append([]byte(nil), data...)
			return nil
		}
		if len(buf) >= csvMaxLineBlock {
			// A line this long is the serial path's, as is all after it.
			k.carry, k.over = append([]byte(nil), data...), true
			return nil
		}
		// A line longer than the block: read on into a larger one.
		grown := make([]byte, 2*len(buf))
		copy(grown, data)
		buf = grown
	}
}

func (k *chunker) emit(data []byte) *chunk {
	c := &chunk{buf: data, line0: k.line, done: make(chan struct{})}
	n := bytes.Count(data, []byte{'\n'})
	k.line += n
	if data[len(data)-1] != '\n' {
		n++
	}
	c.lines = n
	return c
}

// rest reads what r has given or will give after the blocks: the carry,
// then r's error or the rest of r.
func (k *chunker) rest() io.Reader {
	carry := bytes.NewReader(k.carry)
	switch {
	case k.err != nil:
		return io.MultiReader(carry, failedReader{k.err})
	case k.eof:
		return carry
	}
	return io.MultiReader(carry, k.r)
}

// recycle gives back the text of a block that has been taken.
func (k *chunker) recycle(c *chunk) {
	if cap(c.buf) == csvChunkSize && len(k.free) < 4 {
		k.free = append(k.free, c.buf[:0])
	}
	c.buf = nil
}

// inFlight is how many blocks are read ahead of the one ReadCSV takes:
// enough to keep every core parsing while it takes them.
func inFlight() int { return 2*runtime.GOMAXPROCS(0) + 1 }

// failedReader is a reader that has failed.
type failedReader struct{ err error }

func (r failedReader) Read([]byte) (int, error) { return 0, r.err }
