// Package ingest parses uploaded datasets, CSV or JSON, into the store's
// dataset form. It streams CSV and JSON as they arrive, straight into
// the numeric buffers, so an upload is held in memory as numbers (about
// twice: once as it arrives, once as the one slice it ends in), never as
// its text or a tree of decoded values, and names the line and column (or
// JSON path) of every problem. It knows nothing of HTTP.
package ingest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

// MaxClasses caps the distinct labels of a classification target; more
// almost always means a numeric or id column was picked as the target.
const MaxClasses = 10000

// ParseTask checks a task name given by the user; "" means infer it.
func ParseTask(s string) (engine.Task, error) {
	switch t := engine.Task(s); t {
	case "", engine.TaskRegression, engine.TaskBinary, engine.TaskMulticlass:
		return t, nil
	}
	return "", fmt.Errorf("must be regression, binary or multiclass, got %q", truncate(s))
}

// targets holds the raw target cells, rows × k, before the task is known.
type targets struct {
	k     int
	cells []string
	// labels is set when the input marked the values as labels (JSON
	// strings): they are never read as numbers.
	labels bool
}

// locator returns an *Error for the target cell at row (0-based data row)
// and target column j.
type locator func(row, j int, msg string) *Error

// assemble decides the task and fills the dataset's targets.
//
// With task "" it infers: numeric targets are regression; otherwise a
// single target column of labels is binary with 2 classes and multiclass
// with more. Classification needs a single target column of labels, or, for
// binary, one or more 0/1 columns (multi-label).
//
// With intClasses, an inferred numeric target of one column whose values
// are all integers, with 2 to MaxIntegerClasses distinct ones, is read as
// classes instead, with a warning in d.Meta.Warnings.
func assemble(d *store.Dataset, explicit engine.Task, t targets, at locator, intClasses bool) error {
	task := explicit
	rows := d.Meta.Rows
	nums := func() ([]float64, error) {
		out := make([]float64, len(t.cells))
		for i, c := range t.cells {
			v, err := parseNumber(c)
			if err != nil {
				return nil, at(i/t.k, i%t.k, err.Error())
			}
			out[i] = v
		}
		return out, nil
	}
	if !t.labels {
		// A cell that reads as a number but not a finite one (NaN, Inf,
		// 1e999) is an error, not a class label.
		for i, c := range t.cells {
			c = strings.TrimSpace(c)
			if c == "" || !strings.ContainsRune("0123456789+-.nNiI", rune(c[0])) {
				continue // a label: ParseFloat would only build an error
			}
			if v, err := strconv.ParseFloat(c, 64); (err == nil && (math.IsNaN(v) || math.IsInf(v, 0))) || errors.Is(err, strconv.ErrRange) {
				return at(i/t.k, i%t.k, fmt.Sprintf("not a finite number: %q", truncate(c)))
			}
		}
	}
	if task == "" {
		task = engine.TaskRegression
		if t.labels {
			task = engine.TaskMulticlass
		} else {
			for _, c := range t.cells {
				if _, err := parseNumber(c); err != nil {
					task = engine.TaskMulticlass
					break
				}
			}
		}
		if task == engine.TaskRegression && intClasses && t.k == 1 {
			if n, ok := integerClasses(t.cells); ok {
				task = engine.TaskMulticlass
				d.Meta.Warnings = append(d.Meta.Warnings, fmt.Sprintf(
					"target %s holds %d distinct integers and is read as classes; pass task=regression to fit it as a number",
					d.Meta.TargetNames[0], n))
			}
		}
		if task == engine.TaskMulticlass && t.k > 1 {
			for i, c := range t.cells {
				if _, err := parseNumber(c); err != nil {
					return at(i/t.k, i%t.k, fmt.Sprintf("%s; with more than one target column every target must be a number", err))
				}
			}
		}
	}
	d.Meta.Task = string(task)
	switch {
	case task == engine.TaskRegression:
		if t.labels {
			return at(0, 0, "regression targets must be numbers, not strings")
		}
		v, err := nums()
		if err != nil {
			return err
		}
		d.Targets = v
		return nil
	case task == engine.TaskBinary && t.k > 1:
		v, err := nums()
		if err != nil {
			return err
		}
		for i, x := range v {
			if x != 0 && x != 1 {
				return at(i/t.k, i%t.k, fmt.Sprintf("multi-label binary targets must be 0 or 1, got %v", x))
			}
		}
		d.Targets = v
		return nil
	case t.k > 1:
		return at(0, 1, fmt.Sprintf("task %s needs a single target column of class labels, got %d columns", task, t.k))
	}
	labels := make([]string, rows)
	// seen maps each class to one copy of its text, which every row of
	// the class shares.
	seen := map[string]string{}
	for i, c := range t.cells {
		c = strings.TrimSpace(c)
		if c == "" {
			return at(i, 0, "missing class label")
		}
		if !t.labels {
			// Numeric labels are normalized so that "1" and "1.0" are one class.
			if v, err := parseNumber(c); err == nil {
				c = strconv.FormatFloat(v, 'g', -1, 64)
			}
		}
		if s, ok := seen[c]; ok {
			labels[i] = s
			continue
		}
		seen[c] = c
		labels[i] = c
		if msg := engine.CheckName(c); msg != "" {
			return at(i, 0, "class label "+msg)
		}
		if len(seen) > MaxClasses {
			return at(i, 0, fmt.Sprintf("more than %d distinct classes; is this the right target column?", MaxClasses))
		}
	}
	classes := make([]string, 0, len(seen))
	for c := range seen {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	switch {
	case len(classes) < 2:
		return at(0, 0, fmt.Sprintf("a classification target needs at least 2 classes, found %d", len(classes)))
	case task == engine.TaskBinary && len(classes) != 2:
		return at(0, 0, fmt.Sprintf("task binary needs exactly 2 classes, found %d", len(classes)))
	case explicit == "" && len(classes) == 2:
		task = engine.TaskBinary
	}
	d.Meta.Task = string(task)
	d.Meta.Classes = classes
	d.Labels = labels
	return nil
}

// integerClasses reports whether every cell is an integer, with 2 to
// MaxIntegerClasses distinct values, and how many.
func integerClasses(cells []string) (int, bool) {
	seen := map[float64]bool{}
	for _, c := range cells {
		v, err := parseNumber(c)
		if err != nil || v != math.Trunc(v) {
			return 0, false
		}
		if !seen[v] {
			if len(seen) == MaxIntegerClasses {
				return 0, false
			}
			seen[v] = true
		}
	}
	return len(seen), len(seen) >= 2
}

// errMissingValue is parseNumber's error for an empty cell.
var errMissingValue = errors.New("missing value")

// notNumber is parseNumber's error for text that is not a finite number.
// It formats its message only when asked: in a typed table most text cells
// are read as text, and their errors are never shown.
type notNumber string

func (s notNumber) Error() string { return fmt.Sprintf("not a finite number: %q", truncate(string(s))) }

// parseNumber parses a finite float64.
func parseNumber(s string) (float64, error) {
	// Fast path for plain integers of up to 15 digits, the common cell in
	// pixel and count data: exact in float64, and several times faster
	// than strconv.ParseFloat.
	if n := len(s); n > 0 && n <= 16 {
		i := 0
		if s[0] == '-' {
			i = 1
		}
		if i < n && n-i <= 15 {
			var v int64
			j := i
			for ; j < n && s[j] >= '0' && s[j] <= '9'; j++ {
				v = v*10 + int64(s[j]-'0')
			}
			if j == n {
				if i == 1 {
					return -float64(v), nil
				}
				return float64(v), nil
			}
		}
	}
	if len(s) > 0 && (s[0] <= ' ' || s[len(s)-1] <= ' ') {
		s = strings.TrimSpace(s)
	}
	if s == "" {
		return 0, errMissingValue
	}
	// Text is the common failure in typed tables, one a cell: it is
	// refused without building strconv's error. A finite number starts
	// with a digit, a sign or a point.
	if c := s[0]; !(c >= '0' && c <= '9') && c != '-' && c != '+' && c != '.' {
		return 0, notNumber(s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, notNumber(s)
	}
	return v, nil
}

// maxListedColumns bounds the column names an error lists: enough for
// any hand-made table, short enough for a header of thousands of pixels.
const maxListedColumns = 20

// columnList is names for an error message: each name shortened by
// truncate, at most maxListedColumns of them, then how many more there are.
func columnList(names []string) string {
	n := min(len(names), maxListedColumns)
	parts := make([]string, n)
	for i, name := range names[:n] {
		parts[i] = truncate(name)
	}
	s := strings.Join(parts, ", ")
	if more := len(names) - n; more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
