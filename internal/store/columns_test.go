package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/backpropd/backpropd/internal/table"
)

// sameColumns reports how got differs from want, comparing values bit
// for bit so that NaN payloads and negative zeros count; "" when equal.
func sameColumns(got, want []table.Column) string {
	if len(got) != len(want) {
		return "different column counts"
	}
	bitsOf := func(v []float64) []uint64 {
		out := make([]uint64, len(v))
		for i, x := range v {
			out[i] = math.Float64bits(x)
		}
		return out
	}
	for i := range want {
		g, w := &got[i], &want[i]
		switch {
		case g.Name != w.Name || g.Kind != w.Kind || g.HasTime != w.HasTime:
			return "column " + w.Name + ": name, kind or HasTime differs"
		case !slices.Equal(bitsOf(g.Values), bitsOf(w.Values)) || (g.Values == nil) != (w.Values == nil):
			return "column " + w.Name + ": values differ"
		case !slices.Equal(g.Codes, w.Codes) || (g.Codes == nil) != (w.Codes == nil):
			return "column " + w.Name + ": codes differ"
		case !slices.Equal(g.Levels, w.Levels) || (g.Levels == nil) != (w.Levels == nil):
			return "column " + w.Name + ": levels differ"
		}
	}
	return ""
}

// TestTypedDatasetRoundTrip stores datasets with typed columns and checks
// that loading gives the same columns bit for bit, the same targets, and
// the metadata's column summaries, warnings and dropped rows; and that
// the file's size is what the metadata says.
func TestTypedDatasetRoundTrip(t *testing.T) {
	lo, hi := -1.5, 12.0
	regression := typedDataset(7)
	regression.Labels, regression.Meta.Classes, regression.Meta.Task = nil, nil, "regression"
	regression.Targets = []float64{1, 2, 3, 4, 5, 6, 0.125}
	oneLevel := &Dataset{Meta: DatasetMeta{Rows: 2, Features: 1, FeatureNames: []string{"only"}, TargetNames: []string{"y"}, Task: "regression"},
		Columns: []table.Column{{Name: "only", Kind: table.Category, Codes: []int32{table.Missing, table.Missing}, Levels: []string{}}},
		Targets: []float64{1, 2}}
	cases := []struct {
		name string
		d    *Dataset
	}{
		{"labels", typedDataset(10)},
		{"one row", typedDataset(1)},
		{"numeric target", regression},
		{"no levels, every cell missing", oneLevel},
	}
	cases[0].d.Meta.Columns = []table.Summary{
		{Name: "price", Type: table.Number, Role: table.Feature, Reason: "every cell is a number", Missing: 3, Distinct: 7, Min: &lo, Max: &hi},
		{Name: "id", Type: table.Category, Role: table.Ignored, Reason: "identifier-like", Distinct: 10, TopLevels: []table.LevelCount{{Level: "x", Count: 1}}},
	}
	s := mustOpen(t, t.TempDir())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			meta := mustCreateDataset(t, s, c.d)
			got, err := s.LoadDataset(bg, meta.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := sameColumns(got.Columns, c.d.Columns); diff != "" {
				t.Errorf("loaded columns: %s", diff)
			}
			if got.X != nil {
				t.Errorf("X has %d values; a typed dataset has none", len(got.X))
			}
			if !slices.Equal(got.Labels, c.d.Labels) || !slices.Equal(got.Targets, c.d.Targets) {
				t.Errorf("targets %v labels %v, want %v %v", got.Targets, got.Labels, c.d.Targets, c.d.Labels)
			}
			wantNames := make([]string, len(c.d.Columns))
			for i := range c.d.Columns {
				wantNames[i] = c.d.Columns[i].Name
			}
			if !slices.Equal(got.Meta.FeatureNames, wantNames) {
				t.Errorf("feature names %q, want the columns' %q", got.Meta.FeatureNames, wantNames)
			}
			if !reflect.DeepEqual(got.Meta.Columns, c.d.Meta.Columns) || !slices.Equal(got.Meta.Warnings, c.d.Meta.Warnings) ||
				got.Meta.DroppedRows != c.d.Meta.DroppedRows {
				t.Errorf("metadata columns/warnings/dropped rows %+v %q %d, want %+v %q %d", got.Meta.Columns, got.Meta.Warnings,
					got.Meta.DroppedRows, c.d.Meta.Columns, c.d.Meta.Warnings, c.d.Meta.DroppedRows)
			}
			info, err := os.Stat(filepath.Join(s.dir, datasetDataPath(meta.ID)))
			if err != nil {
				t.Fatal(err)
			}
			if info.Size() != meta.SizeBytes {
				t.Errorf("data file is %d bytes, metadata says %d", info.Size(), meta.SizeBytes)
			}
		})
	}
}

