// Command driver times batch prediction through a real backpropd binary
// against PyTorch inference of the same model, and
// bench/predict_batch/run.sh is its one-command entry.
//
// It starts the server on loopback with a temporary data directory,
// uploads the Fashion-MNIST training CSV, trains the benchmark network
// (bpdclient.BenchmarkSpec) for -epochs, and then posts the 10,000 test
// rows to POST /v1/models/{name}/predict in batches of each -batches size,
// one request at a time on one keep-alive connection: the bodies are
// encoded before the clock starts and the answers decoded after it stops,
// so the time is the server's (HTTP, JSON decoding, the forward pass, JSON
// encoding) plus loopback. It exports the model through
// GET /v1/models/{name}/versions/{version}/file and runs torch_infer.py,
// which loads it into torch.nn.Sequential, checks that its probabilities
// agree with the server's (to 1e-6 relative for a float64 model, 1e-3 for
// a float32 one, whose server computes in float32), and times inference on the
// same batches. It prints rows/s of both and their ratio.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/backpropd/backpropd/bench/train_server/bpdclient"
)

type config struct {
	server, trainCSV, testCSV, python, script, work, schedule string
	batches, torchThreads                                     []int
	precisionNames                                            []string
	epochs, rounds, workers                                   int
}

// serverRun is the server's time for one batch size.
type serverRun struct {
	Impl          string  `json:"impl"`
	Build         string  `json:"build"`
	Precision     string  `json:"precision"`
	Batch         int     `json:"batch"`
	Rows          int     `json:"rows"`
	Requests      int     `json:"requests"`
	Seconds       float64 `json:"seconds"`
	RowsPerSecond float64 `json:"rows_per_second"`
}

// torchRun is one line of torch_infer.py.
type torchRun struct {
	Impl           string  `json:"impl"`
	Torch          string  `json:"torch"`
	Threads        int     `json:"threads"`
	DType          string  `json:"dtype"`
	ModelPrecision string  `json:"model_precision"`
	Batch          int     `json:"batch"`
	Rows           int     `json:"rows"`
	Seconds        float64 `json:"seconds"`
	RowsPerSecond  float64 `json:"rows_per_second"`
	MaxRelDiff     float64 `json:"max_rel_diff"`
	Agrees         bool    `json:"agrees"`
	RTol           float64 `json:"rtol"`
}

func ints(name, s string) []int {
	var v []int
	for _, f := range strings.Fields(strings.ReplaceAll(s, ",", " ")) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "predict_batch: -%s: %q is not a positive integer\n", name, f)
			os.Exit(2)
		}
		v = append(v, n)
	}
	return v
}

