package realdata

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// synthetic builds a table of n rows with the header and a row function
// fed by a PCG seeded with seed.
func synthetic(n int, seed uint64, header []string, row func(r *rand.Rand, i int) []string) table {
	r := rand.New(rand.NewPCG(seed, 1))
	t := table{header: header}
	for i := range n {
		t.rows = append(t.rows, row(r, i))
	}
	return t
}

// TestSyntheticTables trains on tables whose answer is known by
// construction, through upload, training and raw-row predict, and checks
// the held-out accuracy the construction allows.
func TestSyntheticTables(t *testing.T) {
	c := startServer(t)
	colours := []string{"red", "green", "blue", "amber"}

	t.Run("category decides the class", func(t *testing.T) {
		c.tb = t
		// The class is a function of the colour alone and x is noise, so a
		// model that one-hot encodes the colour can be right on every row.
		all := synthetic(400, 1, []string{"x", "colour", "class"}, func(r *rand.Rand, i int) []string {
			k := r.IntN(len(colours))
			return []string{fmt.Sprintf("%.3f", r.NormFloat64()), colours[k], []string{"a", "b", "c", "a"}[k]}
		})
		train, held := all.split(2, 0.2)
		ds := c.upload("name=colour&target=class", train.csv(t))
		if got := ds.column(t, "colour").Type; got != "category" {
			t.Fatalf("colour inferred as %s, want category", got)
		}
		c.train("colour", ds.ID, 8, 40, 0.02)
		p := c.predict("colour", held.rawRows(t, c.inputs("colour")))
		if acc := accuracy(p.Predictions, held.column(t, "class")); acc != 1 {
			t.Errorf("accuracy %.4f on %d held-out rows, want 1: the colour alone decides the class", acc, len(held.rows))
		}
	})

	t.Run("a blank predicts the target", func(t *testing.T) {
		c.tb = t
		// 30% of x is blank exactly when the class is "yes"; the present
		// values are the same noise in both classes, so only the missing
		// indicator separates them: 1.0 is reachable, 0.95 asked.
		all := synthetic(500, 3, []string{"x", "class"}, func(r *rand.Rand, i int) []string {
			if r.Float64() < 0.3 {
				return []string{"", "yes"}
			}
			return []string{fmt.Sprintf("%.3f", r.NormFloat64()), "no"}
		})
		train, held := all.split(4, 0.2)
		ds := c.upload("name=blank&target=class", train.csv(t))
		x := ds.column(t, "x")
		if x.Type != "number" || x.Missing == 0 {
			t.Fatalf("x is %+v, want a number column with missing cells", x)
		}
		c.train("blank", ds.ID, 4, 40, 0.02)
		p := c.predict("blank", held.rawRows(t, c.inputs("blank")))
		if acc := accuracy(p.Predictions, held.column(t, "class")); acc < 0.95 {
			t.Errorf("accuracy %.4f on %d held-out rows, want >= 0.95 from the missing indicator", acc, len(held.rows))
		}
	})

	t.Run("unseen levels at predict time", func(t *testing.T) {
		c.tb = t
		all := synthetic(200, 5, []string{"colour", "class"}, func(r *rand.Rand, i int) []string {
			k := r.IntN(3)
			return []string{colours[k], []string{"a", "b", "c"}[k]}
		})
		ds := c.upload("name=unseen&target=class", all.csv(t))
		c.train("unseen", ds.ID, 8, 30, 0.02)
		p := c.predict("unseen", []any{
			map[string]any{"colour": "red"},
			map[string]any{"colour": "purple"},
			map[string]any{"colour": "teal"},
		})
		if p.Predictions[0] != "a" {
			t.Errorf("red predicted %s, want a", p.Predictions[0])
		}
		if !warningsMention(p.Warnings, "colour", "2 of 3 rows") {
			t.Errorf("warnings %q, want one counting the 2 rows of unseen colours", p.Warnings)
		}
	})

	t.Run("a date column", func(t *testing.T) {
		c.tb = t
		// The class is the season of the date (April to September or
		// not), which the month's sine and cosine separate by a line.
		start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		all := synthetic(600, 7, []string{"day", "class"}, func(r *rand.Rand, i int) []string {
			d := start.AddDate(0, 0, r.IntN(4*365))
			class := "winter"
			if m := d.Month(); m >= time.April && m <= time.September {
				class = "summer"
			}
			return []string{d.Format(time.DateOnly), class}
		})
		train, held := all.split(8, 0.2)
		ds := c.upload("name=season&target=class", train.csv(t))
		if got := ds.column(t, "day").Type; got != "datetime" {
			t.Fatalf("day inferred as %s, want datetime", got)
		}
		c.train("season", ds.ID, 16, 80, 0.02)
		p := c.predict("season", held.rawRows(t, c.inputs("season")))
		// Days at the turn of a season sit next to the boundary; 0.9
		// leaves room for them.
		if acc := accuracy(p.Predictions, held.column(t, "class")); acc < 0.9 {
			t.Errorf("accuracy %.4f on %d held-out rows, want >= 0.9 from the month", acc, len(held.rows))
		}
	})

	t.Run("an identifier column is ignored", func(t *testing.T) {
		c.tb = t
		all := synthetic(100, 9, []string{"id", "colour", "class"}, func(r *rand.Rand, i int) []string {
			k := r.IntN(2)
			return []string{fmt.Sprintf("user-%05d", i), colours[k], []string{"a", "b"}[k]}
		})
		ds := c.upload("name=ident&target=class", all.csv(t))
		if id := ds.column(t, "id"); id.Role != "ignored" {
			t.Fatalf("id is a %s (%s), want ignored as identifier-like", id.Role, id.Reason)
		}
		if !warningsMention(ds.Warnings, "id") {
			t.Errorf("warnings %q, want one naming the ignored id column", ds.Warnings)
		}
		c.train("ident", ds.ID, 4, 30, 0.02)
		var names []string
		for _, in := range c.inputs("ident") {
			names = append(names, in.Name)
		}
		if !slices.Equal(names, []string{"colour"}) {
			t.Errorf("model inputs %q, want only colour", names)
		}
	})

	t.Run("an integer-coded target is classes", func(t *testing.T) {
		c.tb = t
		all := synthetic(300, 11, []string{"colour", "label"}, func(r *rand.Rand, i int) []string {
			k := r.IntN(3)
			return []string{colours[k], fmt.Sprint(k)}
		})
		train, held := all.split(12, 0.2)
		ds := c.upload("name=coded&target=label", train.csv(t))
		if ds.Task != "multiclass" || !slices.Equal(ds.Classes, []string{"0", "1", "2"}) {
			t.Fatalf("task %s classes %q, want multiclass over 0, 1, 2", ds.Task, ds.Classes)
		}
		if !warningsMention(ds.Warnings, "task=regression") {
			t.Errorf("warnings %q, want the hint that task=regression fits it as a number", ds.Warnings)
		}
		c.train("coded", ds.ID, 8, 30, 0.02)
		p := c.predict("coded", held.rawRows(t, c.inputs("coded")))
		if acc := accuracy(p.Predictions, held.column(t, "label")); acc != 1 {
			t.Errorf("accuracy %.4f, want 1: the colour decides the label", acc)
		}
		reg := c.upload("name=coded-reg&target=label&task=regression", train.csv(t))
		if reg.Task != "regression" {
			t.Errorf("with task=regression the task is %s", reg.Task)
		}
	})

	t.Run("a headerless file", func(t *testing.T) {
		c.tb = t
		// Iris-like rows without their header: numbers and a text class,
		// so the first row looks like the rows below it.
		all := synthetic(150, 13, []string{"c1", "c2", "c3"}, func(r *rand.Rand, i int) []string {
			k := r.IntN(2)
			return []string{fmt.Sprintf("%.2f", float64(k)*3+r.Float64()), fmt.Sprintf("%.2f", r.Float64()), []string{"setosa", "virginica"}[k]}
		})
		body := all.csv(t)
		body = body[strings.IndexByte(string(body), '\n')+1:]
		r := c.do(http.MethodPost, "/v1/datasets?name=headerless", "text/csv", body)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "header=false") {
			t.Fatalf("headerless upload: %d %s, want a 400 advising header=false", r.status, r.body)
		}
		ds := c.upload("name=headerless&header=false&target=c3", body)
		if ds.Rows != len(all.rows) {
			t.Errorf("rows %d, want all %d", ds.Rows, len(all.rows))
		}
		c.train("headerless", ds.ID, 4, 30, 0.02)
		p := c.predict("headerless", all.rawRows(t, c.inputs("headerless")))
		if acc := accuracy(p.Predictions, all.column(t, "c3")); acc < 0.95 {
			t.Errorf("accuracy %.4f, want >= 0.95: c1 separates the classes by 2", acc)
		}
	})
}
