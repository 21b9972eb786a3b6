package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/backpropd/backpropd/internal/store"
)

// datasetBytes encodes everything ReadCSV returns of d, floats by their
// bits (so that NaN, -0 and the last bit all count), for a byte-for-byte
// comparison.
func datasetBytes(tb testing.TB, d *store.Dataset) []byte {
	tb.Helper()
	var b bytes.Buffer
	// gob, not JSON: a summary may hold an infinity (the mean of 1e308s).
	if err := gob.NewEncoder(&b).Encode(d.Meta); err != nil {
		tb.Fatal(err)
	}
	floats := func(name string, x []float64) {
		fmt.Fprintf(&b, "\n%s %d:", name, len(x))
		for _, v := range x {
			fmt.Fprintf(&b, " %x", math.Float64bits(v))
		}
	}
	x := d.X
	for _, p := range d.XParts {
		x = append(x, p...)
	}
	floats("X", x)
	floats("targets", d.Targets)
	fmt.Fprintf(&b, "\nlabels %q", d.Labels)
	for _, c := range d.Columns {
		fmt.Fprintf(&b, "\ncolumn %q %s time=%v codes %v levels %q", c.Name, c.Kind, c.HasTime, c.Codes, c.Levels)
		floats("values", c.Values)
	}
	return b.Bytes()
}

// readCSVWith reads in with the parallel path on or off, in blocks of
// chunk bytes, and returns the dataset's bytes or the error's text.
func readCSVWith(tb testing.TB, in []byte, opt CSVOptions, parallel bool, chunk int) string {
	tb.Helper()
	defer func(p bool, c int) { csvParallel, csvChunkSize = p, c }(csvParallel, csvChunkSize)
	csvParallel, csvChunkSize = parallel, chunk
	d, err := ReadCSV(context.Background(), bytes.NewReader(in), opt)
	if err != nil {
		var ie *Error
		var ies *Errors
		kind := "other"
		switch {
		case errors.As(err, &ies):
			kind = "*Errors"
		case errors.As(err, &ie):
			kind = fmt.Sprintf("*Error line=%d column=%d field=%q", ie.Line, ie.Column, ie.Field)
		}
		return fmt.Sprintf("error %s too-large=%v memory=%v: %v", kind, errors.Is(err, ErrTooLarge), errors.Is(err, ErrMemory), err)
	}
	return string(datasetBytes(tb, d))
}

// checkSameAsSerial fails unless the parallel path reads in exactly as
// the serial path does, for every block size in chunks.
func checkSameAsSerial(tb testing.TB, in []byte, opt CSVOptions, chunks []int) {
	tb.Helper()
	want := readCSVWith(tb, in, opt, false, 1<<20)
	for _, c := range chunks {
		for _, parts := range []bool{false, true} {
			o := opt
			o.XParts = parts
			if got := readCSVWith(tb, in, o, true, c); got != want {
				tb.Fatalf("blocks of %d bytes (XParts %v) read %q\nas\n%.2000s\nserially\n%.2000s", c, parts, in, got, want)
			}
		}
	}
}

