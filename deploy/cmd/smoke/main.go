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
	flag.Parse()
	token, err := os.ReadFile(*tokenFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "smoke: token: %v\n", err)
		os.Exit(2)
	}
	c := &client{base: strings.TrimRight(*base, "/"), token: strings.TrimSpace(string(token)), http: &http.Client{Timeout: 30 * time.Second}}
	if err := run(c, *timeout); err != nil {
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

func run(c *client, jobTimeout time.Duration) error {
	for _, path := range []string{"/healthz", "/readyz"} {
		status, _, b, err := c.do(http.MethodGet, path, "", nil, false)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("GET %s: status %d, want 200: %s", path, status, b)
		}
		fmt.Printf("smoke: GET %s: %d\n", path, status)
	}

	status, h, _, err := c.do(http.MethodGet, "/v1/datasets", "", nil, false)
	if err != nil {
		return err
	}
	if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
		return fmt.Errorf("GET /v1/datasets without a token: status %d, WWW-Authenticate %q: want 401 and Bearer", status, h.Get("WWW-Authenticate"))
	}
	fmt.Println("smoke: GET /v1/datasets without a token: 401")

	var ds struct {
		ID   string `json:"id"`
		Rows int    `json:"rows"`
	}
	h, err = c.expect(http.StatusCreated, http.MethodPost, "/v1/datasets?name=smoke&target=label", "text/csv", smokeCSV(), &ds)
	if err != nil {
		return err
	}
	loc := h.Get("Location")
	if ds.ID == "" || loc != "/v1/datasets/"+ds.ID {
		return fmt.Errorf("POST /v1/datasets: id %q, Location %q: want Location /v1/datasets/{id}", ds.ID, loc)
	}
	var got struct {
		ID   string `json:"id"`
		Rows int    `json:"rows"`
	}
	if _, err := c.expect(http.StatusOK, http.MethodGet, loc, "", nil, &got); err != nil {
		return err
	}
	if got.ID != ds.ID || got.Rows != 40 {
		return fmt.Errorf("GET %s: id %q rows %d, want %q and the 40 rows uploaded", loc, got.ID, got.Rows, ds.ID)
	}

	spec := fmt.Sprintf(`{"model_name":"smoke","dataset_id":%q,"training":{"epochs":5}}`, ds.ID)
	var job struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	if _, err := c.expect(http.StatusAccepted, http.MethodPost, "/v1/jobs", "application/json", []byte(spec), &job); err != nil {
		return err
	}
	deadline := time.Now().Add(jobTimeout)
	for job.Status != "succeeded" {
		switch job.Status {
		case "failed", "cancelled":
			return fmt.Errorf("job %s: %s: %s", job.ID, job.Status, job.Error)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("job %s: still %s after %v", job.ID, job.Status, jobTimeout)
		}
		time.Sleep(200 * time.Millisecond)
		status, _, b, err := c.do(http.MethodGet, "/v1/jobs/"+job.ID, "", nil, true)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("GET /v1/jobs/%s: status %d: %s", job.ID, status, b)
		}
		if err := json.Unmarshal(b, &job); err != nil {
			return fmt.Errorf("GET /v1/jobs/%s: %w", job.ID, err)
		}
	}
	fmt.Printf("smoke: job %s: succeeded\n", job.ID)

	var pred struct {
		Predictions []any `json:"predictions"`
	}
	if _, err := c.expect(http.StatusOK, http.MethodPost, "/v1/models/smoke/predict", "application/json",
		[]byte(`{"inputs":[[0.9,0.9],[0.1,0.1]]}`), &pred); err != nil {
		return err
	}
	if len(pred.Predictions) != 2 {
		return fmt.Errorf("predict: %d predictions for 2 rows", len(pred.Predictions))
	}

	status, _, b, err := c.do(http.MethodGet, "/metrics", "", nil, false)
	if err != nil {
		return err
	}
	if status != http.StatusOK || !bytes.Contains(b, []byte("backpropd_build_info")) {
		return errors.New("GET /metrics: want 200 and backpropd_build_info in the exposition")
	}
	fmt.Println("smoke: GET /metrics: 200")
	return nil
}
