package store

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Format versions of the store's durable kinds. Each constant is the
// version this build writes and the newest it reads; every version from 1
// up to it is read. A file of a newer version is refused with a
// *FormatError (errors.Is ErrNewerFormat) before anything else in it is
// decoded: JSON readers ignore fields they do not know, so without the
// check an older build would silently misread a record that a newer one
// gave a new meaning, and binary layouts would be misread outright.
//
// The JSON records carry their version as a top-level "format" field; a
// record without one is version 1, as every record was written before the
// field existed. Bump a constant only when an older build would misread
// the new files; a new field that older builds may ignore needs no bump.
const (
	// frameVersion is the frame around every file (frame.go), in its
	// header.
	frameVersion = 1
	// jobFormat is a job record, jobs/<id>.job. Version 1 holds the
	// history inline ("history"); version 2 holds its length
	// ("history_len") and the entries are in jobs/<id>.history
	// (history.go), so that an epoch appends to the history instead of
	// rewriting it. An older build would read a version 2 record as a job
	// without history.
	jobFormat = 2
	// JobSpecVersion is the version of a job record's spec, the
	// "version" field of JobRecord.Spec; a spec without one is version 1.
	// The spec's content belongs to internal/jobs, which writes this
	// version and bumps it here when an older build would misread a spec
	// (a new option whose absence does not mean what an older build does).
	// Version 2 added training.precision, float32 for new jobs: an older
	// build would ignore the field and train such a spec in float64.
	// Version 1 specs, without it, still train in float64.
	JobSpecVersion = 2
	// datasetFormat is a dataset: <id>.meta carries it for the pair, and
	// it covers the layout of <id>.data (dataset.go), which is read only
	// after the metadata. Version 2 added typed feature columns; version 1
	// files are still read.
	datasetFormat = 2
	// modelMetaFormat is a model version's metadata, models/<name>/v<N>.meta.
	// The model file beside it has the engine's own format version.
	modelMetaFormat = 1
	// counterFormat is a model name's version counter, models/<name>/counter.
	counterFormat = 1
)

// formatField is the first thing read from every JSON record.
type formatField struct {
	Format *int `json:"format"`
}

// checkFormat reads the "format" field of the JSON record b, stored at
// rel, and refuses a version newer than newest or below 1.
func checkFormat(rel, what string, b []byte, newest int) error {
	_, err := recordFormat(rel, what, b, newest)
	return err
}

// recordFormat is checkFormat, also returning the record's version (1 when
// it has no "format" field).
func recordFormat(rel, what string, b []byte, newest int) (int, error) {
	var f formatField
	if err := json.Unmarshal(b, &f); err != nil {
		return 0, corrupt(rel, "decode: %v", err)
	}
	if err := checkVersion1(rel, what, f.Format, newest); err != nil {
		return 0, err
	}
	if f.Format == nil {
		return 1, nil
	}
	return *f.Format, nil
}

// checkVersion1 checks a version field that, absent (nil), means 1.
func checkVersion1(rel, what string, v *int, newest int) error {
	switch {
	case v == nil:
		return nil
	case *v < 1:
		return corrupt(rel, "%s format version %d is not valid", what, *v)
	case *v > newest:
		return &FormatError{Path: rel, What: what, Version: *v, Newest: newest}
	}
	return nil
}

// withFormat encodes v, which must encode as a JSON object without a
// "format" key of its own, with a top-level "format" field first.
func withFormat(format int, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("record encodes as %.20q, not as a JSON object", b)
	}
	head := `{"format":` + strconv.Itoa(format)
	if len(b) == 2 {
		return []byte(head + "}"), nil
	}
	return append([]byte(head+","), b[1:]...), nil
}

// FormatError reports a stored file written in a format version newer than
// this build reads. It wraps ErrNewerFormat. Nothing in the file has been
// decoded or changed.
type FormatError struct {
	Path    string // relative to the data directory
	What    string // the kind of record: "job record", "frame", ...
	Version int    // found in the file
	Newest  int    // the newest version this build reads
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("store: %s: %s format version %d is newer than this build reads (%d); upgrade backpropd",
		e.Path, e.What, e.Version, e.Newest)
}

// Unwrap returns ErrNewerFormat.
func (e *FormatError) Unwrap() error { return ErrNewerFormat }