// csvCorpus are small files of every kind the parser meets: plain
// numbers, CRLF, a BOM, blank lines, quotes (spanning lines too), missing
// cells and targets, text that makes typed columns, rows of the wrong
// length, bad quotes, dialects, no header, no final newline.
var csvCorpus = []string{
	"a,b,y\n1,2,3\n4,5,6\n",
	"a,b,y\n1,2,3\n4,5,6",
	"\ufeffa,y\r\n1,p\r\n2,q\r\n",
	"a,y\r\n1,p\r\n\r\n2,q\r",
	"a,y\n1,\"x\ny\"\n2,z\n",
	"a,y\n1,2\n3,",
	"x,\"label, with comma\"\n1,\"he said \"\"hi\"\"\"\n2,b\n",
	"\"a\nb\",y\n1,2\n3,4\n",
	"a,p,q\n1,0,1\n2,1,0\n",
	"a,y\n1e308,1.0\n-0,1\n5e-324,2\n",
	"a,y\n 1 , 1\n2,1.0\n3,x\n",
	"a,y\n1,\"\r\"\n2,b\n",
	"a,b,c,y\n1,red,yes,0\n,blue,no,1\nNA,red,?,0\n",
	"a,b,y\n1,2,p\n3,4,q\n5,x,p\n6,7,q\n8,9,p\n",
	"a,b,y\n1,2,p\n3,4\n5,6,q\n",
	"a,b,y\n1,2,p\n3,4,5,q\n5,6,q\n",
	"a,b,y\n1,2,p\n3,4,\n5,6,NA\n7,8,q\n",
	"a,b,y\n1,2,p\n3,4,\"q\"\n5,6,q\n",
	"a,b,y\n1,2,p\n3,4,q\"\n5,6,q\n",
	"a,b,y\n1,2,p\n3,\"4\n5,6,q\n",
	"a;b;y\n1,5;2;p\n2,25;3;q\n",
	"a\tb\ty\n1\t2\tp\n2\t3\tq\n",
	"a|b|y\n1|2|p\n2|3|q\n",
	"5.1,3.5,setosa\n4.9,3.0,setosa\n7.0,3.2,versicolor\n",
	"a,y\n1,p\n\n\n2,q\n\n",
	"a,y\n.5,p\n5.,q\n-.25,p\n+1,q\n0x10,p\n1_0,q\n",
	"a,y\n1234567890123456,p\n123456789012345,q\n0.1234567890123456,p\n",
	"a,b,y\n-0,-0.0,p\n00012,1.50,q\n",
	"a,y\nNaN,1\n",
	"a,y\n1,inf\n2,3\n",
	"a,\"y\n1,2\n",
	"a,a\n1,2\n",
	"1,2\n3,4\n",
	"a,y\n",
	"a,y\n\n",
	"",
	// Missing numbers: blank, missing tokens (spaced, quoted too), a
	// column of nothing else, a missing cell in a dropped row.
	"a,b,y\n1,,p\n2,NA,q\n3,4,p\n",
	"a,b,y\n1,,p\n2,,q\n",
	"a,b,y\n1, NA ,p\n2,\"?\",q\n3,NaN,p\n4,5,q\n",
	"a,b,y\n1,,\n2,3,q\n4,5,p\n",
	"a,b,y\n1,2,p\n,3,q\n4,x,p\n",
	// Quoted cells as R's write.csv writes them, and quotes of every
	// other kind beside them.
	"\"a\",\"y\"\n1,\"p\"\n2,\"q\"\n",
	"a,y\n\"1\",p\n\"\",q\n3,\"\"\n",
	"a,y\n1,\"p\"x\n2,q\n",
	"a,y\n1,\"p\"\"q\"\n2,q\n",
	"a,y\n1\"2,\n3,q\n",
	"a,y\n1,\"p\r\"\r\n2,\"q\"\r\n",
	"a,b,y\n1,2,\"p\"\n3,\"4\",\"q\"\n5,\"x\ny\",\"p\"\n",
	"a,b,y\n1,2,\"p\n\"\n3,4,\"q\"\n",
	"a,b,y\n1, \"2\",p\n3,4,q\n",
	"a,b,y\n1,2,\"NA\"\n3,4,\"q\"\n5,6,\"p\"\n",
}

// TestParallelSameAsSerial: for every file of the corpus and every block
// size from one byte to the whole file, so that a block boundary falls at
// every byte (inside quoted fields too), the parallel path gives the same
// dataset, byte for byte, or the same error as the serial path.
func TestParallelSameAsSerial(t *testing.T) {
	opts := map[string]CSVOptions{
		"default":     {},
		"no header":   {NoHeader: true},
		"na -1":       {NAValues: []string{"-1", "?"}},
		"two targets": {Targets: []string{"a", "y"}},
		"max cells":   {MaxCells: 3},
	}
	for _, in := range csvCorpus {
		chunks := make([]int, 0, len(in)+1)
		for c := 1; c <= len(in)+1; c++ {
			chunks = append(chunks, c)
		}
		for name, opt := range opts {
			t.Run(fmt.Sprintf("%s/%q", name, in), func(t *testing.T) {
				checkSameAsSerial(t, []byte(in), opt, chunks)
			})
		}
	}
}

// TestParallelLongLines: a line longer than the largest block a line may
// grow is left to the serial path, with all after it, and reads the same.
func TestParallelLongLines(t *testing.T) {
	defer func(n int) { csvMaxLineBlock = n }(csvMaxLineBlock)
	csvMaxLineBlock = 8
	for _, in := range csvCorpus {
		checkSameAsSerial(t, []byte(in), CSVOptions{}, []int{1, 2, 3, 5, 8})
	}
}

