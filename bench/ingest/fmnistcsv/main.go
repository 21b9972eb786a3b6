// Command fmnistcsv writes Fashion-MNIST as CSV, the way a user would upload
// it to POST /v1/datasets: a header "label,px0,...,px783", then one row per
// image with the class name and the 784 raw pixel values (0-255). The
// training split is 60,000 rows of 785 columns, about 130 MB.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/backpropd/backpropd/internal/idx"
)

// classNames are Fashion-MNIST's labels 0-9, from the dataset's README.
var classNames = []string{
	"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
	"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fmnistcsv:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("data", "/usr/share/datasets/fashion-mnist", "directory with the Fashion-MNIST IDX files")
	split := flag.String("split", "train", `"train" or "t10k"`)
	limit := flag.Int("rows", 0, "write only the first N rows (0: all)")
	out := flag.String("o", "", "output file (default standard output)")
	flag.Parse()

	images, err := idx.ReadFile(filepath.Join(*dir, *split+"-images-idx3-ubyte.gz"))
	if err != nil {
		return err
	}
	labels, err := idx.ReadFile(filepath.Join(*dir, *split+"-labels-idx1-ubyte.gz"))
	if err != nil {
		return err
	}
	if len(images.Dims) != 3 || len(labels.Dims) != 1 || images.Dims[0] != labels.Dims[0] || images.Type != idx.Uint8 {
		return fmt.Errorf("images %v %v and labels %v do not pair up", images.Type, images.Dims, labels.Dims)
	}
	rows, features := images.Dims[0], images.Dims[1]*images.Dims[2]
	if *limit > 0 {
		rows = min(rows, *limit)
	}

	f := os.Stdout
	if *out != "" {
		if f, err = os.Create(*out); err != nil {
			return err
		}
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("label")
	for j := range features {
		w.WriteString(",px")
		w.WriteString(strconv.Itoa(j))
	}
	w.WriteByte('\n')
	var num []byte
	for i := range rows {
		c := int(labels.Data[i])
		if c >= len(classNames) {
			return fmt.Errorf("row %d: label %d is not a class 0-9", i, c)
		}
		w.WriteString(classNames[c])
		for _, px := range images.Data[i*features : (i+1)*features] {
			w.WriteByte(',')
			num = strconv.AppendInt(num[:0], int64(px), 10)
			w.Write(num)
		}
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
