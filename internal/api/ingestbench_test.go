package api

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/backpropd/backpropd/internal/ingest"
	"github.com/backpropd/backpropd/internal/store"
)

// BenchmarkIngestStore is a CSV upload without HTTP: the parse of a table
// shaped like Fashion-MNIST (5,000 rows of a class name and 784 pixels,
// about 11 MB) and the dataset written and synced to the store, in MB/s
// of CSV. Beside BenchmarkReadCSVPaths (the parser alone, internal/ingest) and
// bench/ingest/run.sh (through the real server) it shows each stage's
// cost.
func BenchmarkIngestStore(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	var in bytes.Buffer
	in.WriteString("label")
	for i := range 784 {
		fmt.Fprintf(&in, ",px%d", i)
	}
	in.WriteByte('\n')
	for range 5000 {
		in.WriteString([]string{"Coat", "Bag", "Sandal", "Ankle boot"}[r.IntN(4)])
		for range 784 {
			in.WriteByte(',')
			in.WriteString(strconv.Itoa(r.IntN(256)))
		}
		in.WriteByte('\n')
	}
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	b.SetBytes(int64(in.Len()))
	for b.Loop() {
		d, err := ingest.ReadCSV(ctx, bytes.NewReader(in.Bytes()), ingest.CSVOptions{Name: "bench", Targets: []string{"label"}, XParts: true})
		if err != nil {
			b.Fatal(err)
		}
		meta, err := st.CreateDataset(ctx, d)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.DeleteDataset(ctx, meta.ID); err != nil {
			b.Fatal(err)
		}
	}
}