// randomTable writes a random CSV file: mostly numbers of many forms,
// with, by chance, quoted labels, CRLF, a BOM, blank lines, quoted cells (some with
// newlines, delimiters and doubled quotes), missing cells and targets,
// missing tokens, text cells and rows of the wrong length.
func randomTable(r *rand.Rand) []byte {
	var b bytes.Buffer
	cols := 1 + r.IntN(6)
	nl := "\n"
	if r.IntN(4) == 0 {
		nl = "\r\n"
	}
	if r.IntN(5) == 0 {
		b.WriteString("\ufeff")
	}
	for c := range cols {
		fmt.Fprintf(&b, "c%d,", c)
	}
	b.WriteString("y" + nl)
	odd := r.IntN(3) // 0: plain numbers only
	rows := 1 + r.IntN(60)
	quoteLabels := r.IntN(3) == 0
	cell := func() string {
		if odd > 0 && r.IntN(40) == 0 {
			switch r.IntN(9) {
			case 0:
				return ""
			case 1:
				return "NA"
			case 2:
				return "text"
			case 3:
				return `"5"`
			case 4:
				return "\"a,b\nc\""
			case 5:
				return `"say ""hi"""`
			case 6:
				return " 7 "
			case 7:
				return "x\"y"
			default:
				return "1e3"
			}
		}
		switch r.IntN(5) {
		case 0:
			return strconv.Itoa(r.IntN(256))
		case 1:
			return strconv.FormatFloat(float64(r.IntN(2000000)-1000000)/1000, 'f', -1, 64)
		case 2:
			return strconv.FormatFloat(r.NormFloat64(), 'g', -1, 64)
		case 3:
			return strconv.FormatFloat(r.Float64()*100, 'f', r.IntN(8), 64)
		}
		return strconv.Itoa(r.IntN(10))
	}
	for range rows {
		if odd > 0 && r.IntN(30) == 0 {
			b.WriteString(nl)
		}
		n := cols + 1
		if odd > 0 && r.IntN(50) == 0 {
			n += r.IntN(3) - 1
		}
		for c := range n {
			if c > 0 {
				b.WriteByte(',')
			}
			if c == n-1 {
				label := []string{"p", "q", "r", "1", "2"}[r.IntN(5)]
				if quoteLabels {
					label = `"` + label + `"`
				}
				b.WriteString(label)
				continue
			}
			b.WriteString(cell())
		}
		b.WriteString(nl)
	}
	if r.IntN(3) == 0 {
		b.Truncate(b.Len() - len(nl))
	}
	return b.Bytes()
}

// TestParallelSameAsSerialRandom: random tables read the same on both
// paths, in blocks of random sizes and of every size up to 64 bytes.
func TestParallelSameAsSerialRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		in := randomTable(r)
		chunks := []int{1 + r.IntN(len(in)+1), 1 + r.IntN(len(in)+1), len(in) + 1}
		if i%10 == 0 {
			for c := 1; c <= 64; c++ {
				chunks = append(chunks, c)
			}
		}
		checkSameAsSerial(t, in, CSVOptions{}, chunks)
	}
}

// TestParallelLargeTable: a table of many blocks of the real size, with a
// stray text cell near its end (which turns its column typed, and makes
// the rest of the file serial), and one with missing cells throughout,
// read as the serial path reads them.
func TestParallelLargeTable(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	b.WriteString("a,b,c,d,y\n")
	const rows = 200000
	for i := range rows {
		fmt.Fprintf(&b, "%d,%.3f,%d,%g,%d\n", r.IntN(256), r.Float64()*1000, i, r.NormFloat64(), i%3)
	}
	plain := b.String()
	checkSameAsSerial(t, []byte(plain), CSVOptions{}, []int{1 << 20, 100000})
	text := plain + strings.Repeat("1,2,3,4,5\n", 5) + "1,two,3,4,5\n" + strings.Repeat("1,2,3,4,5\n", 5)
	checkSameAsSerial(t, []byte(text), CSVOptions{}, []int{1 << 20})
	// One cell in a hundred missing: number columns with missing cells.
	var m strings.Builder
	m.WriteString("a,b,y\n")
	for i := range rows {
		a, b := strconv.Itoa(r.IntN(256)), strconv.FormatFloat(r.NormFloat64(), 'g', -1, 64)
		switch r.IntN(200) {
		case 0:
			a = ""
		case 1:
			b = "NA"
		}
		fmt.Fprintf(&m, "%s,%s,%d\n", a, b, i%3)
	}
	checkSameAsSerial(t, []byte(m.String()), CSVOptions{}, []int{1 << 20, 70000})
}

