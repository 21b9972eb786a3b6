package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"unsafe"

	"github.com/backpropd/backpropd/internal/table"
)

// Typed feature columns, in a version 2 data file with its typed flag set,
// take the place of X. Column i, named Meta.FeatureNames[i], is
//
//	kind, flags                     2 × uint32 LE: kind 1 number, 2 category,
//	                                3 datetime; flags bit 0 is HasTime
//	number, datetime:  Values       rows × float64 LE, NaN where missing
//	category:          levels, n    2 × uint64 LE: the number of levels and
//	                                the byte length n of the level table
//	                   level table  n bytes: levels × (uint32 LE length, bytes)
//	                   Codes        rows × int32 LE, -1 where missing
const (
	columnHeaderSize = 8
	levelHeaderSize  = 16

	fileNumber   = 1
	fileCategory = 2
	fileDatetime = 3

	flagHasTime = 1
)

// fileKinds maps a column kind to its code in the file.
var fileKinds = map[table.Kind]uint32{table.Number: fileNumber, table.Category: fileCategory, table.Datetime: fileDatetime}

// checkColumns checks d's typed columns against its metadata, for
// CreateDataset: one column per feature, named as the feature names say
// if there are any, each Rows cells of its kind, numbers finite or NaN,
// codes within the level table, levels distinct.
func (d *Dataset) checkColumns() error {
	m := &d.Meta
	if d.X != nil {
		return fmt.Errorf("%w: both X and typed columns are set", ErrInvalidDataset)
	}
	if len(d.Columns) != m.Features {
		return fmt.Errorf("%w: %d typed columns for %d features", ErrInvalidDataset, len(d.Columns), m.Features)
	}
	for i := range d.Columns {
		c := &d.Columns[i]
		if len(m.FeatureNames) != 0 && c.Name != m.FeatureNames[i] {
			return fmt.Errorf("%w: column %d is named %q, the feature names say %q", ErrInvalidDataset, i, c.Name, m.FeatureNames[i])
		}
		if err := checkColumn(c, m.Rows); err != nil {
			return fmt.Errorf("%w: column %q: %v", ErrInvalidDataset, c.Name, err)
		}
	}
	return nil
}

// checkColumn checks one column of rows cells.
func checkColumn(c *table.Column, rows int) error {
	if _, ok := fileKinds[c.Kind]; !ok {
		return fmt.Errorf("kind %q is not a column kind", c.Kind)
	}
	if c.HasTime && c.Kind != table.Datetime {
		return fmt.Errorf("a %s column has no time of day", c.Kind)
	}
	if c.Kind != table.Category {
		if c.Codes != nil || c.Levels != nil || len(c.Values) != rows {
			return fmt.Errorf("a %s column needs %d values and no codes or levels; it has %d values, %d codes, %d levels",
				c.Kind, rows, len(c.Values), len(c.Codes), len(c.Levels))
		}
		for r, v := range c.Values {
			if math.IsInf(v, 0) {
				return fmt.Errorf("row %d is %v; a present cell must be finite", r, v)
			}
		}
		return nil
	}
	if c.Values != nil || len(c.Codes) != rows {
		return fmt.Errorf("a category column needs %d codes and no values; it has %d codes, %d values", rows, len(c.Codes), len(c.Values))
	}
	if len(c.Levels) > math.MaxInt32 {
		return fmt.Errorf("%d levels; codes are int32", len(c.Levels))
	}
	seen := make(map[string]struct{}, len(c.Levels))
	for i, l := range c.Levels {
		if len(l) > math.MaxUint32 {
			return fmt.Errorf("level %d is %d bytes", i, len(l))
		}
		if _, dup := seen[l]; dup {
			return fmt.Errorf("level %q appears twice in the level table", l)
		}
		seen[l] = struct{}{}
	}
	if r, code, ok := badCode(c.Codes, len(c.Levels)); !ok {
		return fmt.Errorf("row %d has code %d; want %d (missing) or a level index below %d", r, code, table.Missing, len(c.Levels))
	}
	return nil
}

