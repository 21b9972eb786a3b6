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
// frameVersion, ErrNewerFormat; never a panic.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(frameBytes(f, kindJob, []byte(`{"id":"x"}`)))
	f.Add(frameBytes(f, kindJob, nil))
	f.Add([]byte("BPDF"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := decodeFrame("jobs/x.job", data, kindJob)
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

// FuzzLoadDataset feeds LoadDataset data files with a valid frame and
// checksum around arbitrary dataset headers and bodies, so the decoder
// itself is exercised. It must never panic nor allocate more than the file
// holds, and what it returns must have the shapes its metadata claims.
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
		writeFile(t, filepath.Join(dir, datasetMetaPath(id)), frameBytes(t, kindDatasetMeta, mj))
		writeFile(t, filepath.Join(dir, datasetDataPath(id)), frameBytes(t, kindDatasetData, payload))
		defer os.Remove(filepath.Join(dir, datasetMetaPath(id)))
		defer os.Remove(filepath.Join(dir, datasetDataPath(id)))

		d, err := s.LoadDataset(bg, id)
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
