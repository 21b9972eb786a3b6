// Command driver measures a mixed table through the real server: it runs
// the server binary on a fresh data directory, uploads the mixed CSV
// (MB/s end to end and the server's peak resident size, VmHWM), trains a
// one-epoch model on it, and measures predict throughput for raw object
// rows of that table against array rows of an all-numeric model of the
// same width. It prints one "key value" line per figure for run.sh.
package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

func main() {
	server := flag.String("server", "", "server binary")
	mixed := flag.String("mixed-csv", "", "mixed table (gen)")
	numeric := flag.String("numeric-csv", "", "all-numeric table of the same width (gen -numeric)")
	batch := flag.Int("batch", 500, "rows per predict request")
	dur := flag.Duration("duration", 5*time.Second, "predict run per kind of row")
	flag.Parse()
	if err := run(*server, *mixed, *numeric, *batch, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		os.Exit(1)
	}
}

func run(server, mixed, numeric string, batch int, dur time.Duration) error {
	dir, err := os.MkdirTemp("", "mixed-table-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(server, "--addr", "127.0.0.1:0", "--data-dir", dir, "--log-format", "json",
		"--max-upload-bytes", "4GiB", "--max-request-bytes", "64MiB")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	url, err := listenAddr(stderr)
	if err != nil {
		return err
	}
	pid := cmd.Process.Pid
	before, _ := status(pid, "VmRSS")
	fmt.Printf("server_rss_idle_kb %d\n", before)

	st, err := os.Stat(mixed)
	if err != nil {
		return err
	}
	start := time.Now()
	id, err := upload(url, "mixed", mixed)
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	hwm, _ := status(pid, "VmHWM")
	fmt.Printf("upload_bytes %d\nupload_seconds %.3f\nupload_mb_per_s %.2f\nupload_peak_rss_kb %d\n", st.Size(), secs, float64(st.Size())/1e6/secs, hwm)

	if err := train(url, "mixed", id); err != nil {
		return err
	}
	width, err := encodedWidth(url, "mixed")
	if err != nil {
		return err
	}
	fmt.Printf("mixed_encoded_width %d\n", width)
	objRows, err := objectRows(mixed, batch)
	if err != nil {
		return err
	}
	rps, err := predictRate(url, "mixed", objRows, batch, dur)
	if err != nil {
		return err
	}
	fmt.Printf("predict_object_rows_per_s %.0f\n", rps)

	nid, err := upload(url, "numeric", numeric)
	if err != nil {
		return err
	}
	if err := train(url, "numeric", nid); err != nil {
		return err
	}
	arrRows, err := arrayRows(numeric, batch)
	if err != nil {
		return err
	}
	rps, err = predictRate(url, "numeric", arrRows, batch, dur)
	if err != nil {
		return err
	}
	fmt.Printf("predict_array_rows_per_s %.0f\n", rps)
	return nil
}

// listenAddr reads the server's JSON log until it says where it listens,
// then drains the rest in the background.
func listenAddr(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "backpropd listening" {
			go func() { _, _ = io.Copy(io.Discard, r) }()
			return "http://" + l.Addr, nil
		}
	}
	return "", errors.New("the server exited before it listened")
}

// status reads a kB field of /proc/<pid>/status.
func status(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func upload(url, name, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	res, err := http.Post(url+"/v1/datasets?name="+name+"&target=label", "text/csv", f)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("upload %s: %d %s", path, res.StatusCode, b)
	}
	var d struct{ ID string }
	return d.ID, json.Unmarshal(b, &d)
}

// train fits one epoch of a 32-unit network: the model only has to exist
// for the predict figures.
func train(url, name, id string) error {
	spec := fmt.Sprintf(`{"model_name":%q,"dataset_id":%q,"network":{"hidden":[{"units":32,"activation":"relu"}]},"training":{"epochs":1,"batch_size":256}}`, name, id)
	res, err := http.Post(url+"/v1/jobs", "application/json", strings.NewReader(spec))
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted && res.StatusCode != http.StatusCreated {
		return fmt.Errorf("submit %s: %d %s", name, res.StatusCode, b)
	}
	var job struct{ ID, Status, Error string }
	if err := json.Unmarshal(b, &job); err != nil {
		return err
	}
	for {
		res, err := http.Get(url + "/v1/jobs/" + job.ID)
		if err != nil {
			return err
		}
		err = json.NewDecoder(res.Body).Decode(&job)
		res.Body.Close()
		if err != nil {
			return err
		}
		switch job.Status {
		case "succeeded":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("job %s %s: %s", name, job.Status, job.Error)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// encodedWidth reads the number of network inputs from the model's
// metadata.
func encodedWidth(url, model string) (int, error) {
	res, err := http.Get(url + "/v1/models/" + model)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var m struct {
		EncodedWidth int `json:"encoded_width"`
	}
	return m.EncodedWidth, json.NewDecoder(res.Body).Decode(&m)
}

// readRows reads the header and the first n records of a CSV.
func readRows(path string, n int) ([]string, [][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	header, err := r.Read()
	if err != nil {
		return nil, nil, err
	}
	var recs [][]string
	for len(recs) < n {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		recs = append(recs, rec)
	}
	return header, recs, nil
}

// objectRows is one predict body of raw object rows keyed by column name:
// numbers as JSON numbers, text and dates as strings, a blank left out.
func objectRows(path string, n int) ([]byte, error) {
	header, recs, err := readRows(path, n)
	if err != nil {
		return nil, err
	}
	rows := make([]map[string]any, len(recs))
	for i, rec := range recs {
		row := map[string]any{}
		for j, cell := range rec[:len(rec)-1] {
			if cell == "" {
				continue
			}
			if header[j][0] == 'n' {
				v, err := strconv.ParseFloat(cell, 64)
				if err != nil {
					return nil, err
				}
				row[header[j]] = v
			} else {
				row[header[j]] = cell
			}
		}
		rows[i] = row
	}
	return json.Marshal(map[string]any{"inputs": rows})
}

// arrayRows is one predict body of all-numeric array rows.
func arrayRows(path string, n int) ([]byte, error) {
	_, recs, err := readRows(path, n)
	if err != nil {
		return nil, err
	}
	rows := make([][]float64, len(recs))
	for i, rec := range recs {
		for _, cell := range rec[:len(rec)-1] {
			v, err := strconv.ParseFloat(cell, 64)
			if err != nil {
				return nil, err
			}
			rows[i] = append(rows[i], v)
		}
	}
	return json.Marshal(map[string]any{"inputs": rows})
}

// predictRate posts the body again and again from one client for dur and
// returns rows predicted per second.
func predictRate(url, model string, body []byte, batch int, dur time.Duration) (float64, error) {
	var rows int
	start := time.Now()
	for time.Since(start) < dur {
		res, err := http.Post(url+"/v1/models/"+model+"/predict", "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("predict %s: %d %.300s", model, res.StatusCode, b)
		}
		rows += batch
	}
	return float64(rows) / time.Since(start).Seconds(), nil
}
