package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/backpropd/backpropd/internal/ingest"
	"github.com/backpropd/backpropd/internal/store"
)

// pixelCSV is a table shaped like Fashion-MNIST as CSV: 5,000 rows of a
// class name and 784 integers from 0 to 255.
func pixelCSV() *bytes.Buffer {
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
	return &in
}

// BenchmarkUploadCSV is the same upload through the router and a real
// loopback connection (POST /v1/datasets, then DELETE), in MB/s of CSV:
// what HTTP adds to BenchmarkIngestStore.
func BenchmarkUploadCSV(b *testing.B) {
	in := pixelCSV()
	env := newTestEnv(b, Config{})
	srv := httptest.NewServer(env.h)
	defer srv.Close()
	b.SetBytes(int64(in.Len()))
	for b.Loop() {
		res, err := http.Post(srv.URL+"/v1/datasets?name=bench&target=label", "text/csv", bytes.NewReader(in.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		var meta struct{ ID string }
		err = json.NewDecoder(res.Body).Decode(&meta)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusCreated {
			b.Fatalf("upload: %d %v", res.StatusCode, err)
		}
		req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v1/datasets/"+meta.ID, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}
}

// BenchmarkIngestStore is a CSV upload without HTTP: the parse of a table
// shaped like Fashion-MNIST (5,000 rows of a class name and 784 pixels,
// about 11 MB) and the dataset written and synced to the store, in MB/s
// of CSV. Beside BenchmarkReadCSVPaths (the parser alone, internal/ingest) and
// bench/ingest/run.sh (through the real server) it shows each stage's
// cost.
func BenchmarkIngestStore(b *testing.B) {
	in := pixelCSV()
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