// badCode finds the first code that is neither table.Missing nor an index
// into levels levels; ok is true when there is none.
func badCode(codes []int32, levels int) (row int, code int32, ok bool) {
	for r, c := range codes {
		if c < table.Missing || int64(c) >= int64(levels) {
			return r, c, false
		}
	}
	return 0, 0, true
}

// columnsSize is the number of bytes writeColumns writes.
func columnsSize(cols []table.Column) uint64 {
	var n uint64
	for i := range cols {
		c := &cols[i]
		n += columnHeaderSize
		if c.Kind != table.Category {
			n += 8 * uint64(len(c.Values))
			continue
		}
		n += levelHeaderSize + levelTableSize(c.Levels) + 4*uint64(len(c.Codes))
	}
	return n
}

func levelTableSize(levels []string) uint64 {
	var n uint64
	for _, l := range levels {
		n += 4 + uint64(len(l))
	}
	return n
}

// writeColumns writes cols, checked by checkColumns, in the layout above.
func writeColumns(w io.Writer, cols []table.Column) error {
	for i := range cols {
		c := &cols[i]
		var h [columnHeaderSize]byte
		binary.LittleEndian.PutUint32(h[0:], fileKinds[c.Kind])
		if c.HasTime {
			binary.LittleEndian.PutUint32(h[4:], flagHasTime)
		}
		if _, err := w.Write(h[:]); err != nil {
			return err
		}
		if c.Kind != table.Category {
			if err := writeFloats(w, c.Values); err != nil {
				return err
			}
			continue
		}
		var lh [levelHeaderSize]byte
		binary.LittleEndian.PutUint64(lh[0:], uint64(len(c.Levels)))
		binary.LittleEndian.PutUint64(lh[8:], levelTableSize(c.Levels))
		if _, err := w.Write(lh[:]); err != nil {
			return err
		}
		if err := writeStrings(w, c.Levels); err != nil {
			return err
		}
		if err := writeInt32s(w, c.Codes); err != nil {
			return err
		}
	}
	return nil
}

// writeStrings writes each of ss as a uint32 LE length and its bytes.
func writeStrings(w io.Writer, ss []string) error {
	var lb [4]byte
	for _, s := range ss {
		binary.LittleEndian.PutUint32(lb[:], uint32(len(s)))
		if _, err := w.Write(lb[:]); err != nil {
			return err
		}
		if _, err := io.WriteString(w, s); err != nil {
			return err
		}
	}
	return nil
}

// payload reads a data file's payload and counts what is left of it, so
// that every size in the file is checked against the bytes that remain
// before anything of that size is allocated.
type payload struct {
	r    io.Reader
	left uint64
	rel  string
}

// short is the error of a read that ended early.
func (p *payload) short(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt(p.rel, "truncated while reading")
	}
	return readErr(p.rel, err)
}

// need checks that count items of size bytes each remain.
func (p *payload) need(what string, count, size uint64) error {
	if size != 0 && count > p.left/size {
		return corrupt(p.rel, "%s: %d × %d bytes do not fit the %d bytes left of the payload", what, count, size, p.left)
	}
	return nil
}

func (p *payload) bytes(b []byte) error {
	if err := p.need("header", uint64(len(b)), 1); err != nil {
		return err
	}
	if _, err := io.ReadFull(p.r, b); err != nil {
		return p.short(err)
	}
	p.left -= uint64(len(b))
	return nil
}

func (p *payload) floats(what string, n uint64) ([]float64, error) {
	if err := p.need(what, n, 8); err != nil {
		return nil, err
	}
	x := make([]float64, n)
	if err := readFloats(p.r, x); err != nil {
		return nil, p.short(err)
	}
	p.left -= 8 * n
	return x, nil
}