// TestDatasetMetaJSONShowsColumns checks the metadata's JSON names of the
// column summaries, warnings and dropped rows, which the API serves as
// they are.
func TestDatasetMetaJSONShowsColumns(t *testing.T) {
	d := typedDataset(4)
	d.Meta.Columns = []table.Summary{{Name: "grade", Type: table.Category, Role: table.Feature, Reason: "text", Distinct: 3}}
	b, err := json.Marshal(d.Meta)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"columns":[{"name":"grade","type":"category","role":"feature"`, `"warnings":["2 rows without a target were dropped"]`, `"dropped_rows":2`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not contain %s", b, want)
		}
	}
	b, _ = json.Marshal(regressionDataset(2, 2).Meta)
	for _, absent := range []string{`"columns"`, `"warnings"`, `"dropped_rows"`} {
		if strings.Contains(string(b), absent) {
			t.Errorf("a dataset without summaries shows %s: %s", absent, b)
		}
	}
}

// v1DataFile encodes d as a format 1 build wrote it: a 32-byte header and
// X, then targets or labels (the layout of dataset.go).
func v1DataFile(tb testing.TB, d *Dataset) []byte {
	tb.Helper()
	var p []byte
	cols := uint64(0)
	if d.Labels == nil {
		cols = uint64(len(d.Targets) / d.Meta.Rows)
	}
	p = binary.LittleEndian.AppendUint64(p, uint64(d.Meta.Rows))
	p = binary.LittleEndian.AppendUint64(p, uint64(d.Meta.Features))
	p = binary.LittleEndian.AppendUint64(p, cols)
	if d.Labels != nil {
		p = binary.LittleEndian.AppendUint64(p, 1)
	} else {
		p = binary.LittleEndian.AppendUint64(p, 0)
	}
	for _, v := range append(slices.Clone(d.X), d.Targets...) {
		p = binary.LittleEndian.AppendUint64(p, math.Float64bits(v))
	}
	for _, l := range d.Labels {
		p = binary.LittleEndian.AppendUint32(p, uint32(len(l)))
		p = append(p, l...)
	}
	return frameBytes(tb, kindDatasetData, p)
}

// TestDatasetV1FilesLoad writes datasets as a format 1 build did, with
// the metadata's format field 1 and absent (as before the field existed),
// and checks this build loads their numbers.
func TestDatasetV1FilesLoad(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	for _, d := range []*Dataset{labelDataset(5), regressionDataset(4, 3)} {
		for _, format := range []any{1, nil} {
			id := uuid.NewString()
			meta := d.Meta
			meta.ID = id
			mj, err := json.Marshal(meta)
			if err != nil {
				t.Fatal(err)
			}
			mj = setJSON(t, mj, "format", format)
			writeFile(t, filepath.Join(dir, datasetMetaPath(id)), frameBytes(t, kindDatasetMeta, mj))
			writeFile(t, filepath.Join(dir, datasetDataPath(id)), v1DataFile(t, d))
			got, err := s.LoadDataset(bg, id)
			if err != nil {
				t.Fatalf("%s, format %v: %v", d.Meta.Name, format, err)
			}
			if !slices.Equal(got.X, d.X) || !slices.Equal(got.Targets, d.Targets) || !slices.Equal(got.Labels, d.Labels) || got.Columns != nil {
				t.Errorf("%s, format %v: loaded other numbers than were written", d.Meta.Name, format)
			}
		}
	}
}

// TestCreateDatasetRefusesBadColumns checks that typed columns that do
// not agree with the metadata, or break table.Column's rules, are refused
// with ErrInvalidDataset and nothing is stored.
func TestCreateDatasetRefusesBadColumns(t *testing.T) {
	cases := []struct {
		name string
		edit func(d *Dataset)
		want string
	}{
		{"X and columns", func(d *Dataset) { d.X = make([]float64, 3*d.Meta.Rows) }, "both X and typed columns"},
		{"too few columns", func(d *Dataset) { d.Columns = d.Columns[:2] }, "2 typed columns for 3 features"},
		{"name differs from feature names", func(d *Dataset) { d.Meta.FeatureNames = []string{"price", "grade", "when"} }, `named "sold"`},
		{"short values", func(d *Dataset) { d.Columns[0].Values = d.Columns[0].Values[:3] }, `column "price": a number column needs 4 values`},
		{"unknown kind", func(d *Dataset) { d.Columns[0].Kind = "text" }, `kind "text"`},
		{"time on a number", func(d *Dataset) { d.Columns[0].HasTime = true }, "no time of day"},
		{"infinite value", func(d *Dataset) { d.Columns[2].Values[1] = math.Inf(-1) }, `column "sold": row 1 is -Inf`},
		{"code past the levels", func(d *Dataset) { d.Columns[1].Codes[2] = 3 }, "row 2 has code 3"},
		{"code below missing", func(d *Dataset) { d.Columns[1].Codes[0] = -2 }, "row 0 has code -2"},
		{"duplicate level", func(d *Dataset) { d.Columns[1].Levels[2] = "a" }, `level "a" appears twice`},
		{"values on a category", func(d *Dataset) { d.Columns[1].Values = []float64{1, 2, 3, 4} }, "needs 4 codes and no values"},
	}
	dir := t.TempDir()
	s := mustOpen(t, dir)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := typedDataset(4)
			c.edit(d)
			_, err := s.CreateDataset(bg, d)
			if !errors.Is(err, ErrInvalidDataset) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("CreateDataset: %v; want ErrInvalidDataset saying %q", err, c.want)
			}
			wantNothingStored(t, s, dir)
		})
	}
}

// TestTypedDataCorruptWithValidChecksum rewrites the typed section of a
// data file as a bug or a hand would, with a valid frame around it, and
// checks each is ErrCorrupt naming the file: the checksum alone does not
// stand between a bad file and an index out of range.
func TestTypedDataCorruptWithValidChecksum(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	meta := mustCreateDataset(t, s, typedDataset(4))
	rel := datasetDataPath(meta.ID)
	p := filepath.Join(dir, rel)
	orig := readFile(t, p)
	payload, err := decodeFrame(rel, orig, kindDatasetData)
	if err != nil {
		t.Fatal(err)
	}
	// Offsets in the payload, from the layout in columns.go: the 40-byte
	// header, the price column (8-byte header, 4 values), then grade.
	const price = datasetHeaderSize
	const grade = price + columnHeaderSize + 4*8
	const gradeCodes = grade + columnHeaderSize + levelHeaderSize + (4 + 1) + 4 + (4 + len("ß-grade"))
	put32 := func(off int, v uint32) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint32(b[off:], v) }
	}
	put64 := func(off int, v uint64) func([]byte) {
		return func(b []byte) { binary.LittleEndian.PutUint64(b[off:], v) }
	}
	cases := []struct {
		name string
		edit func([]byte)
		want string
	}{
		{"typed flag 2", put64(32, 2), "typed flag 2"},
		{"unknown kind", put32(price, 9), "column 0: kind 9"},
		{"time flag on a number", put32(price+4, flagHasTime), "column 0: flags 0x1"},
		{"code past the levels", put32(gradeCodes+4, 3), "column 1, row 1: code 3"},
		{"code below missing", put32(gradeCodes, 0xfffffffe), "column 1, row 0: code -2"},
		{"more levels than the table holds", put64(grade+columnHeaderSize, 1<<40), "levels do not fit"},
		{"level table past the end", put64(grade+columnHeaderSize+8, 1<<50), "level table"},
		{"level table one byte short", put64(grade+columnHeaderSize+8, 4+1+4+4+uint64(len("ß-grade"))-1), "column 1"},
		{"a column too many", put64(8, 4), "shape"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(payload)
			c.edit(b)
			writeFile(t, p, frameBytes(t, kindDatasetData, b))
			defer writeFile(t, p, orig)
			_, err := s.LoadDataset(bg, meta.ID)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), rel) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("LoadDataset: %v; want ErrCorrupt naming %s and saying %q", err, rel, c.want)
			}
		})
	}
}