// TestParallelReadError: a body that fails after some rows fails the
// parse with its error on both paths.
func TestParallelReadError(t *testing.T) {
	sentinel := errors.New("body too large")
	for _, chunk := range []int{1, 3, 7, 1 << 20} {
		func() {
			defer func(c int) { csvChunkSize = c }(csvChunkSize)
			csvChunkSize = chunk
			_, err := ReadCSV(context.Background(), &errReader{"a,y\n1,2\n3,4\n5,", sentinel}, CSVOptions{})
			if !errors.Is(err, sentinel) {
				t.Fatalf("blocks of %d: err = %v, want the reader's error", chunk, err)
			}
		}()
	}
}

// FuzzParallelCSV: any input reads the same on the parallel path, in
// blocks of any size, as on the serial path.
func FuzzParallelCSV(f *testing.F) {
	for _, s := range csvCorpus {
		f.Add([]byte(s), uint16(3), false)
	}
	f.Add([]byte("a,b,y\n1,2,p\n3,4,q\n"), uint16(1), true)
	f.Fuzz(func(t *testing.T, in []byte, chunk uint16, noHeader bool) {
		checkSameAsSerial(t, in, CSVOptions{NoHeader: noHeader}, []int{1 + int(chunk)})
	})
}

// TestLeadingDigits: leadingDigits counts the digits that start eight
// bytes of text and gives their value, for every integer of 1 to 7 digits
// (leading zeros too) followed by each kind of byte, checked against
// strconv.ParseUint, and for eight digits and for none.
func TestLeadingDigits(t *testing.T) {
	tails := []byte{',', ';', '\t', '.', 'e', '"', ' ', '/', ':', 0, 0x80, 0xB0, 0xBA, 0xFF}
	check := func(text string) {
		var b [8]byte
		copy(b[:], text)
		want := 0
		for want < len(text) && want < 8 && text[want] >= '0' && text[want] <= '9' {
			want++
		}
		v, k := leadingDigits(binary.LittleEndian.Uint64(b[:]))
		if k != want {
			t.Fatalf("%q: %d digits, want %d", text, k, want)
		}
		if k > 0 && k < 8 {
			if u, _ := strconv.ParseUint(text[:k], 10, 64); v != u {
				t.Fatalf("%q: value %d, want %d", text, v, u)
			}
		}
	}
	for n := range 10000000 {
		s := strconv.Itoa(n)
		check(s + string([]byte{tails[n%len(tails)]}) + "12345678")
	}
	for k := 1; k <= 7; k++ {
		for _, tail := range tails {
			check(strings.Repeat("0", k-1) + "7" + string([]byte{tail}) + "9999999")
		}
	}
	check("12345678")
	check("x1234567")
	check(",")
}

// FuzzParseCell: parseCell reads a field as parseNumber does, to the bit:
// its fast path for plain decimals is exact.
func FuzzParseCell(f *testing.F) {
	for _, s := range []string{"0", "-0", "1.5", "-.5", "5.", ".", "-", "123456789012345", "1234567890123456",
		"0.1", "0.3", "2.675", "999999999999999.9", "0.000000000000001", "1e5", " 1", "+1", "NaN", "1,2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, delim := range []byte{',', ';'} {
			line := []byte(s + string(delim) + "9")
			end := strings.IndexByte(s, delim)
			if end < 0 {
				end = len(s)
			}
			want, err := parseNumber(s[:end])
			got, e, ok := parseCell(line, 0, delim)
			if e != end || ok != (err == nil) || (ok && math.Float64bits(got) != math.Float64bits(want)) {
				t.Fatalf("parseCell(%q, %q) = %v (%x), end %d, ok %v; parseNumber gives %v (%x), err %v, end %d",
					line, delim, got, math.Float64bits(got), e, ok, want, math.Float64bits(want), err, end)
			}
		}
	})
}