// readColumns reads feats typed columns of rows cells each, named by names.
func (p *payload) readColumns(rows, feats uint64, names []string) ([]table.Column, error) {
	if uint64(len(names)) != feats {
		return nil, corrupt(p.rel, "typed columns need a name each: %d features, %d names in the metadata", feats, len(names))
	}
	if err := p.need("columns", feats, columnHeaderSize); err != nil {
		return nil, err
	}
	cols := make([]table.Column, feats)
	for i := range cols {
		c := &cols[i]
		c.Name = names[i]
		var h [columnHeaderSize]byte
		if err := p.bytes(h[:]); err != nil {
			return nil, err
		}
		code, flags := binary.LittleEndian.Uint32(h[0:]), binary.LittleEndian.Uint32(h[4:])
		switch code {
		case fileNumber:
			c.Kind = table.Number
		case fileCategory:
			c.Kind = table.Category
		case fileDatetime:
			c.Kind = table.Datetime
		default:
			return nil, corrupt(p.rel, "column %d: kind %d is not a column kind", i, code)
		}
		switch {
		case flags == flagHasTime && c.Kind == table.Datetime:
			c.HasTime = true
		case flags != 0:
			return nil, corrupt(p.rel, "column %d: flags %#x are not valid for a %s column", i, flags, c.Kind)
		}
		what := fmt.Sprintf("column %d", i)
		if c.Kind != table.Category {
			v, err := p.floats(what, rows)
			if err != nil {
				return nil, err
			}
			c.Values = v
			continue
		}
		var lh [levelHeaderSize]byte
		if err := p.bytes(lh[:]); err != nil {
			return nil, err
		}
		levels, size := binary.LittleEndian.Uint64(lh[0:]), binary.LittleEndian.Uint64(lh[8:])
		if err := p.need(what+" level table", size, 1); err != nil {
			return nil, err
		}
		if levels > size/4 || levels > math.MaxInt32 {
			return nil, corrupt(p.rel, "%s: %d levels do not fit a level table of %d bytes", what, levels, size)
		}
		blob := make([]byte, size)
		if _, err := io.ReadFull(p.r, blob); err != nil {
			return nil, p.short(err)
		}
		p.left -= size
		var err error
		if c.Levels, err = splitStrings(blob, int(levels), "level"); err != nil {
			return nil, corrupt(p.rel, "%s: %v", what, err)
		}
		if err := p.need(what+" codes", rows, 4); err != nil {
			return nil, err
		}
		c.Codes = make([]int32, rows)
		if err := readInt32s(p.r, c.Codes); err != nil {
			return nil, p.short(err)
		}
		p.left -= 4 * rows
		if r, code, ok := badCode(c.Codes, len(c.Levels)); !ok {
			return nil, corrupt(p.rel, "%s, row %d: code %d is outside its %d levels", what, r, code, len(c.Levels))
		}
	}
	return cols, nil
}

// writeInt32s writes x little-endian, as writeFloats does floats.
func writeInt32s(w io.Writer, x []int32) error {
	if len(x) == 0 {
		return nil
	}
	if littleEndian {
		_, err := w.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(x))), 4*len(x)))
		return err
	}
	var buf [4096]byte
	for len(x) > 0 {
		k := min(len(x), len(buf)/4)
		for i, v := range x[:k] {
			binary.LittleEndian.PutUint32(buf[4*i:], uint32(v))
		}
		if _, err := w.Write(buf[:4*k]); err != nil {
			return err
		}
		x = x[k:]
	}
	return nil
}

// readInt32s fills dst from r, as readFloats does floats.
func readInt32s(r io.Reader, dst []int32) error {
	if len(dst) == 0 {
		return nil
	}
	if littleEndian {
		_, err := io.ReadFull(r, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 4*len(dst)))
		return err
	}
	var buf [4096]byte
	for len(dst) > 0 {
		k := min(len(dst), len(buf)/4)
		if _, err := io.ReadFull(r, buf[:4*k]); err != nil {
			return err
		}
		for i := range dst[:k] {
			dst[i] = int32(binary.LittleEndian.Uint32(buf[4*i:]))
		}
		dst = dst[k:]
	}
	return nil
}