func main() {
	var c config
	var batches, threads, precisions string
	flag.StringVar(&c.server, "server", "bench/out/predict_batch/backpropd", "backpropd binary")
	flag.StringVar(&c.trainCSV, "train-csv", "bench/out/predict_batch/fashion-mnist-train.csv", "training CSV (bench/ingest/fmnistcsv -split train)")
	flag.StringVar(&c.testCSV, "test-csv", "bench/out/predict_batch/fashion-mnist-t10k.csv", "test CSV (bench/ingest/fmnistcsv -split t10k)")
	flag.StringVar(&c.python, "python", "/usr/bin/python3", "Python with torch and numpy")
	flag.StringVar(&c.script, "script", "bench/predict_batch/torch_infer.py", "the PyTorch side")
	flag.StringVar(&c.work, "work", "", "scratch directory (default a new temporary one)")
	flag.StringVar(&c.schedule, "schedule", "constant", "learning-rate schedule of the trained model")
	flag.StringVar(&batches, "batches", "1 64 1000", "rows per request")
	flag.StringVar(&threads, "torch-threads", "1 2", "torch.set_num_threads values")
	flag.StringVar(&precisions, "precisions", "float32 float64", "training.precision of the models to train; one the server refuses trains without the field, labelled \"server default\"")
	flag.IntVar(&c.epochs, "epochs", 1, "training epochs of the model (its speed of prediction does not depend on them)")
	flag.IntVar(&c.rounds, "rounds", 1, "timed passes over the test rows per batch size and side; the fastest counts")
	flag.IntVar(&c.workers, "workers", 1, "backpropd --workers")
	flag.Parse()
	c.batches, c.torchThreads = ints("batches", batches), ints("torch-threads", threads)
	c.precisionNames = strings.Fields(precisions)
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "predict_batch:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if c.work == "" {
		d, err := os.MkdirTemp("", "predict_batch-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		c.work = d
	}
	x, _, features, err := bpdclient.ReadCSV(c.testCSV, "label")
	if err != nil {
		return err
	}
	rows := len(x) / features
	xPath := filepath.Join(c.work, "x.f64")
	if err := writeFloats(xPath, x); err != nil {
		return err
	}

	srv, err := bpdclient.Start(c.server, []string{"--data-dir", filepath.Join(c.work, "data"), "--workers", strconv.Itoa(c.workers),
		"--max-predict-rows", strconv.Itoa(max(10000, slicesMax(c.batches)))}, filepath.Join(c.work, "server.log"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Fprintf(os.Stderr, "uploading %s\n", c.trainCSV)
	ds, err := srv.UploadCSV(c.trainCSV, "name=fashion&target=label&task=multiclass")
	if err != nil {
		return err
	}
	build := srv.Blas()

	var allServer []serverRun
	var allTorch []torchRun
	trained := map[string]bool{}
	for _, p := range c.precisionNames {
		if trained["server default"] {
			break // the server takes no training.precision: one default model is enough
		}
		model := "fashion-" + p
		fmt.Fprintf(os.Stderr, "training %s (%d epoch(s)), precision %s\n", model, c.epochs, p)
		job, _, used, refusal, err := srv.TrainPrecision(func(prec string) map[string]any {
			return bpdclient.BenchmarkSpec(model, ds.ID, c.epochs, 64, 1, c.schedule, prec)
		}, p, time.Hour)
		if err != nil {
			return err
		}
		if used == "" {
			used = "server default"
			fmt.Fprintf(os.Stderr, "  the server refused training.precision %q (%s); trained without it\n", p, refusal)
		}
		if trained[used] {
			continue
		}
		trained[used] = true

		var probs []float64
		for _, b := range c.batches {
			r, pr, err := timeServer(c, srv, model, x, features, rows, b)
			if err != nil {
				return err
			}
			r.Build, r.Precision = build, used
			if probs == nil {
				probs = pr
			}
			allServer = append(allServer, r)
			line, _ := json.Marshal(r)
			fmt.Println(string(line))
		}
		modelPath := filepath.Join(c.work, model+".model")
		mf, err := srv.ModelFile(model, job.ModelVersion)
		if err != nil {
			return err
		}
		if err := os.WriteFile(modelPath, mf, 0o600); err != nil {
			return err
		}
		probsPath := filepath.Join(c.work, model+".probs.f64")
		if err := writeFloats(probsPath, probs); err != nil {
			return err
		}
		for _, t := range c.torchThreads {
			fmt.Fprintf(os.Stderr, "pytorch inference, %d thread(s)\n", t)
			runs, err := runTorch(c, modelPath, xPath, probsPath, t)
			if err != nil {
				return err
			}
			for i := range runs {
				runs[i].ModelPrecision = used
			}
			allTorch = append(allTorch, runs...)
		}
	}
	summary(c, allServer, allTorch)
	return nil
}

func slicesMax(v []int) int {
	m := 0
	for _, n := range v {
		m = max(m, n)
	}
	return m
}

// timeServer posts every row in requests of batch rows, after one
// untimed pass of the first requests (which loads the model into the
// server's cache), and returns the fastest of c.rounds passes and the
// probabilities, row-major.
func timeServer(c config, srv *bpdclient.Server, model string, x []float64, features, rows, batch int) (serverRun, []float64, error) {
	var bodies [][]byte
	for from := 0; from < rows; from += batch {
		bodies = append(bodies, bpdclient.PredictBody(x, features, from, min(from+batch, rows)))
	}
	for _, b := range bodies[:min(len(bodies), 16)] {
		if _, err := srv.PredictRaw(model, b); err != nil {
			return serverRun{}, nil, err
		}
	}
	answers := make([][]byte, len(bodies))
	best := math.Inf(1)
	for range c.rounds {
		t0 := time.Now()
		for i, b := range bodies {
			a, err := srv.PredictRaw(model, b)
			if err != nil {
				return serverRun{}, nil, err
			}
			answers[i] = a
		}
		best = min(best, time.Since(t0).Seconds())
	}
	probs := make([]float64, 0, rows*10)
	for i, a := range answers {
		var p bpdclient.Prediction
		if err := json.Unmarshal(a, &p); err != nil {
			return serverRun{}, nil, fmt.Errorf("answer %d: %w", i, err)
		}
		want := min(batch, rows-i*batch)
		if len(p.Probabilities) != want {
			return serverRun{}, nil, fmt.Errorf("answer %d: %d rows of probabilities for %d rows", i, len(p.Probabilities), want)
		}
		for _, r := range p.Probabilities {
			probs = append(probs, r...)
		}
	}
	fmt.Fprintf(os.Stderr, "backpropd, batch %d: %d requests in %.2f s\n", batch, len(bodies), best)
	return serverRun{Impl: "backpropd-server", Batch: batch, Rows: rows, Requests: len(bodies),
		Seconds: best, RowsPerSecond: float64(rows) / best}, probs, nil
}

func writeFloats(path string, v []float64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := binary.Write(w, binary.LittleEndian, v); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runTorch(c config, modelPath, xPath, probsPath string, threads int) ([]torchRun, error) {
	var bs []string
	for _, b := range c.batches {
		bs = append(bs, strconv.Itoa(b))
	}
	cmd := exec.Command(c.python, c.script, "--model", modelPath, "--x", xPath, "--probs", probsPath,
		"--batches", strings.Join(bs, ","), "--threads", strconv.Itoa(threads), "--rounds", strconv.Itoa(c.rounds))
	t := strconv.Itoa(threads)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS="+t, "OPENBLAS_NUM_THREADS="+t)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	err := cmd.Run()
	var runs []torchRun
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		fmt.Println(line)
		var r torchRun
		if json.Unmarshal([]byte(line), &r) == nil {
			runs = append(runs, r)
		}
	}
	if err != nil {
		return runs, fmt.Errorf("%s: %w", c.script, err)
	}
	return runs, nil
}

func summary(c config, server []serverRun, torch []torchRun) {
	fmt.Printf("\n== batch predict of %d test rows, one request at a time: backpropd POST /v1/models/{name}/predict (JSON) vs PyTorch on the same model\n",
		firstRows(server))
	for _, t := range torch {
		if t.Batch == c.batches[0] && t.DType == "float64" {
			fmt.Printf("same model (%s): PyTorch float64 (%d thread(s)) probabilities agree with the server's, max relative difference %.2g (bar %g: %s)\n",
				t.ModelPrecision, t.Threads, t.MaxRelDiff, t.RTol, verdict(t.Agrees))
		}
	}
	fmt.Printf("%-16s %-8s %6s %14s %16s %10s\n", "model", "torch", "batch", "backpropd r/s", "pytorch r/s", "ratio")
	for _, s := range server {
		for _, t := range torch {
			if t.Batch != s.Batch || t.ModelPrecision != s.Precision {
				continue
			}
			fmt.Printf("%-16s %-8s %6d %14.0f %16.0f %9.3fx\n", s.Precision, fmt.Sprintf("%s/%dt", t.DType, t.Threads), s.Batch,
				s.RowsPerSecond, t.RowsPerSecond, s.RowsPerSecond/t.RowsPerSecond)
		}
	}
	fmt.Println("ratio: backpropd rows/s / PyTorch rows/s (no target; PyTorch has no HTTP or JSON in its time).")
}

func firstRows(s []serverRun) int {
	if len(s) == 0 {
		return 0
	}
	return s[0].Rows
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
