// Package table holds typed tabular data as it travels from an upload to a
// model: columns of numbers, categories and date-times with their missing
// cells, and the per-column summary a dataset reports about itself.
//
// It is a leaf package of plain data, so that ingest (which builds tables),
// store (which keeps them), engine (which learns preprocessing from them)
// and api (which builds them from prediction rows) share one vocabulary
// without importing each other.
package table

import (
	"math"
	"time"
)

// Kind is the type of a column.
type Kind string

// Column kinds.
const (
	// Number: every present cell is a finite number.
	Number Kind = "number"
	// Category: text, booleans or declared codes, stored as codes into a
	// level table.
	Category Kind = "category"
	// Datetime: dates or date-times, stored as seconds since the Unix epoch
	// in UTC.
	Datetime Kind = "datetime"
)

// Missing is the code of a missing cell in a category column.
const Missing int32 = -1

// Column is one input column, Rows cells long.
//
// A Number or Datetime column keeps its cells in Values, NaN where a cell
// is missing; a Datetime's values are seconds since 1970-01-01T00:00:00Z,
// and HasTime says whether any cell gave a time of day. A Category column
// keeps Codes, indices into Levels, with Missing where a cell is missing;
// each level appears once in Levels. The other fields of a kind are nil.
type Column struct {
	Name    string
	Kind    Kind
	Values  []float64
	Codes   []int32
	Levels  []string
	HasTime bool
}

// Len is the number of cells of c.
func (c *Column) Len() int {
	if c.Kind == Category {
		return len(c.Codes)
	}
	return len(c.Values)
}

// IsMissing reports whether cell i of c is missing.
func (c *Column) IsMissing(i int) bool {
	if c.Kind == Category {
		return c.Codes[i] == Missing
	}
	return math.IsNaN(c.Values[i])
}

// Role is what a column of an uploaded table is used for.
type Role string

// Column roles.
const (
	Feature Role = "feature"
	Target  Role = "target"
	Ignored Role = "ignored"
)

// LevelCount is a category level and the number of rows that have it.
type LevelCount struct {
	Level string `json:"level"`
	Count int    `json:"count"`
}

// Summary describes one column of an uploaded table, as a dataset reports
// it: its name, type and role and why, its missing and distinct counts,
// and, by type, its range and moments, its most frequent levels, or its
// first and last date. Numbers are over the present cells.
type Summary struct {
	Name     string `json:"name"`
	Type     Kind   `json:"type"`
	Role     Role   `json:"role"`
	Reason   string `json:"reason"`
	Missing  int    `json:"missing"`
	Distinct int    `json:"distinct"`
	// Number. Mean and Std are absent when they overflow float64 (values
	// near ±1.8e308).
	Min  *float64 `json:"min,omitempty"`
	Max  *float64 `json:"max,omitempty"`
	Mean *float64 `json:"mean,omitempty"`
	Std  *float64 `json:"std,omitempty"`
	// Category: the most frequent levels, most frequent first.
	TopLevels []LevelCount `json:"top_levels,omitempty"`
	// Datetime.
	First *time.Time `json:"first,omitempty"`
	Last  *time.Time `json:"last,omitempty"`
}
