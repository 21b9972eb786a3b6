package idx

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/backpropd/backpropd/internal/allocbound"
)

// encode builds an IDX file by hand from the format description (magic
// 0x00 0x00 type ndims, big-endian uint32 sizes, big-endian elements), so
// the tests do not share code with the reader.
func encode(tb testing.TB, typ Type, dims []uint32, elems []float64) []byte {
	tb.Helper()
	var b bytes.Buffer
	b.Write([]byte{0, 0, byte(typ), byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, d)
	}
	for _, e := range elems {
		var v any
		switch typ {
		case Uint8:
			v = uint8(e)
		case Int8:
			v = int8(e)
		case Int16:
			v = int16(e)
		case Int32:
			v = int32(e)
		case Float32:
			v = float32(e)
		case Float64:
			v = e
		default:
			tb.Fatalf("encode: type %v", typ)
		}
		if err := binary.Write(&b, binary.BigEndian, v); err != nil {
			tb.Fatal(err)
		}
	}
	return b.Bytes()
}

func TestReadTypes(t *testing.T) {
	tests := []struct {
		name  string
		typ   Type
		dims  []uint32
		elems []float64
	}{
		{"uint8 images", Uint8, []uint32{2, 2, 3}, []float64{0, 1, 2, 127, 128, 255, 9, 8, 7, 6, 5, 4}},
		{"uint8 labels", Uint8, []uint32{5}, []float64{9, 0, 3, 3, 1}},
		{"int8", Int8, []uint32{4}, []float64{-128, -1, 0, 127}},
		{"int16", Int16, []uint32{2, 2}, []float64{-32768, -2, 300, 32767}},
		{"int32", Int32, []uint32{3}, []float64{-2147483648, 65536, 2147483647}},
		{"float32", Float32, []uint32{1, 3}, []float64{-1.5, 0.25, 3e10}},
		{"float64", Float64, []uint32{3}, []float64{math.Pi, -0.0, 1e-300}},
		{"empty dimension", Uint8, []uint32{0, 28, 28}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Read(bytes.NewReader(encode(t, tt.typ, tt.dims, tt.elems)))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if a.Type != tt.typ {
				t.Errorf("Type = %v, want %v", a.Type, tt.typ)
			}
			if len(a.Dims) != len(tt.dims) {
				t.Fatalf("Dims = %v, want %v", a.Dims, tt.dims)
			}
			for i, d := range tt.dims {
				if a.Dims[i] != int(d) {
					t.Errorf("Dims[%d] = %d, want %d", i, a.Dims[i], d)
				}
			}
			if a.Len() != len(tt.elems) {
				t.Fatalf("Len() = %d, want %d", a.Len(), len(tt.elems))
			}
			got, err := a.Float64s(make([]float64, a.Len()), 1)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.elems {
				if tt.typ == Float32 {
					want = float64(float32(want))
				}
				if got[i] != want || a.At(i) != want {
					t.Errorf("element %d = %v (At %v), want %v", i, got[i], a.At(i), want)
				}
			}
		})
	}
}

func TestFloat64sScales(t *testing.T) {
	a, err := Read(bytes.NewReader(encode(t, Uint8, []uint32{3}, []float64{0, 51, 255})))
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Float64s(make([]float64, 3), 1.0/255)
	if err != nil {
		t.Fatal(err)
	}
	// 51/255 = 0.2 and 255/255 = 1, each within one rounding of the product.
	for i, want := range []float64{0, 0.2, 1} {
		if math.Abs(got[i]-want) > 1e-15 {
			t.Errorf("scaled[%d] = %v, want %v", i, got[i], want)
		}
	}
	if _, err := a.Float64s(make([]float64, 2), 1); err == nil {
		t.Error("Float64s into a short dst: no error")
	}
}

func TestReadFile(t *testing.T) {
	raw := encode(t, Uint8, []uint32{2, 2}, []float64{1, 2, 3, 4})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	dir := t.TempDir()
	files := map[string][]byte{
		"plain-idx1-ubyte":      raw,
		"gzipped-idx1-ubyte.gz": gz.Bytes(),
	}
	for name, b := range files {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := ReadFile(path)
			if err != nil {
				t.Fatalf("ReadFile: %v", err)
			}
			if a.Len() != 4 || a.At(3) != 4 {
				t.Errorf("got %d elements, last %v; want 4 elements, last 4", a.Len(), a.At(a.Len()-1))
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if _, err := ReadFile(filepath.Join(dir, "absent")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want os.ErrNotExist", err)
		}
	})
	t.Run("gz that is not gzip", func(t *testing.T) {
		path := filepath.Join(dir, "fake.gz")
		os.WriteFile(path, raw, 0o600)
		if _, err := ReadFile(path); err == nil {
			t.Error("no error for a .gz file that is not gzip")
		}
	})
}

func TestReadRejectsMalformed(t *testing.T) {
	good := encode(t, Uint8, []uint32{2, 3}, []float64{1, 2, 3, 4, 5, 6})
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short magic", []byte{0, 0, 8}},
		{"nonzero magic", append([]byte{1}, good[1:]...)},
		{"unknown type", append([]byte{0, 0, 0x0A}, good[3:]...)},
		{"zero dimensions", []byte{0, 0, 8, 0}},
		{"short sizes", good[:6]},
		{"short data", good[:len(good)-1]},
		{"trailing data", append(append([]byte(nil), good...), 0)},
		{"too many elements", []byte{0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"one huge dimension", []byte{0, 0, 0x0E, 1, 0xff, 0xff, 0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Read(bytes.NewReader(tt.in))
			if err == nil {
				t.Fatalf("Read accepted %x as %v %v", tt.in, a.Type, a.Dims)
			}
			if !errors.Is(err, ErrFormat) {
				t.Errorf("err = %v, want it to wrap ErrFormat", err)
			}
		})
	}
}

// readBound is what Read may allocate per input byte. The data buffer
// starts at the size the header claims, capped at 1 MiB, and grows by
// doubling as bytes arrive (at most 3 bytes allocated per byte kept); each
// 4-byte dimension becomes an 8-byte int. k = 8 covers both and c = 2 MiB
// the first buffer a header may claim before its data is read.
var readBound = allocbound.Bound{PerByte: 8, Fixed: 2 << 20}

// FuzzRead: Read never panics, allocates at most readBound, and what it
// accepts is exactly its input: a header and len(Data) bytes of the
// type's size per element.
func FuzzRead(f *testing.F) {
	f.Add(encode(f, Uint8, []uint32{2, 3}, []float64{1, 2, 3, 4, 5, 6}))
	f.Add(encode(f, Float64, []uint32{1}, []float64{1}))
	f.Add([]byte{0, 0, 8, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var a *Array
		var err error
		allocbound.Check(t, "Read", len(b), readBound, func() { a, err = Read(bytes.NewReader(b)) })
		if err != nil {
			return
		}
		if len(a.Data) != a.Len()*a.Type.Size() {
			t.Fatalf("len(Data) = %d, want %d × %d", len(a.Data), a.Len(), a.Type.Size())
		}
		if 4+4*len(a.Dims)+len(a.Data) != len(b) {
			t.Fatalf("decoded %d bytes of %d", 4+4*len(a.Dims)+len(a.Data), len(b))
		}
		if _, err := a.Float64s(make([]float64, a.Len()), 1); err != nil {
			t.Fatal(err)
		}
	})
}
