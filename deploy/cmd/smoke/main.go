// Command smoke walks a running backpropd through what a deployment must do:
// health and readiness, the token, a dataset upload and read-back, a short
// training job, a prediction and a metrics scrape. It exits 0 when every
// step answers as the API contract says, and 1 naming the first step that
// does not.
//
// .ci/steps/50-deploy.sh runs it against the server running as the image
// would run it (read-only root, non-root user, only /data writable).
//
//	smoke -url http://127.0.0.1:8080 -token-file /path/to/token
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "backpropd's base URL")
	tokenFile := flag.String("token-file", "", "file holding the bearer token")
	timeout := flag.Duration("job-timeout", 90*time.Second, "how long the training job may take")
	runningJobFile := flag.String("leave-running-job", "", "at the end, start a long job, wait until it has run an epoch, and write its id to this file")
	flag.Parse()
	token, err := os.ReadFile(*tokenFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "smoke: token: %v\n", err)
		os.Exit(2)
	}
	c := &client{base: strings.TrimRight(*base, "/"), token: strings.TrimSpace(string(token)), http: &http.Client{Timeout: 30 * time.Second}}
	datasetID, err := run(c, *timeout)
	if err == nil && *runningJobFile != "" {
		err = leaveRunningJob(c, datasetID, *runningJobFile, *timeout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "smoke: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("smoke: all steps passed")
}

type client struct {
	base  string
	token string
	http  *http.Client
}

// do sends a request and returns the status, the headers and the body.
func (c *client) do(method, path, contentType string, body []byte, auth bool) (int, http.Header, []byte, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// expect sends a request and fails unless the status is want; it decodes a
// JSON body into out when out is not nil.
func (c *client) expect(want int, method, path, contentType string, body []byte, out any) (http.Header, error) {
	status, h, b, err := c.do(method, path, contentType, body, true)
	if err != nil {
		return nil, err
	}
	if status != want {
		return nil, fmt.Errorf("%s %s: status %d, want %d: %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("%s %s: decode %s: %w", method, path, b, err)
		}
	}
	fmt.Printf("smoke: %s %s: %d\n", method, path, status)
	return h, nil
}

// smokeCSV is a two-class problem a small network separates: the class is
// whether x0 + x1 > 1.
func smokeCSV() []byte {
	var b bytes.Buffer
	b.WriteString("x0,x1,label\n")
	for i := range 40 {
		x0 := float64(i%8) / 7
		x1 := float64((i*3)%5) / 4
		label := "low"
		if x0+x1 > 1 {
			label = "high"
		}
		fmt.Fprintf(&b, "%.4f,%.4f,%s\n", x0, x1, label)
	}
	return b.Bytes()
}

// jobState is the part of a job the smoke test follows.
type jobState struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Error    string `json:"error"`
	Progress struct {
		Epoch int `json:"epoch"`
	} `json:"progress"`
}

// waitJob polls the job until done says so, or fails after timeout.
func waitJob(c *client, job *jobState, timeout time.Duration, done func(*jobState) (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done(job)
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("job %s: still %s at epoch %d after %v", job.ID, job.Status, job.Progress.Epoch, timeout)
		}
		time.Sleep(200 * time.Millisecond)
		status, _, b, err := c.do(http.MethodGet, "/v1/jobs/"+job.ID, "", nil, true)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("GET /v1/jobs/%s: status %d: %s", job.ID, status, b)
		}
		if err := json.Unmarshal(b, job); err != nil {
			return fmt.Errorf("GET /v1/jobs/%s: %w", job.ID, err)
		}
	}
}

func finished(job *jobState) (bool, error) {
	switch job.Status {
	case "succeeded":
		return true, nil
	case "failed", "cancelled":
		return false, fmt.Errorf("job %s: %s: %s", job.ID, job.Status, job.Error)
	}
	return false, nil
}

