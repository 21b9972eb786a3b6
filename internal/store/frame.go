package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// Every stored file is one frame:
//
//	offset  size  field
//	0       4     magic "BPDF"
//	4       2     format version (frameVersion), little-endian
//	6       2     record kind, little-endian
//	8       8     payload length n, little-endian
//	16      n     payload
//	16+n    4     CRC-32C (Castagnoli) of bytes [0, 16+n), little-endian
//
// A file is valid only if its size is exactly 20+n and the checksum
// matches, so truncation, extension, bit flips and a record of the wrong
// kind renamed into place are all detected.
const (
	frameMagic  = "BPDF"
	headerSize  = 16
	trailerSize = 4
	frameOverhd = headerSize + trailerSize
)

// kind identifies what a frame holds.
type kind uint16

const (
	kindDatasetMeta kind = 1 + iota
	kindDatasetData
	kindModelMeta
	kindModelFile
	kindCounter
	kindJob
	kindCheckpoint
	kindHistory // one batch of a job's history, jobs/<id>.history
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func frameHeader(k kind, n uint64) []byte {
	h := make([]byte, headerSize)
	copy(h, frameMagic)
	binary.LittleEndian.PutUint16(h[4:], frameVersion)
	binary.LittleEndian.PutUint16(h[6:], uint16(k))
	binary.LittleEndian.PutUint64(h[8:], n)
	return h
}

// crcWriter writes to w and keeps a running CRC-32C of what it wrote.
type crcWriter struct {
	w   io.Writer
	crc uint32
	n   uint64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	c.n += uint64(n)
	return n, err
}

// writeFrame writes one frame of kind k whose payload of exactly n bytes
// is produced by body.
func writeFrame(w io.Writer, k kind, n uint64, body func(io.Writer) error) error {
	cw := &crcWriter{w: w}
	if _, err := cw.Write(frameHeader(k, n)); err != nil {
		return err
	}
	if err := body(cw); err != nil {
		return err
	}
	if got := cw.n - headerSize; got != n {
		return fmt.Errorf("frame payload is %d bytes, header says %d", got, n)
	}
	var t [trailerSize]byte
	binary.LittleEndian.PutUint32(t[:], cw.crc)
	_, err := w.Write(t[:])
	return err
}

// checkHeader validates a frame header against the file size and the kind
// expected at path and returns the payload length.
func checkHeader(path string, h []byte, size int64, k kind) (uint64, error) {
	if size == 0 {
		return 0, corrupt(path, "empty file")
	}
	if size < frameOverhd {
		return 0, corrupt(path, "truncated: %d bytes, shorter than the %d-byte frame", size, frameOverhd)
	}
	if string(h[:4]) != frameMagic {
		return 0, corrupt(path, "bad magic %q", h[:4])
	}
	// The version comes before everything whose layout a newer version
	// may change, so a newer file is refused, never checked as if it
	// were this one; a damaged version field reads as a newer format.
	switch v := int(binary.LittleEndian.Uint16(h[4:])); {
	case v < 1:
		return 0, corrupt(path, "frame format version %d is not valid", v)
	case v > frameVersion:
		return 0, &FormatError{Path: path, What: "frame", Version: v, Newest: frameVersion}
	}
	if got := kind(binary.LittleEndian.Uint16(h[6:])); got != k {
		return 0, corrupt(path, "record kind %d, want %d", got, k)
	}
	n := binary.LittleEndian.Uint64(h[8:])
	if n > uint64(size) || n+frameOverhd != uint64(size) {
		return 0, corrupt(path, "truncated or extended: header says %d payload bytes, file has %d", n, size-frameOverhd)
	}
	return n, nil
}

// decodeFrame checks a whole frame read into memory and returns its
// payload (a subslice of data).
func decodeFrame(path string, data []byte, k kind) ([]byte, error) {
	n, err := checkHeader(path, data, int64(len(data)), k)
	if err != nil {
		return nil, err
	}
	end := headerSize + int(n)
	want := binary.LittleEndian.Uint32(data[end:])
	if got := crc32.Checksum(data[:end], castagnoli); got != want {
		return nil, corrupt(path, "checksum mismatch: stored %08x, computed %08x", want, got)
	}
	return data[headerSize:end], nil
}
