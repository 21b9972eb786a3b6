// Package bpdclient runs a backpropd binary for the benchmarks under bench/
// and talks to it over HTTP only: start it on a free loopback port with its
// own data directory, upload a CSV, train a job and read its history,
// predict, fetch a model file. It must not import the server's internal
// packages, so that what the benchmarks measure is the binary and its API.
package bpdclient

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Server is a running backpropd process.
type Server struct {
	// Base is the server's URL, "http://127.0.0.1:port".
	Base string
	// Log is the path of the file that holds the server's output.
	Log    string
	cmd    *exec.Cmd
	client *http.Client
}

// Start runs bin with args plus --addr on a free loopback port (loopback
// needs no token), sends its output to logPath and waits up to 30 s for
// GET /healthz to answer.
func Start(bin string, args []string, logPath string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(bin, append(args, "--addr", addr)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Base: "http://" + addr, Log: logPath, cmd: cmd,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := s.client.Get(s.Base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
	}
	s.Stop()
	return nil, fmt.Errorf("%s did not answer /healthz within 30 s (log: %s)", bin, logPath)
}

// Stop ends the process: SIGTERM, then SIGKILL after 20 s.
func (s *Server) Stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// Blas returns the "blas" field of the server's startup log line: which
// matrix-product backend the binary was built with.
func (s *Server) Blas() string {
	f, err := os.Open(s.Log)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		var line struct {
			Blas        string `json:"blas"`
			BlasThreads int    `json:"blas_threads"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Blas != "" {
			if line.BlasThreads > 0 {
				return fmt.Sprintf("%s (%d thread(s))", line.Blas, line.BlasThreads)
			}
			return line.Blas
		}
	}
	return "unknown"
}

// StatusError is an answer of 300 or more.
type StatusError struct {
	Method, URL string
	Code        int
	Body        string
}

// Error names the request, the status and the server's problem text.
func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.URL, e.Code, http.StatusText(e.Code), e.Body)
}

// IsStatus reports whether err is a *StatusError with the given code.
func IsStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == code
}

// Do sends a request to path (under Base) and returns the answer's body;
// an answer of 300 or more is a *StatusError.
func (s *Server) Do(method, path, contentType string, body io.Reader, contentLength int64) ([]byte, error) {
	req, err := http.NewRequest(method, s.Base+path, body)
	if err != nil {
		return nil, err
	}
	if contentLength > 0 {
		req.ContentLength = contentLength
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		return b, &StatusError{Method: method, URL: path, Code: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
	}
	return b, nil
}

// JSON sends in (nil for no body) as JSON and decodes the answer into out
// (nil to drop it).
func (s *Server) JSON(method, path string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	b, err := s.Do(method, path, ct, body, 0)
	if err != nil {
		return err
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Dataset is the part of POST /v1/datasets' answer the benchmarks use.
type Dataset struct {
	ID   string `json:"id"`
	Rows int    `json:"rows"`
}

// UploadCSV streams the CSV file at path to POST /v1/datasets?query.
func (s *Server) UploadCSV(path, query string) (Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return Dataset{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Dataset{}, err
	}
	b, err := s.Do(http.MethodPost, "/v1/datasets?"+query, "text/csv", bufio.NewReaderSize(f, 1<<20), st.Size())
	if err != nil {
		return Dataset{}, fmt.Errorf("upload %s: %w", path, err)
	}
	var d Dataset
	if err := json.Unmarshal(b, &d); err != nil || d.ID == "" {
		return Dataset{}, fmt.Errorf("upload %s: an answer without an id: %s", path, b)
	}
	return d, nil
}

// Epoch is one entry of GET /v1/jobs/{id}/history.
type Epoch struct {
	Epoch            int     `json:"epoch"`
	Loss             float64 `json:"loss"`
	DurationSeconds  float64 `json:"duration_seconds"`
	SamplesPerSecond float64 `json:"samples_per_second"`
}

// Job is the part of a job the benchmarks use.
type Job struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	Error        string `json:"error"`
	ModelName    string `json:"model_name"`
	ModelVersion int    `json:"model_version"`
}

// Train submits spec to POST /v1/jobs, waits for the job to end (at most
// limit) and returns it with the seconds from submission to success. A
// refused spec comes back as the *StatusError of the POST.
func (s *Server) Train(spec any, limit time.Duration) (Job, float64, error) {
	var j Job
	t0 := time.Now()
	if err := s.JSON(http.MethodPost, "/v1/jobs", spec, &j); err != nil {
		return j, 0, err
	}
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := s.JSON(http.MethodGet, "/v1/jobs/"+j.ID+"?history=false", nil, &j); err != nil {
			return j, 0, err
		}
		switch j.Status {
		case "succeeded":
			return j, time.Since(t0).Seconds(), nil
		case "failed", "cancelled":
			return j, 0, fmt.Errorf("job %s %s: %s", j.ID, j.Status, j.Error)
		}
	}
	return j, 0, fmt.Errorf("job %s still %s after %v", j.ID, j.Status, limit)
}

// History reads every page of GET /v1/jobs/{id}/history.
func (s *Server) History(id string) ([]Epoch, error) {
	var all []Epoch
	after := 0
	for {
		var page struct {
			Epochs    []Epoch `json:"epochs"`
			NextAfter *int    `json:"next_after"`
		}
		if err := s.JSON(http.MethodGet, fmt.Sprintf("/v1/jobs/%s/history?after=%d", id, after), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Epochs...)
		if page.NextAfter == nil {
			return all, nil
		}
		after = *page.NextAfter
	}
}

// Prediction is the answer of POST /v1/models/{name}/predict for a
// classifier.
type Prediction struct {
	Predictions   []string    `json:"predictions"`
	Probabilities [][]float64 `json:"probabilities"`
	Classes       []string    `json:"classes"`
}

// PredictRaw posts an encoded predict body and returns the encoded answer,
// so that a timed loop does neither encoding nor decoding.
func (s *Server) PredictRaw(model string, body []byte) ([]byte, error) {
	return s.Do(http.MethodPost, "/v1/models/"+model+"/predict", "application/json", bytes.NewReader(body), int64(len(body)))
}

// ModelFile returns the stored file of a model version, as
// GET /v1/models/{name}/versions/{version}/file exports it.
func (s *Server) ModelFile(model string, version int) ([]byte, error) {
	return s.Do(http.MethodGet, fmt.Sprintf("/v1/models/%s/versions/%d/file", model, version), "", nil, 0)
}

// ReadCSV reads a numeric CSV with a header whose column target holds a
// class name: the other columns as row-major float64s, and the labels.
func ReadCSV(path, target string) (x []float64, labels []string, features int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	ti := -1
	for line := 1; sc.Scan(); line++ {
		cols := strings.Split(sc.Text(), ",")
		if ti < 0 {
			for i, c := range cols {
				if c == target {
					ti = i
				}
			}
			if ti < 0 {
				return nil, nil, 0, fmt.Errorf("%s: no column %q in the header", path, target)
			}
			features = len(cols) - 1
			continue
		}
		if len(cols) != features+1 {
			return nil, nil, 0, fmt.Errorf("%s:%d: %d columns, the header has %d", path, line, len(cols), features+1)
		}
		for i, c := range cols {
			if i == ti {
				labels = append(labels, c)
				continue
			}
			v, err := strconv.ParseFloat(c, 64)
			if err != nil {
				return nil, nil, 0, fmt.Errorf("%s:%d: column %d: %w", path, line, i+1, err)
			}
			x = append(x, v)
		}
	}
	return x, labels, features, sc.Err()
}

// BenchmarkSpec is the POST /v1/jobs body of the benchmark network, the
// one bench/train_vs_pytorch trains in the engine directly: 784-256-128-10
// relu, softmax cross-entropy, Glorot uniform weights, Adam (lr 1e-3,
// betas 0.9/0.999, eps 1e-8) with the learning-rate schedule named
// schedule, batch 64 reshuffled every epoch, no validation. The CSV holds
// raw pixels (0-255), so minmax scaling stands in for the engine-direct
// benchmark's division by 255; it is fitted once, before the first epoch.
// precision "" leaves training.precision out.
func BenchmarkSpec(model, dataset string, epochs, batch int, seed int64, schedule, precision string) map[string]any {
	training := map[string]any{
		"epochs": epochs, "batch_size": batch, "shuffle": true, "seed": seed,
		"optimizer": map[string]any{
			"name": "adam", "learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
		},
		"lr_schedule": map[string]any{"name": schedule},
	}
	if precision != "" {
		training["precision"] = precision
	}
	return map[string]any{
		"model_name": model,
		"dataset_id": dataset,
		"network": map[string]any{
			"hidden": []any{
				map[string]any{"units": 256, "activation": "relu"},
				map[string]any{"units": 128, "activation": "relu"},
			},
			"output_activation": "softmax", "loss": "cross_entropy", "init": "glorot",
		},
		"training":      training,
		"preprocessing": map[string]any{"scaling": "minmax"},
	}
}

// TrainPrecision submits BenchmarkSpec with training.precision set to
// precision. If the server refuses the field (a 400 that names it), it
// submits the spec without it and returns used = "" (the server's
// default) and the refusal's text; otherwise used is precision.
func (s *Server) TrainPrecision(spec func(precision string) map[string]any, precision string, limit time.Duration) (j Job, secs float64, used, refusal string, err error) {
	if precision != "" {
		j, secs, err = s.Train(spec(precision), limit)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Body, "precision") {
			return j, secs, precision, "", err
		}
		refusal = se.Body
	}
	j, secs, err = s.Train(spec(""), limit)
	return j, secs, "", refusal, err
}

// PredictBody encodes rows [from, to) of the row-major x, features wide,
// as the body {"inputs": [[...], ...]}.
func PredictBody(x []float64, features, from, to int) []byte {
	b := append(make([]byte, 0, (to-from)*features*4+16), `{"inputs":[`...)
	for i := from; i < to; i++ {
		if i > from {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, v := range x[i*features : (i+1)*features] {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		}
		b = append(b, ']')
	}
	return append(b, "]}"...)
}

// Accuracy predicts every row of x in batches of batch rows and returns
// the fraction whose predicted class is the label.
func (s *Server) Accuracy(model string, x []float64, labels []string, features, batch int) (float64, error) {
	correct := 0
	for from := 0; from < len(labels); from += batch {
		to := min(from+batch, len(labels))
		b, err := s.PredictRaw(model, PredictBody(x, features, from, to))
		if err != nil {
			return 0, err
		}
		var p Prediction
		if err := json.Unmarshal(b, &p); err != nil {
			return 0, fmt.Errorf("predict answer: %w", err)
		}
		if len(p.Predictions) != to-from {
			return 0, fmt.Errorf("predict: %d predictions for %d rows", len(p.Predictions), to-from)
		}
		for i, l := range p.Predictions {
			if l == labels[from+i] {
				correct++
			}
		}
	}
	return float64(correct) / float64(len(labels)), nil
}
