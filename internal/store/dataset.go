package store

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/google/uuid"

	"github.com/backpropd/backpropd/internal/pagecursor"
	"github.com/backpropd/backpropd/internal/table"
)

// DatasetMeta describes a stored dataset.
type DatasetMeta struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Rows         int       `json:"rows"`
	Features     int       `json:"features"`
	FeatureNames []string  `json:"feature_names"`
	TargetNames  []string  `json:"target_names"`
	Task         string    `json:"task"` // regression | binary | multiclass
	Classes      []string  `json:"classes,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	SizeBytes    int64     `json:"size_bytes"`
	// Hidden datasets hold a job's inline data; they are not listed.
	Hidden bool `json:"hidden,omitempty"`
	// ClassCounts is the number of rows of each of Classes, in order;
	// CreateDataset fills it from the labels. Datasets stored before it
	// existed lack it.
	ClassCounts []int `json:"class_counts,omitempty"`
	// Columns describes every column of the uploaded table, features,
	// target and ignored ones alike, with its role and why.
	Columns []table.Summary `json:"columns,omitempty"`
	// Warnings are what a user should know about the upload: ignored
	// identifier columns, constant columns, dropped rows, a target read
	// as classes.
	Warnings []string `json:"warnings,omitempty"`
	// DroppedRows is the number of rows left out because their target was
	// missing.
	DroppedRows int `json:"dropped_rows,omitempty"`
	// Typed says the features are stored as typed columns
	// (Dataset.Columns), not as X; CreateDataset sets it.
	Typed bool `json:"typed,omitempty"`
}

// Dataset is a dataset with its numbers. X is row-major Rows×Features.
// Exactly one of Targets (Rows×len(TargetNames)) or Labels (Rows) is set.
type Dataset struct {
	Meta    DatasetMeta
	X       []float64
	Targets []float64
	Labels  []string
	// Columns are typed features; when set X is nil and Meta.Features ==
	// len(Columns), and Meta.FeatureNames are the columns' names.
	Columns []table.Column
	// XParts, set in place of X, holds X as consecutive slices, in order,
	// so that a parser that fills blocks of rows need not copy them into
	// one slice for CreateDataset, which writes them in turn. A loaded
	// dataset always has X.
	XParts [][]float64
}

// xLen is the number of values of X, in X or in XParts.
func (d *Dataset) xLen() int {
	n := len(d.X)
	for _, p := range d.XParts {
		n += len(p)
	}
	return n
}

// The numbers of a dataset live in <id>.data, a frame whose payload is,
// in format version 2,
//
//	rows, features, targetCols, hasLabels,  5 × uint64 little-endian
//	typed
//	X (typed == 0)                          rows×features float64 LE, row-major
//	Columns (typed == 1)                    features typed columns (columns.go)
//	Targets (hasLabels == 0)                rows×targetCols float64 LE
//	Labels  (hasLabels == 1)                rows × (uint32 LE length, bytes)
//
// Version 1 has no typed field (a 32-byte header) and always X.
//
// The metadata lives in <id>.meta as JSON, so listing never touches the
// numbers. Its "format" field (datasetFormat) versions both files: the
// metadata is always read, and checked, before the numbers.
const (
	datasetHeaderSizeV1 = 32
	datasetHeaderSize   = 40
)

// littleEndian is true on hosts whose float64 memory layout equals the file
// layout, where X and Targets are read and written in place.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// classCounts counts the labels of each class, in the order of classes;
// nil when there are no classes or a label is not one of them.
func classCounts(classes, labels []string) []int {
	if len(classes) == 0 || labels == nil {
		return nil
	}
	index := make(map[string]int, len(classes))
	for i, c := range classes {
		index[c] = i
	}
	counts := make([]int, len(classes))
	for _, l := range labels {
		i, ok := index[l]
		if !ok {
			return nil
		}
		counts[i]++
	}
	return counts
}

// targetCols checks d's shapes against its metadata and returns the number
// of target columns (0 for labels).
func (d *Dataset) targetCols() (int, error) {
	m := &d.Meta
	if m.Rows <= 0 || m.Features <= 0 {
		return 0, fmt.Errorf("%w: rows (%d) and features (%d) must be positive", ErrInvalidDataset, m.Rows, m.Features)
	}
	if len(m.FeatureNames) != 0 && len(m.FeatureNames) != m.Features {
		return 0, fmt.Errorf("%w: %d feature names for %d features", ErrInvalidDataset, len(m.FeatureNames), m.Features)
	}
	hi, cells := bits.Mul64(uint64(m.Rows), uint64(m.Features))
	if d.Columns != nil {
		if d.XParts != nil {
			return 0, fmt.Errorf("%w: both XParts and typed columns are set", ErrInvalidDataset)
		}
		if err := d.checkColumns(); err != nil {
			return 0, err
		}
	} else if d.X != nil && d.XParts != nil {
		return 0, fmt.Errorf("%w: both X and XParts are set", ErrInvalidDataset)
	} else if hi != 0 || cells > math.MaxInt/8 || uint64(d.xLen()) != cells {
		return 0, fmt.Errorf("%w: X has %d values, want rows×features = %d×%d", ErrInvalidDataset, d.xLen(), m.Rows, m.Features)
	}
	switch {
	case d.Labels != nil && d.Targets != nil:
		return 0, fmt.Errorf("%w: both targets and labels are set", ErrInvalidDataset)
	case d.Labels != nil:
		if len(d.Labels) != m.Rows {
			return 0, fmt.Errorf("%w: %d labels for %d rows", ErrInvalidDataset, len(d.Labels), m.Rows)
		}
		for i, l := range d.Labels {
			if len(l) > math.MaxUint32 {
				return 0, fmt.Errorf("%w: label %d is %d bytes", ErrInvalidDataset, i, len(l))
			}
		}
		return 0, nil
	default:
		cols := len(m.TargetNames)
		if cols == 0 && len(d.Targets)%m.Rows == 0 {
			cols = len(d.Targets) / m.Rows
		}
		if cols == 0 || len(d.Targets) != m.Rows*cols {
			return 0, fmt.Errorf("%w: %d targets for %d rows and %d target names", ErrInvalidDataset, len(d.Targets), m.Rows, len(m.TargetNames))
		}
		return cols, nil
	}
}

// CreateDataset assigns a new id and created time, stores d durably and
// returns its metadata. The numbers are written first and the metadata
// last, so a dataset is visible only once all of it is on disk.
func (s *Store) CreateDataset(ctx context.Context, d *Dataset) (DatasetMeta, error) {
	if d == nil {
		return DatasetMeta{}, fmt.Errorf("%w: nil dataset", ErrInvalidDataset)
	}
	cols, err := d.targetCols()
	if err != nil {
		return DatasetMeta{}, err
	}
	meta := d.Meta
	meta.ID = uuid.NewString()
	meta.CreatedAt = time.Now().UTC()
	meta.ClassCounts = classCounts(meta.Classes, d.Labels)
	meta.Typed = d.Columns != nil
	if d.Columns != nil && len(meta.FeatureNames) == 0 {
		// A typed dataset's column names are kept in its metadata only.
		meta.FeatureNames = make([]string, len(d.Columns))
		for i := range d.Columns {
			meta.FeatureNames[i] = d.Columns[i].Name
		}
	}

	n := uint64(datasetHeaderSize+8*d.xLen()+8*len(d.Targets)) + columnsSize(d.Columns) + levelTableSize(d.Labels)
	release, err := s.floor.reserve(int64(n) + frameOverhd)
	if err != nil {
		return DatasetMeta{}, err
	}
	defer release()
	err = s.writeFile(ctx, datasetDataPath(meta.ID), kindDatasetData, n, s.floor.guard(n, func(w io.Writer) error {
		var h [datasetHeaderSize]byte
		binary.LittleEndian.PutUint64(h[0:], uint64(meta.Rows))
		binary.LittleEndian.PutUint64(h[8:], uint64(meta.Features))
		binary.LittleEndian.PutUint64(h[16:], uint64(cols))
		if d.Labels != nil {
			binary.LittleEndian.PutUint64(h[24:], 1)
		}
		if d.Columns != nil {
			binary.LittleEndian.PutUint64(h[32:], 1)
		}
		if _, err := w.Write(h[:]); err != nil {
			return err
		}
		if err := writeFloats(w, d.X); err != nil {
			return err
		}
		for _, p := range d.XParts {
			if err := writeFloats(w, p); err != nil {
				return err
			}
		}
		if err := writeColumns(w, d.Columns); err != nil {
			return err
		}
		if d.Labels == nil {
			return writeFloats(w, d.Targets)
		}
		return writeStrings(w, d.Labels)
	}))
	if err != nil {
		return DatasetMeta{}, err
	}
	meta.SizeBytes = int64(n) + frameOverhd
	js, err := withFormat(datasetFormat, &meta)
	if err != nil {
		return DatasetMeta{}, err
	}
	if err := s.writeBytes(ctx, datasetMetaPath(meta.ID), kindDatasetMeta, js); err != nil {
		// Leave no orphan behind; Open would remove it anyway.
		s.remove(datasetDataPath(meta.ID))
		return DatasetMeta{}, err
	}
	return meta, nil
}

// writeFloats writes x little-endian: in place on little-endian hosts,
// through a small buffer elsewhere.
func writeFloats(w io.Writer, x []float64) error {
	if len(x) == 0 {
		return nil
	}
	if littleEndian {
		_, err := w.Write(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(x))), 8*len(x)))
		return err
	}
	var buf [4096]byte
	for len(x) > 0 {
		k := min(len(x), len(buf)/8)
		for i, v := range x[:k] {
			binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(v))
		}
		if _, err := w.Write(buf[:8*k]); err != nil {
			return err
		}
		x = x[k:]
	}
	return nil
}

// readFloats fills dst from r. On little-endian hosts it reads straight
// into dst's memory (one copy, kernel to dst); elsewhere it decodes through
// a small buffer.
func readFloats(r io.Reader, dst []float64) error {
	if len(dst) == 0 {
		return nil
	}
	if littleEndian {
		_, err := io.ReadFull(r, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 8*len(dst)))
		return err
	}
	var buf [4096]byte
	for len(dst) > 0 {
		k := min(len(dst), len(buf)/8)
		if _, err := io.ReadFull(r, buf[:8*k]); err != nil {
			return err
		}
		for i := range dst[:k] {
			dst[i] = math.Float64frombits(binary.LittleEndian.Uint64(buf[8*i:]))
		}
		dst = dst[k:]
	}
	return nil
}

// crcReader reads from r and keeps a running CRC-32C of what it read.
type crcReader struct {
	r   io.Reader
	crc uint32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc = crc32.Update(c.crc, castagnoli, p[:n])
	return n, err
}

// ListDatasets lists non-hidden datasets, newest first. A dataset whose
// metadata cannot be read is skipped and logged.
func (s *Store) ListDatasets(ctx context.Context) ([]DatasetMeta, error) {
	return s.listDatasets(ctx, false)
}

// HiddenDatasets lists the hidden datasets (jobs' inline data), newest
// first, so that startup can delete those no job references. A dataset
// whose metadata cannot be read is skipped and logged.
func (s *Store) HiddenDatasets(ctx context.Context) ([]DatasetMeta, error) {
	return s.listDatasets(ctx, true)
}

// DatasetFilter selects a page of datasets for PageDatasets.
type DatasetFilter struct {
	// Name keeps only the datasets of this name; "" keeps all.
	Name string
	// Limit is the page size; 0 or less takes DefaultDatasetPage.
	Limit int
	// Cursor is the next cursor of the previous page; "" starts at the
	// newest dataset.
	Cursor string
}

// DefaultDatasetPage is the page size of a DatasetFilter without a Limit.
const DefaultDatasetPage = 50

// datasetCursorKind keeps dataset cursors apart from other lists' cursors.
const datasetCursorKind = "dataset"

// datasetBefore reports whether a comes before b in the order of
// ListDatasets: newest first, then by id.
func datasetBefore(aCreated time.Time, aID string, bCreated time.Time, bID string) bool {
	if c := bCreated.Compare(aCreated); c != 0 {
		return c < 0
	}
	return aID < bID
}

// PageDatasets returns one page of list, which must be in the order
// ListDatasets returns (newest first), and the cursor of the next page ("" on
// the last page). The cursor names the last dataset of the page, not a
// position, so datasets created or deleted between pages neither repeat
// nor skip the others. A cursor that no page returned gives an error
// wrapping pagecursor.ErrInvalid.
//
// Listing reads every dataset's metadata anyway (there is no index to
// seek in), so paging is done over the whole list, and a page costs what
// the whole list costs to read but not to send.
func PageDatasets(list []DatasetMeta, f DatasetFilter) ([]DatasetMeta, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultDatasetPage
	}
	var after struct {
		created time.Time
		id      string
	}
	if f.Cursor != "" {
		key, err := pagecursor.Decode(datasetCursorKind, f.Cursor)
		if err != nil {
			return nil, "", err
		}
		stamp, id, ok := strings.Cut(key, " ")
		created, terr := time.Parse(time.RFC3339Nano, stamp)
		if !ok || terr != nil || id == "" {
			return nil, "", pagecursor.ErrInvalid
		}
		after.created, after.id = created, id
	}
	out := []DatasetMeta{}
	next := ""
	for _, m := range list {
		if after.id != "" && !datasetBefore(after.created, after.id, m.CreatedAt, m.ID) {
			continue
		}
		if f.Name != "" && m.Name != f.Name {
			continue
		}
		if len(out) == limit {
			last := out[len(out)-1]
			next = pagecursor.Encode(datasetCursorKind, last.CreatedAt.UTC().Format(time.RFC3339Nano)+" "+last.ID)
			break
		}
		out = append(out, m)
	}
	return out, next, nil
}

// listDatasets lists the datasets whose Hidden flag is hidden.
func (s *Store) listDatasets(ctx context.Context, hidden bool) ([]DatasetMeta, error) {
	ents, err := s.fs.ReadDir(dirDatasets)
	if err != nil {
		return nil, readErr(dirDatasets, err)
	}
	out := []DatasetMeta{}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".meta")
		if !ok || checkID("dataset", id) != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := s.DatasetMeta(ctx, id)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				s.log.Error("store: skipping unreadable dataset", "id", id, "err", err)
			}
			continue
		}
		if m.Hidden == hidden {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b DatasetMeta) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// DatasetMeta returns one dataset's metadata without loading its numbers.
func (s *Store) DatasetMeta(ctx context.Context, id string) (DatasetMeta, error) {
	m, _, err := s.datasetMeta(id)
	return m, err
}

// datasetMeta is DatasetMeta, also returning the format version of the
// dataset's files.
func (s *Store) datasetMeta(id string) (DatasetMeta, int, error) {
	if err := checkID("dataset", id); err != nil {
		return DatasetMeta{}, 0, err
	}
	rel := datasetMetaPath(id)
	b, err := s.readBytes(rel, kindDatasetMeta)
	if err != nil {
		return DatasetMeta{}, 0, err
	}
	version, err := recordFormat(rel, "dataset", b, datasetFormat)
	if err != nil {
		return DatasetMeta{}, 0, err
	}
	var m DatasetMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return DatasetMeta{}, 0, corrupt(rel, "decode: %v", err)
	}
	if m.ID != id {
		return DatasetMeta{}, 0, corrupt(rel, "holds dataset %s", quote(m.ID))
	}
	return m, version, nil
}

// LoadDataset loads a dataset with its numbers. X, Targets and the typed
// columns' values and codes are read straight from the file into freshly
// allocated slices, without an intermediate byte buffer.
func (s *Store) LoadDataset(ctx context.Context, id string) (*Dataset, error) {
	meta, version, err := s.datasetMeta(id)
	if err != nil {
		return nil, err
	}
	rel := datasetDataPath(id)
	f, info, err := s.openRegular(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info.Size() < frameOverhd {
		_, err := checkHeader(rel, nil, info.Size(), kindDatasetData)
		return nil, err
	}
	// The buffer serves the small reads of column headers; reads as large
	// as it go straight into the destination slices.
	br := bufio.NewReaderSize(f, 64<<10)
	cr := &crcReader{r: br}
	var fh [headerSize]byte
	if _, err := io.ReadFull(cr, fh[:]); err != nil {
		return nil, (&payload{rel: rel}).short(err)
	}
	n, err := checkHeader(rel, fh[:], info.Size(), kindDatasetData)
	if err != nil {
		return nil, err
	}
	p := &payload{r: cr, left: n, rel: rel}
	d, err := p.dataset(meta, version)
	if err != nil {
		return nil, err
	}
	want := cr.crc
	var t [trailerSize]byte
	if _, err := io.ReadFull(br, t[:]); err != nil {
		return nil, p.short(err)
	}
	if got := binary.LittleEndian.Uint32(t[:]); got != want {
		return nil, corrupt(rel, "checksum mismatch: stored %08x, computed %08x", got, want)
	}
	return d, nil
}

// dataset decodes a data file's payload in format version.
func (p *payload) dataset(meta DatasetMeta, version int) (*Dataset, error) {
	hsize := uint64(datasetHeaderSize)
	if version == 1 {
		hsize = datasetHeaderSizeV1
	}
	if p.left < hsize {
		return nil, corrupt(p.rel, "payload of %d bytes is shorter than the dataset header", p.left)
	}
	var h [datasetHeaderSize]byte
	if err := p.bytes(h[:hsize]); err != nil {
		return nil, err
	}
	rows := binary.LittleEndian.Uint64(h[0:])
	feats := binary.LittleEndian.Uint64(h[8:])
	cols := binary.LittleEndian.Uint64(h[16:])
	hasLabels := binary.LittleEndian.Uint64(h[24:])
	typed := binary.LittleEndian.Uint64(h[32:])
	if rows != uint64(meta.Rows) || feats != uint64(meta.Features) {
		return nil, corrupt(p.rel, "shape %d×%d, metadata says %d×%d", rows, feats, meta.Rows, meta.Features)
	}
	if hasLabels > 1 || (hasLabels == 1) != (cols == 0) {
		return nil, corrupt(p.rel, "bad target layout (columns %d, labels flag %d)", cols, hasLabels)
	}
	if typed > 1 {
		return nil, corrupt(p.rel, "typed flag %d is not 0 or 1", typed)
	}
	// Every size is checked against what is left of the payload before
	// anything is allocated, so a damaged header cannot ask for more
	// memory than the file holds.
	xHi, xCells := bits.Mul64(rows, feats)
	tHi, tCells := bits.Mul64(rows, cols)
	if xHi != 0 || tHi != 0 || typed == 0 && (xCells > p.left/8 || tCells > p.left/8 || xCells+tCells > p.left/8) {
		return nil, corrupt(p.rel, "shape %d×%d+%d does not fit %d payload bytes", rows, feats, cols, p.left+hsize)
	}

	d := &Dataset{Meta: meta}
	var err error
	if typed == 1 {
		d.Columns, err = p.readColumns(rows, feats, meta.FeatureNames)
	} else {
		d.X, err = p.floats("X", xCells)
	}
	if err != nil {
		return nil, err
	}
	if hasLabels == 0 {
		if d.Targets, err = p.floats("targets", tCells); err != nil {
			return nil, err
		}
		if p.left != 0 {
			return nil, corrupt(p.rel, "%d unexpected trailing bytes", p.left)
		}
		return d, nil
	}
	if p.left/4 < rows {
		return nil, corrupt(p.rel, "label section of %d bytes is too short for %d rows", p.left, rows)
	}
	blob := make([]byte, p.left)
	if _, err := io.ReadFull(p.r, blob); err != nil {
		return nil, p.short(err)
	}
	p.left = 0
	if d.Labels, err = splitStrings(blob, int(rows), "label"); err != nil {
		return nil, corrupt(p.rel, "%v", err)
	}
	return d, nil
}

// splitStrings parses n length-prefixed strings (what, for errors) that
// must fill blob exactly. The strings are substrings of blob itself, which
// the caller must never modify afterwards.
func splitStrings(blob []byte, n int, what string) ([]string, error) {
	all := unsafe.String(unsafe.SliceData(blob), len(blob))
	out := make([]string, n)
	off := 0
	for i := range out {
		if len(all)-off < 4 {
			return nil, fmt.Errorf("%s %d: truncated length", what, i)
		}
		l := int(binary.LittleEndian.Uint32(blob[off:]))
		off += 4
		if l > len(all)-off {
			return nil, fmt.Errorf("%s %d: length %d past the end", what, i, l)
		}
		out[i] = all[off : off+l]
		off += l
	}
	if off != len(all) {
		return nil, fmt.Errorf("%d unexpected bytes after the %ss", len(all)-off, what)
	}
	return out, nil
}

// DeleteDataset deletes a dataset: its metadata first, so it disappears
// at once, then its numbers.
func (s *Store) DeleteDataset(ctx context.Context, id string) error {
	if err := checkID("dataset", id); err != nil {
		return err
	}
	if err := s.remove(datasetMetaPath(id)); err != nil {
		return err
	}
	if err := s.remove(datasetDataPath(id)); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}
