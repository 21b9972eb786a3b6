package store

import (
	"testing"
)

// mnistShaped is a 60,000 × 784 dataset with ten class labels, the shape
// of Fashion-MNIST's training set (about 376 MB of float64 features).
func mnistShaped() *Dataset {
	const rows, feats = 60000, 784
	d := &Dataset{Meta: DatasetMeta{Name: "mnist-shaped", Rows: rows, Features: feats, Task: "multiclass",
		TargetNames: []string{"label"}, Classes: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}}}
	d.X = make([]float64, rows*feats)
	for i := range d.X {
		d.X[i] = float64(i%255) / 255
	}
	d.Labels = make([]string, rows)
	for i := range d.Labels {
		d.Labels[i] = d.Meta.Classes[i%10]
	}
	return d
}

// BenchmarkLoadDataset60000x784 measures LoadDataset of an MNIST-sized
// dataset from a warm page cache: one read syscall straight into X, a
// CRC-32C pass over it, and the labels.
func BenchmarkLoadDataset60000x784(b *testing.B) {
	s := mustOpen(b, b.TempDir())
	m := mustCreateDataset(b, s, mnistShaped())
	b.SetBytes(m.SizeBytes)
	b.ReportAllocs()
	for b.Loop() {
		d, err := s.LoadDataset(bg, m.ID)
		if err != nil {
			b.Fatal(err)
		}
		if len(d.X) != 60000*784 {
			b.Fatalf("loaded %d values", len(d.X))
		}
	}
}

// BenchmarkCreateDataset60000x784 measures the durable write of the same
// dataset (write, fsync, rename, directory fsync).
func BenchmarkCreateDataset60000x784(b *testing.B) {
	s := mustOpen(b, b.TempDir())
	d := mnistShaped()
	b.SetBytes(int64(8 * len(d.X)))
	for b.Loop() {
		m, err := s.CreateDataset(bg, d)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.DeleteDataset(bg, m.ID)
		b.StartTimer()
	}
}