// pixelTable is a table shaped like Fashion-MNIST as CSV: rows of a class
// name and 784 integers from 0 to 255, most of them 0.
func pixelTable(rows int) []byte {
	r := rand.New(rand.NewPCG(5, 6))
	var b bytes.Buffer
	b.WriteString("label")
	for i := range 784 {
		fmt.Fprintf(&b, ",px%d", i)
	}
	b.WriteByte('\n')
	for range rows {
		b.WriteString([]string{"Coat", "Bag", "Sandal", "Ankle boot"}[r.IntN(4)])
		for range 784 {
			v := 0
			if r.IntN(2) == 0 {
				v = r.IntN(256)
			}
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(v))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// BenchmarkReadCSVPaths is the parser alone on a pixel table of 5,000 rows
// (about 11 MB), serial and parallel, in MB/s of CSV.
func BenchmarkReadCSVPaths(b *testing.B) {
	in := pixelTable(5000)
	for _, parallel := range []bool{false, true} {
		b.Run(fmt.Sprintf("parallel=%v", parallel), func(b *testing.B) {
			defer func(p bool) { csvParallel = p }(csvParallel)
			csvParallel = parallel
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := ReadCSV(context.Background(), bytes.NewReader(in), CSVOptions{Targets: []string{"label"}, XParts: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestParallelMemoryRefusal: when the memory for the numbers is refused,
// the parallel path fails as the serial path does: with a problem of a
// row that comes before any number is taken, else with ErrMemory; and
// with memory granted up to a limit, both refuse a table larger than it.
func TestParallelMemoryRefusal(t *testing.T) {
	full := errors.New("full")
	refuse := func(int64) error { return full }
	for _, in := range []string{"a,y\n1,2,3\n4,5\n", "a,y\n1,2\n3,4\n", "a,y\n1,\"x\ny\"\n"} {
		want := readCSVWith(t, []byte(in), CSVOptions{Reserve: refuse}, false, 1<<20)
		for _, chunk := range []int{1, 4, 1 << 20} {
			if got := readCSVWith(t, []byte(in), CSVOptions{Reserve: refuse}, true, chunk); got != want {
				t.Errorf("%q in blocks of %d: %s; serially %s", in, chunk, got, want)
			}
		}
	}
	var b strings.Builder
	b.WriteString("a,b,y\n")
	for i := range 100000 {
		fmt.Fprintf(&b, "%d,%d,%d\n", i, i%7, i%2)
	}
	for _, parallel := range []bool{false, true} {
		var granted int64
		limit := func(n int64) error {
			if granted+n > 1<<20 {
				return full
			}
			granted += n
			return nil
		}
		got := readCSVWith(t, []byte(b.String()), CSVOptions{Reserve: limit}, parallel, 64<<10)
		if !strings.Contains(got, "memory=true") {
			t.Errorf("parallel %v: 2.4 MB of numbers under a 1 MiB limit read as %.200s, want ErrMemory", parallel, got)
		}
	}
}

// TestHugeValuesSummary: a column of values whose sums overflow float64
// (±1e308) reads, with its range and without a mean or a deviation, which
// would be infinities that the dataset's JSON metadata cannot hold; a
// column of ordinary values keeps both.
func TestHugeValuesSummary(t *testing.T) {
	in := "a,b,y\n1e308,1,1\n-1e308,2,2\n1e308,3,3\n"
	d, err := ReadCSV(context.Background(), strings.NewReader(in), CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := d.Meta.Columns[0], d.Meta.Columns[1]
	if a.Min == nil || *a.Min != -1e308 || *a.Max != 1e308 || a.Mean != nil || a.Std != nil {
		t.Errorf("column a: min %v max %v mean %v std %v; want -1e308, 1e308 and no mean or std", a.Min, a.Max, a.Mean, a.Std)
	}
	// Mean 2 and sample standard deviation 1, of 1, 2 and 3.
	if b.Mean == nil || *b.Mean != 2 || b.Std == nil || *b.Std != 1 {
		t.Errorf("column b: mean %v std %v, want 2 and 1", b.Mean, b.Std)
	}
	if _, err := json.Marshal(d.Meta); err != nil {
		t.Errorf("the metadata does not encode as JSON: %v", err)
	}
}
