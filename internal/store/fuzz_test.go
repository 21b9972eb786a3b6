package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
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
// checksum around arbitrary dataset payloads, read as format version 1 or
// 2 as the metadata's format says, so the decoder itself is exercised.
// The metadata's shape is the payload header's, so that the fuzzer gets
// past the shape check. It must never panic nor allocate more than
// loadBound for the two files, and what it returns must have the shapes its metadata
// claims, with every category code within its level table.
func FuzzLoadDataset(f *testing.F) {
	v1 := func(rows, feats, cols, hasLabels uint64, body []byte) []byte {
		p := make([]byte, datasetHeaderSizeV1, datasetHeaderSizeV1+len(body))
		binary.LittleEndian.PutUint64(p[0:], rows)
		binary.LittleEndian.PutUint64(p[8:], feats)
		binary.LittleEndian.PutUint64(p[16:], cols)
		binary.LittleEndian.PutUint64(p[24:], hasLabels)
		return append(p, body...)
	}
	f.Add(uint8(1), v1(2, 1, 1, 0, make([]byte, 32)))
	f.Add(uint8(1), v1(2, 1, 0, 1, []byte{0: 0, 16: 1, 20: 'a', 21: 1, 25: 'b'}))
	f.Add(uint8(1), v1(1<<40, 1<<40, 0, 1, []byte{1, 2, 3}))
	f.Add(uint8(1), v1(3, math.MaxUint64/2, 3, 0, make([]byte, 64)))
	// Version 2 files as this build writes them: typed columns with class
	// labels and with a numeric target, and X.
	dir := f.TempDir()
	s := mustOpen(f, dir)
	regression := typedDataset(3)
	regression.Labels, regression.Meta.Classes, regression.Targets = nil, nil, []float64{1, 2, 3}
	for _, d := range []*Dataset{typedDataset(6), regression, labelDataset(3), regressionDataset(2, 2)} {
		m := mustCreateDataset(f, s, d)
		p, err := decodeFrame(datasetDataPath(m.ID), readFile(f, filepath.Join(dir, datasetDataPath(m.ID))), kindDatasetData)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(2), p)
	}
	f.Fuzz(func(t *testing.T, format uint8, payload []byte) {
		id := uuid.NewString()
		var rows, feats, cols uint64
		if len(payload) >= 24 {
			rows, feats, cols = binary.LittleEndian.Uint64(payload), binary.LittleEndian.Uint64(payload[8:]), binary.LittleEndian.Uint64(payload[16:])
		}
		meta := DatasetMeta{ID: id, Rows: int(rows & math.MaxInt32), Features: int(feats & math.MaxInt32)}
		if meta.Features <= 64 {
			for i := range meta.Features {
				meta.FeatureNames = append(meta.FeatureNames, fmt.Sprint("f", i))
			}
		}
		mj, err := withFormat(int(format), meta)
		if err != nil {
			t.Fatal(err)
		}
		metaFile, dataFile := frameBytes(t, kindDatasetMeta, mj), frameBytes(t, kindDatasetData, payload)
		writeFile(t, filepath.Join(dir, datasetMetaPath(id)), metaFile)
		writeFile(t, filepath.Join(dir, datasetDataPath(id)), dataFile)
		defer os.Remove(filepath.Join(dir, datasetMetaPath(id)))
		defer os.Remove(filepath.Join(dir, datasetDataPath(id)))

		var d *Dataset
		allocbound.Check(t, "LoadDataset", len(metaFile)+len(dataFile), loadBound, func() { d, err = s.LoadDataset(bg, id) })
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerFormat) {
				t.Fatalf("error %v wraps neither ErrCorrupt nor ErrNewerFormat", err)
			}
			return
		}
		if d.Columns != nil {
			if d.X != nil || len(d.Columns) != d.Meta.Features {
				t.Fatalf("%d typed columns and %d X values for %d features", len(d.Columns), len(d.X), d.Meta.Features)
			}
			for i := range d.Columns {
				c := &d.Columns[i]
				if c.Len() != d.Meta.Rows {
					t.Fatalf("column %d has %d cells for %d rows", i, c.Len(), d.Meta.Rows)
				}
				if r, code, ok := badCode(c.Codes, len(c.Levels)); !ok {
					t.Fatalf("column %d, row %d: code %d outside %d levels", i, r, code, len(c.Levels))
				}
			}
		} else if len(d.X) != d.Meta.Rows*d.Meta.Features {
			t.Fatalf("X has %d values for %d×%d", len(d.X), d.Meta.Rows, d.Meta.Features)
		}
		if d.Labels != nil && len(d.Labels) != d.Meta.Rows || d.Labels == nil && len(d.Targets) != d.Meta.Rows*int(cols) {
			t.Fatalf("targets/labels do not match %d rows", d.Meta.Rows)
		}
	})
}
