// Package idx reads arrays in the IDX format of the MNIST and Fashion-MNIST
// distributions: a magic number (two zero bytes, an element-type byte and
// the number of dimensions), one big-endian uint32 size per dimension, then
// the elements in row-major order, big-endian.
//
// The benchmarks use it to load Fashion-MNIST without converting it to CSV
// first. It imports nothing of backpropd.
package idx

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// Type is an IDX element type, the third byte of the magic number.
type Type byte

// Element types defined by the format.
const (
	Uint8   Type = 0x08
	Int8    Type = 0x09
	Int16   Type = 0x0B
	Int32   Type = 0x0C
	Float32 Type = 0x0D
	Float64 Type = 0x0E
)

// Size is the number of bytes of one element, or 0 for an unknown type.
func (t Type) Size() int {
	switch t {
	case Uint8, Int8:
		return 1
	case Int16:
		return 2
	case Int32, Float32:
		return 4
	case Float64:
		return 8
	}
	return 0
}

func (t Type) String() string {
	switch t {
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Int16:
		return "int16"
	case Int32:
		return "int32"
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	}
	return fmt.Sprintf("0x%02x", byte(t))
}

// MaxElements caps the number of elements Read accepts (2^31, 16 GiB of
// float64), so that a header cannot make a reader allocate without bound.
const MaxElements = 1 << 31

// Array is one decoded IDX array. Data holds the elements exactly as stored
// (big-endian), len(Data) = Len() × Type.Size().
type Array struct {
	Type Type
	Dims []int
	Data []byte
}

// Len is the number of elements, the product of Dims.
func (a *Array) Len() int {
	n := 1
	for _, d := range a.Dims {
		n *= d
	}
	return n
}

// At returns element i converted to float64. It panics if i is out of
// range, like a slice index.
func (a *Array) At(i int) float64 {
	switch a.Type {
	case Uint8:
		return float64(a.Data[i])
	case Int8:
		return float64(int8(a.Data[i]))
	case Int16:
		return float64(int16(binary.BigEndian.Uint16(a.Data[2*i:])))
	case Int32:
		return float64(int32(binary.BigEndian.Uint32(a.Data[4*i:])))
	case Float32:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(a.Data[4*i:])))
	case Float64:
		return math.Float64frombits(binary.BigEndian.Uint64(a.Data[8*i:]))
	}
	panic("idx: unknown element type " + a.Type.String())
}

// Float64s writes every element, converted to float64 and multiplied by
// scale, into dst, which must hold Len() values, and returns dst. It returns
// an error, not a panic, when dst has the wrong length.
func (a *Array) Float64s(dst []float64, scale float64) ([]float64, error) {
	if len(dst) != a.Len() {
		return nil, fmt.Errorf("idx: dst holds %d values, array has %d", len(dst), a.Len())
	}
	if a.Type == Uint8 {
		for i, b := range a.Data {
			dst[i] = float64(b) * scale
		}
		return dst, nil
	}
	for i := range dst {
		dst[i] = a.At(i) * scale
	}
	return dst, nil
}

// ReadFile reads one IDX array from path, gunzipping it first when the name
// ends in ".gz" (as Debian's dataset-fashion-mnist ships them).
func ReadFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 1<<16)
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("idx %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	a, err := Read(r)
	if err != nil {
		return nil, fmt.Errorf("idx %s: %w", path, err)
	}
	return a, nil
}

// ErrFormat is wrapped by every error about malformed IDX data.
var ErrFormat = errors.New("malformed IDX data")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// Read decodes one IDX array from r and checks that nothing follows it.
// A header whose sizes exceed MaxElements is rejected before anything is
// allocated, and the element buffer grows only as data actually arrives, so
// a short input with a large header cannot force a large allocation.
func Read(r io.Reader) (*Array, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, formatErr("magic number: %v", err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, formatErr("magic number %x: first two bytes must be zero", magic)
	}
	typ := Type(magic[2])
	if typ.Size() == 0 {
		return nil, formatErr("element type %s: not one of uint8, int8, int16, int32, float32, float64", typ)
	}
	ndims := int(magic[3])
	if ndims == 0 {
		return nil, formatErr("number of dimensions is 0")
	}
	hdr := make([]byte, 4*ndims)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, formatErr("sizes of %d dimensions: %v", ndims, err)
	}
	dims := make([]int, ndims)
	n := 1
	for i := range dims {
		d := int(binary.BigEndian.Uint32(hdr[4*i:]))
		if d > MaxElements || (d > 0 && n > MaxElements/d) {
			return nil, formatErr("dimension %d size %d: more than %d elements in all", i, d, MaxElements)
		}
		dims[i] = d
		n *= d
	}
	size := int64(n) * int64(typ.Size())
	buf := bytes.NewBuffer(make([]byte, 0, min(size, 1<<20)))
	if got, err := io.CopyN(buf, r, size); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, formatErr("data: %d of %d bytes before the end", got, size)
		}
		return nil, fmt.Errorf("idx data: %w", err)
	}
	var extra [1]byte
	if k, err := io.ReadFull(r, extra[:]); k > 0 {
		return nil, formatErr("trailing data after %d bytes of elements", size)
	} else if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("idx after data: %w", err)
	}
	return &Array{Type: typ, Dims: dims, Data: buf.Bytes()}, nil
}
