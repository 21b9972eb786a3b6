package store

import (
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
	// targets and ignored ones, in the table's order.
	Columns []table.Summary `json:"columns,omitempty"`
	// Warnings are what the upload noticed but accepted: ignored
	// identifier columns, constant columns, dropped rows, an integer target
	// read as classes.
	Warnings []string `json:"warnings,omitempty"`
	// DroppedRows is the number of rows left out because a target was
	// missing.
	DroppedRows int `json:"dropped_rows,omitempty"`
}

// Dataset is a dataset with its numbers. X is row-major Rows×Features.
// Exactly one of Targets (Rows×len(TargetNames)) or Labels (Rows) is set.
type Dataset struct {
	Meta    DatasetMeta
	X       []float64
	Targets []float64
	Labels  []string
	// Columns are typed features; when set X is nil and Meta.Features == len(Columns).
	Columns []table.Column
}

// The numbers of a dataset live in <id>.data, a frame whose payload is
//
//	rows, features, targetCols, hasLabels   4 × uint64 little-endian
//	X                                       rows×features float64 LE, row-major
//	Targets (hasLabels == 0)                rows×targetCols float64 LE
//	Labels  (hasLabels == 1)                rows × (uint32 LE length, bytes)
//
// The metadata lives in <id>.meta as JSON, so listing never touches the
// numbers. Its "format" field (datasetFormat) versions both files: the
// metadata is always read, and checked, before the numbers.
const datasetHeaderSize = 32

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
	hi, cells := bits.Mul64(uint64(m.Rows), uint64(m.Features))
	if hi != 0 || cells > math.MaxInt/8 || uint64(len(d.X)) != cells {
		return 0, fmt.Errorf("%w: X has %d values, want rows×features = %d×%d", ErrInvalidDataset, len(d.X), m.Rows, m.Features)
	}
	if len(m.FeatureNames) != 0 && len(m.FeatureNames) != m.Features {
		return 0, fmt.Errorf("%w: %d feature names for %d features", ErrInvalidDataset, len(m.FeatureNames), m.Features)
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

	n := uint64(datasetHeaderSize + 8*len(d.X) + 8*len(d.Targets))
	if d.Labels != nil {
		for _, l := range d.Labels {
			n += 4 + uint64(len(l))
		}
	}
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
		if _, err := w.Write(h[:]); err != nil {
			return err
		}
		if err := writeFloats(w, d.X); err != nil {
			return err
		}
		if d.Labels == nil {
			return writeFloats(w, d.Targets)
		}
		var lb [4]byte
		for _, l := range d.Labels {
			binary.LittleEndian.PutUint32(lb[:], uint32(len(l)))
			if _, err := w.Write(lb[:]); err != nil {
				return err
			}
			if _, err := io.WriteString(w, l); err != nil {
				return err
			}
		}
		return nil
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
	if err := checkID("dataset", id); err != nil {
		return DatasetMeta{}, err
	}
	rel := datasetMetaPath(id)
	b, err := s.readBytes(rel, kindDatasetMeta)
	if err != nil {
		return DatasetMeta{}, err
	}
	if err := checkFormat(rel, "dataset", b, datasetFormat); err != nil {
		return DatasetMeta{}, err
	}
	var m DatasetMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return DatasetMeta{}, corrupt(rel, "decode: %v", err)
	}
	if m.ID != id {
		return DatasetMeta{}, corrupt(rel, "holds dataset %s", quote(m.ID))
	}
	return m, nil
}

