package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Model files and training states share one container layout, all integers
// and floats little-endian:
//
//	magic    8 bytes ("BPDMODEL" or "BPDSTATE")
//	version  uint32, modelFormat or stateFormat
//	hdrLen   uint32
//	header   hdrLen bytes of JSON, exactly as encoding/json writes it
//	count    uint64, the number of float values that follow
//	values   count values, IEEE 754 bits: float64 (8 bytes each), except
//	         that the header may say that the first n32 of them are
//	         float32 (4 bytes each): the weights of a float32 model or
//	         the vectors of a float32 training state
//	crc      uint32, CRC-32C (Castagnoli) of every byte before it
//
// The JSON header holds names, shapes and settings; the floats hold the
// weights and other vectors, so they round-trip bit for bit. Formats
// before float32 networks (model formats 1 and 2, state format 1) hold
// float64 values only.
//
// Each magic has its own format version, the one this build writes and
// the newest it reads (modelFormat, stateFormat). The version is checked
// before the checksum and the header, because a newer version may lay
// them out differently and its JSON header may hold fields this build
// would silently ignore: a newer file is refused with a *FormatError.

const (
	fixedHead = 8 + 4 + 4 // magic, version, hdrLen
	fixedTail = 8 + 4     // count, crc
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("corrupt or unsupported data")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
}

// encodeContainer writes header and the float64 vectors in the container
// layout, as format version.
func encodeContainer(magic string, version uint32, header []byte, vecs ...[]float64) []byte {
	count := 0
	for _, v := range vecs {
		count += len(v)
	}
	return encodeContainerWith(magic, version, header, count, 8*count, func(b []byte) []byte {
		for _, v := range vecs {
			b = appendFloats(b, v)
		}
		return b
	})
}

// encodeContainerWith writes header and count values of size bytes in
// all, which values appends, in the container layout.
func encodeContainerWith(magic string, version uint32, header []byte, count, size int, values func([]byte) []byte) []byte {
	b := make([]byte, 0, fixedHead+len(header)+fixedTail+size)
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(header)))
	b = append(b, header...)
	b = binary.LittleEndian.AppendUint64(b, uint64(count))
	b = values(b)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// appendFloats appends the bits of v, 4 or 8 bytes each by T.
func appendFloats[T float](b []byte, v []T) []byte {
	switch v := any(v).(type) {
	case []float32:
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	case []float64:
		for _, x := range v {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		}
	}
	return b
}

// decodeContainer checks the layout, the version (1 to newest) and the
// checksum of b and returns its header and the raw bytes of its count
// float values. It allocates nothing: both results alias b. The values'
// size is checked only as far as count allows without the header: the
// caller checks it exactly with checkValues once the header has said how
// many are float32.
func decodeContainer(what, magic string, newest uint32, b []byte) (header, values []byte, count int, err error) {
	if len(b) < fixedHead+fixedTail {
		return nil, nil, 0, corrupt("%s: %d bytes is too short", what, len(b))
	}
	if string(b[:8]) != magic {
		return nil, nil, 0, corrupt("%s: wrong magic number (not a %s)", what, what)
	}
	switch v := binary.LittleEndian.Uint32(b[8:]); {
	case v == 0:
		return nil, nil, 0, corrupt("%s: format version 0 is not valid", what)
	case v > newest:
		return nil, nil, 0, &FormatError{What: what, Version: v, Newest: newest}
	}
	body := b[:len(b)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[len(b)-4:]); got != want {
		return nil, nil, 0, corrupt("%s: checksum mismatch (file is damaged or truncated)", what)
	}
	hdrLen := uint64(binary.LittleEndian.Uint32(b[12:]))
	if hdrLen > uint64(len(b)-fixedHead-fixedTail) {
		return nil, nil, 0, corrupt("%s: header length %d exceeds the data", what, hdrLen)
	}
	header = b[fixedHead : fixedHead+hdrLen]
	rest := body[fixedHead+hdrLen:]
	n := binary.LittleEndian.Uint64(rest)
	values = rest[8:]
	if n > uint64(len(values))/4 || n < uint64(len(values))/8 {
		return nil, nil, 0, corrupt("%s: %d values announced, %d bytes present", what, n, len(values))
	}
	return header, values, int(n), nil
}

// checkValues checks that values holds exactly count values of which the
// first n32 are float32 and the rest float64.
func checkValues(what string, values []byte, count, n32 int) error {
	if n32 < 0 || n32 > count || len(values) != 4*n32+8*(count-n32) {
		return corrupt("%s: %d values (%d of them float32) announced, %d bytes present", what, count, max(n32, 0), len(values))
	}
	return nil
}

// readFloats decodes n values of type T from the front of *raw into a new
// slice and advances *raw. Callers have checked that *raw holds them.
func readFloats[T float](raw *[]byte, n int) []T {
	v := make([]T, n)
	b := *raw
	switch v := any(v).(type) {
	case []float32:
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		*raw = b[4*n:]
	case []float64:
		for i := range v {
			v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		*raw = b[8*n:]
	}
	return v
}
