package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/backpropd/backpropd/internal/allocbound"
)

func frameBytes(tb testing.TB, k kind, payload []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	err := writeFrame(&buf, k, uint64(len(payload)), func(w io.Writer) error {
		_, err := w.Write(payload)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzDecodeFrame: any bytes either decode to a payload of exactly
// len-20 bytes or fail with ErrCorrupt or, for a version field above
// frameVersion, ErrNewerFormat; never a panic; and the decode allocates
// at most frameBound.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(frameBytes(f, kindJob, []byte(`{"id":"x"}`)))
	f.Add(frameBytes(f, kindJob, nil))
	f.Add([]byte("BPDF"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var p []byte
		var err error
		allocbound.Check(t, "decodeFrame", len(data), frameBound, func() { p, err = decodeFrame("jobs/x.job", data, kindJob) })
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerFormat) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(p) != len(data)-frameOverhd {
			t.Fatalf("payload %d bytes from a %d-byte file", len(p), len(data))
		}
	})
}

// frameBound is what decodeFrame may allocate: the payload it returns is a
// slice of its input, so nothing per byte; a rejection formats one message
// of a path and a few numbers, well under 4 KiB.
var frameBound = allocbound.Bound{PerByte: 0, Fixed: 4 << 10}

// loadBound is what LoadDataset may allocate per byte of the two files it
// reads. Features and targets become float64s one for one (1 byte per
// byte); the densest input is a label of no bytes, 4 bytes of length that
// become a 16-byte string header (4 per byte), and the metadata JSON
// decodes to a few bytes per byte. Measured: 1.0 per byte for 100000 rows
// of float targets, 2.3 for 100000 one-letter labels, 3.7 KB for a
// two-row dataset (the file handles, buffers and metadata). k = 16 leaves
// room without letting a shape from the header allocate past the file,
// and c = 64 KiB covers the fixed costs.
var loadBound = allocbound.Bound{PerByte: 16, Fixed: 64 << 10}

// FuzzLoadDataset feeds LoadDataset data files with a valid frame and
// checksum around arbitrary dataset headers and bodies, so the decoder
// itself is exercised. It must never panic nor allocate more than
// loadBound for the two files, and what it returns must have the shapes
// its metadata claims.
func FuzzLoadDataset(f *testing.F) {
	f.Add(uint64(2), uint64(1), uint64(1), uint64(0), make([]byte, 32))
	f.Add(uint64(2), uint64(1), uint64(0), uint64(1), []byte{0: 0, 16: 1, 20: 'a', 21: 1, 25: 'b'})
	f.Add(uint64(1)<<40, uint64(1)<<40, uint64(0), uint64(1), []byte{1, 2, 3})
	f.Add(uint64(3), uint64(math.MaxUint64/2), uint64(3), uint64(0), make([]byte, 64))
	dir := f.TempDir()
	s := mustOpen(f, dir)
	f.Fuzz(func(t *testing.T, rows, feats, cols, hasLabels uint64, body []byte) {
		id := uuid.NewString()
		meta := DatasetMeta{ID: id, Rows: int(rows & math.MaxInt32), Features: int(feats & math.MaxInt32)}
		mj, _ := json.Marshal(meta)
		payload := make([]byte, datasetHeaderSize, datasetHeaderSize+len(body))
		binary.LittleEndian.PutUint64(payload[0:], rows)
		binary.LittleEndian.PutUint64(payload[8:], feats)
		binary.LittleEndian.PutUint64(payload[16:], cols)
		binary.LittleEndian.PutUint64(payload[24:], hasLabels)
		payload = append(payload, body...)
		metaFile, dataFile := frameBytes(t, kindDatasetMeta, mj), frameBytes(t, kindDatasetData, payload)
		writeFile(t, filepath.Join(dir, datasetMetaPath(id)), metaFile)
		writeFile(t, filepath.Join(dir, datasetDataPath(id)), dataFile)
		defer os.Remove(filepath.Join(dir, datasetMetaPath(id)))
		defer os.Remove(filepath.Join(dir, datasetDataPath(id)))

		var d *Dataset
		var err error
		allocbound.Check(t, "LoadDataset", len(metaFile)+len(dataFile), loadBound, func() { d, err = s.LoadDataset(bg, id) })
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(d.X) != d.Meta.Rows*d.Meta.Features {
			t.Fatalf("X has %d values for %d×%d", len(d.X), d.Meta.Rows, d.Meta.Features)
		}
		if d.Labels != nil && len(d.Labels) != d.Meta.Rows || d.Labels == nil && len(d.Targets) != d.Meta.Rows*int(cols) {
			t.Fatalf("targets/labels do not match %d rows", d.Meta.Rows)
		}
	})
}