// LoadDataset loads a dataset with its numbers. X and Targets are read
// straight from the file into freshly allocated slices, without an
// intermediate byte buffer.
func (s *Store) LoadDataset(ctx context.Context, id string) (*Dataset, error) {
	meta, err := s.DatasetMeta(ctx, id)
	if err != nil {
		return nil, err
	}
	rel := datasetDataPath(id)
	f, info, err := s.openRegular(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := &crcReader{r: f}
	short := func(err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return corrupt(rel, "truncated while reading")
		}
		return readErr(rel, err)
	}
	if info.Size() < frameOverhd {
		_, err := checkHeader(rel, nil, info.Size(), kindDatasetData)
		return nil, err
	}
	var h [headerSize + datasetHeaderSize]byte
	if _, err := io.ReadFull(cr, h[:headerSize]); err != nil {
		return nil, short(err)
	}
	n, err := checkHeader(rel, h[:headerSize], info.Size(), kindDatasetData)
	if err != nil {
		return nil, err
	}
	if n < datasetHeaderSize {
		return nil, corrupt(rel, "payload of %d bytes is shorter than the dataset header", n)
	}
	if _, err := io.ReadFull(cr, h[headerSize:]); err != nil {
		return nil, short(err)
	}
	dh := h[headerSize:]
	rows := binary.LittleEndian.Uint64(dh[0:])
	feats := binary.LittleEndian.Uint64(dh[8:])
	cols := binary.LittleEndian.Uint64(dh[16:])
	hasLabels := binary.LittleEndian.Uint64(dh[24:])
	if rows != uint64(meta.Rows) || feats != uint64(meta.Features) {
		return nil, corrupt(rel, "shape %d×%d, metadata says %d×%d", rows, feats, meta.Rows, meta.Features)
	}
	if hasLabels > 1 || (hasLabels == 1) != (cols == 0) {
		return nil, corrupt(rel, "bad target layout (columns %d, labels flag %d)", cols, hasLabels)
	}
	// Every size is checked against the payload length before anything is
	// allocated, so a damaged header cannot ask for more memory than the
	// file holds.
	body := n - datasetHeaderSize
	xHi, xCells := bits.Mul64(rows, feats)
	tHi, tCells := bits.Mul64(rows, cols)
	if xHi != 0 || tHi != 0 || xCells > body/8 || tCells > body/8 || xCells+tCells > body/8 {
		return nil, corrupt(rel, "shape %d×%d+%d does not fit %d payload bytes", rows, feats, cols, n)
	}
	rest := body - 8*(xCells+tCells)
	if hasLabels == 0 && rest != 0 {
		return nil, corrupt(rel, "%d unexpected trailing bytes", rest)
	}
	if hasLabels == 1 && rest/4 < rows {
		return nil, corrupt(rel, "label section of %d bytes is too short for %d rows", rest, rows)
	}

	d := &Dataset{Meta: meta, X: make([]float64, xCells)}
	if err := readFloats(cr, d.X); err != nil {
		return nil, short(err)
	}
	if hasLabels == 0 {
		d.Targets = make([]float64, tCells)
		if err := readFloats(cr, d.Targets); err != nil {
			return nil, short(err)
		}
	} else {
		blob := make([]byte, rest)
		if _, err := io.ReadFull(cr, blob); err != nil {
			return nil, short(err)
		}
		if d.Labels, err = splitLabels(blob, int(rows)); err != nil {
			return nil, corrupt(rel, "%v", err)
		}
	}
	want := cr.crc
	var t [trailerSize]byte
	if _, err := io.ReadFull(f, t[:]); err != nil {
		return nil, short(err)
	}
	if got := binary.LittleEndian.Uint32(t[:]); got != want {
		return nil, corrupt(rel, "checksum mismatch: stored %08x, computed %08x", got, want)
	}
	return d, nil
}

// splitLabels parses rows length-prefixed labels that must fill blob
// exactly. The labels are substrings of blob itself, which the caller must
// never modify afterwards.
func splitLabels(blob []byte, rows int) ([]string, error) {
	all := unsafe.String(unsafe.SliceData(blob), len(blob))
	labels := make([]string, rows)
	off := 0
	for i := range labels {
		if len(all)-off < 4 {
			return nil, fmt.Errorf("label %d: truncated length", i)
		}
		l := int(binary.LittleEndian.Uint32(blob[off:]))
		off += 4
		if l > len(all)-off {
			return nil, fmt.Errorf("label %d: length %d past the end", i, l)
		}
		labels[i] = all[off : off+l]
		off += l
	}
	if off != len(all) {
		return nil, fmt.Errorf("%d unexpected bytes after the labels", len(all)-off)
	}
	return labels, nil
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
