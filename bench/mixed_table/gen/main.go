// Command gen writes the mixed benchmark table as CSV: 20 columns, of
// which 13 numbers (n1..n13), 4 text features (t1..t4), 2 dates (d1, d2)
// and the text class "label", with 5% of the feature cells blank. The
// label depends on n1, n2, t1 and the month of d1 plus noise, so that a
// model has something to learn and the scikit-learn comparison has a
// gap to measure. With -numeric it writes instead the all-numeric table
// of the same width (19 numbers, no blanks) that the predict benchmark's
// array rows go to.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

func main() {
	rows := flag.Int("rows", 100_000, "data rows")
	out := flag.String("o", "", "output file (stdout if empty)")
	seed := flag.Uint64("seed", 1, "PCG seed")
	numeric := flag.Bool("numeric", false, "write the all-numeric table of the same width")
	flag.Parse()
	if err := run(*rows, *out, *seed, *numeric); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// levels of the text columns: t1 has 4 (it moves the label), t2 12, t3
// 40 (some of them rare, so the "other" level is used) and t4 a free-text
// grade A..E.
var (
	t1Levels = []string{"north", "south", "east", "west"}
	t2Levels = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	t4Levels = []string{"grade A", "grade B", "grade C", "grade D", "grade E"}
	t1Effect = []float64{1, -1, 0.5, -0.5}
	base     = time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
)

func run(rows int, out string, seed uint64, numeric bool) error {
	f := os.Stdout
	if out != "" {
		var err error
		if f, err = os.Create(out); err != nil {
			return err
		}
		defer f.Close()
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(seed, 2))
	if numeric {
		writeNumeric(w, r, rows)
	} else {
		writeMixed(w, r, rows)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Sync()
}

func writeMixed(w *bufio.Writer, r *rand.Rand, rows int) {
	for i := 1; i <= 13; i++ {
		fmt.Fprintf(w, "n%d,", i)
	}
	w.WriteString("t1,t2,t3,t4,d1,d2,label\n")
	var b []byte
	blank := func() bool { return r.Float64() < 0.05 }
	for range rows {
		b = b[:0]
		n := make([]float64, 13)
		for j := range n {
			n[j] = r.NormFloat64()
			if !blank() {
				b = strconv.AppendFloat(b, math.Round(n[j]*1e4)/1e4, 'f', -1, 64)
			} else {
				n[j] = 0
			}
			b = append(b, ',')
		}
		k1 := r.IntN(len(t1Levels))
		cells := []string{t1Levels[k1], t2Levels[r.IntN(len(t2Levels))], fmt.Sprintf("city%02d", int(40*r.Float64()*r.Float64())), t4Levels[r.IntN(len(t4Levels))]}
		for j, c := range cells {
			if !blank() {
				b = append(b, c...)
			} else if j == 0 {
				k1 = -1
			}
			b = append(b, ',')
		}
		d1 := base.Add(time.Duration(r.Int64N(int64(8 * 365 * 24 * time.Hour))))
		month := float64(d1.Month())
		if !blank() {
			b = d1.AppendFormat(b, time.DateOnly)
		} else {
			month = 6.5
		}
		b = append(b, ',')
		if !blank() {
			b = base.Add(time.Duration(r.Int64N(int64(8*365*24*time.Hour)))).Truncate(time.Minute).AppendFormat(b, "2006-01-02 15:04:05")
		}
		b = append(b, ',')
		score := 1.5*n[0] - n[1] + 0.8*math.Cos(2*math.Pi*(month-1)/12) + 0.3*r.NormFloat64()
		if k1 >= 0 {
			score += t1Effect[k1]
		}
		switch {
		case score < -0.7:
			b = append(b, "low"...)
		case score < 0.7:
			b = append(b, "mid"...)
		default:
			b = append(b, "high"...)
		}
		b = append(b, '\n')
		w.Write(b)
	}
}

func writeNumeric(w *bufio.Writer, r *rand.Rand, rows int) {
	for i := 1; i <= 19; i++ {
		fmt.Fprintf(w, "n%d,", i)
	}
	w.WriteString("label\n")
	var b []byte
	for range rows {
		b = b[:0]
		var s float64
		for j := range 19 {
			v := math.Round(r.NormFloat64()*1e4) / 1e4
			if j < 2 {
				s += v
			}
			b = strconv.AppendFloat(b, v, 'f', -1, 64)
			b = append(b, ',')
		}
		b = append(b, []string{"low", "high"}[btoi(s > 0)]...)
		b = append(b, '\n')
		w.Write(b)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