// leaveRunningJob starts a job too long to finish, waits until it has
// trained an epoch, and writes its id to file, so that the caller can check
// what a shutdown does to a running job.
func leaveRunningJob(c *client, datasetID, file string, timeout time.Duration) error {
	spec := fmt.Sprintf(`{"model_name":"smoke-long","dataset_id":%q,"training":{"epochs":1000000}}`, datasetID)
	var job jobState
	if _, err := c.expect(http.StatusAccepted, http.MethodPost, "/v1/jobs", "application/json", []byte(spec), &job); err != nil {
		return err
	}
	err := waitJob(c, &job, timeout, func(j *jobState) (bool, error) {
		if j.Status == "running" && j.Progress.Epoch >= 1 {
			return true, nil
		}
		if ok, err := finished(j); ok || err != nil {
			return false, fmt.Errorf("job %s ended (%s) before it could be left running: %v", j.ID, j.Status, err)
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("smoke: job %s: running, epoch %d\n", job.ID, job.Progress.Epoch)
	return os.WriteFile(file, []byte(job.ID), 0o644)
}

// run walks the API and returns the id of the dataset it uploaded.
func run(c *client, jobTimeout time.Duration) (string, error) {
	for _, path := range []string{"/healthz", "/readyz"} {
		status, _, b, err := c.do(http.MethodGet, path, "", nil, false)
		if err != nil {
			return "", err
		}
		if status != http.StatusOK {
			return "", fmt.Errorf("GET %s: status %d, want 200: %s", path, status, b)
		}
		fmt.Printf("smoke: GET %s: %d\n", path, status)
	}

	status, h, _, err := c.do(http.MethodGet, "/v1/datasets", "", nil, false)
	if err != nil {
		return "", err
	}
	if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		return "", fmt.Errorf("GET /v1/datasets without a token: status %d, WWW-Authenticate %q: want 401 and Bearer", status, h.Get("WWW-Authenticate"))
	}
	fmt.Println("smoke: GET /v1/datasets without a token: 401")

	var ds struct {
		ID   string `json:"id"`
		Rows int    `json:"rows"`
	}
	h, err = c.expect(http.StatusCreated, http.MethodPost, "/v1/datasets?name=smoke&target=label", "text/csv", smokeCSV(), &ds)
	if err != nil {
		return "", err
	}
	loc := h.Get("Location")
	if ds.ID == "" || loc != "/v1/datasets/"+ds.ID {
		return "", fmt.Errorf("POST /v1/datasets: id %q, Location %q: want Location /v1/datasets/{id}", ds.ID, loc)
	}
	var got struct {
		ID   string `json:"id"`
		Rows int    `json:"rows"`
	}
	if _, err := c.expect(http.StatusOK, http.MethodGet, loc, "", nil, &got); err != nil {
		return "", err
	}
	if got.ID != ds.ID || got.Rows != 40 {
		return "", fmt.Errorf("GET %s: id %q rows %d, want %q and the 40 rows uploaded", loc, got.ID, got.Rows, ds.ID)
	}

	spec := fmt.Sprintf(`{"model_name":"smoke","dataset_id":%q,"training":{"epochs":5}}`, ds.ID)
	var job jobState
	if _, err := c.expect(http.StatusAccepted, http.MethodPost, "/v1/jobs", "application/json", []byte(spec), &job); err != nil {
		return "", err
	}
	if err := waitJob(c, &job, jobTimeout, finished); err != nil {
		return "", err
	}
	fmt.Printf("smoke: job %s: succeeded\n", job.ID)

	var pred struct {
		Predictions []any `json:"predictions"`
	}
	if _, err := c.expect(http.StatusOK, http.MethodPost, "/v1/models/smoke/predict", "application/json",
		[]byte(`{"inputs":[[0.9,0.9],[0.1,0.1]]}`), &pred); err != nil {
		return "", err
	}
	if len(pred.Predictions) != 2 {
		return "", fmt.Errorf("predict: %d predictions for 2 rows", len(pred.Predictions))
	}

	status, _, b, err := c.do(http.MethodGet, "/metrics", "", nil, false)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK || !bytes.Contains(b, []byte("backpropd_build_info")) {
		return "", errors.New("GET /metrics: want 200 and backpropd_build_info in the exposition")
	}
	fmt.Println("smoke: GET /metrics: 200")
	return ds.ID, nil
}
