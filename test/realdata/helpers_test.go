package realdata

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/backpropd/backpropd/test/internal/serverproc"
)

// serverBin is cmd/server built once for the package.
var serverBin string

func TestMain(m *testing.M) {
	os.Exit(serverproc.Main(m, &serverBin))
}

// client talks to one run of the binary.
type client struct {
	tb  testing.TB
	url string
}

// startServer runs the binary on a fresh data directory.
func startServer(tb testing.TB) *client {
	tb.Helper()
	p := serverproc.Start(tb, serverBin, tb.TempDir(), serverproc.Env())
	return &client{tb: tb, url: p.URL}
}

// response is a status code and a body.
type response struct {
	status int
	body   []byte
}

func (c *client) do(method, path, contentType string, body []byte) response {
	c.tb.Helper()
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	if err != nil {
		c.tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return response{status: res.StatusCode, body: b}
}

func (c *client) doJSON(method, path string, v any) response {
	c.tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.tb.Fatal(err)
	}
	return c.do(method, path, "application/json", b)
}

func mustDecode(tb testing.TB, r response, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.body, err)
	}
}

// columnSummary is the part of a dataset's column summary the tests read.
type columnSummary struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Role    string `json:"role"`
	Reason  string `json:"reason"`
	Missing int    `json:"missing"`
}

// dataset is the part of an upload's response the tests read.
type dataset struct {
	ID          string          `json:"id"`
	Rows        int             `json:"rows"`
	Task        string          `json:"task"`
	Classes     []string        `json:"classes"`
	Columns     []columnSummary `json:"columns"`
	Warnings    []string        `json:"warnings"`
	DroppedRows int             `json:"dropped_rows"`
}

func (d dataset) column(tb testing.TB, name string) columnSummary {
	tb.Helper()
	for _, c := range d.Columns {
		if c.Name == name {
			return c
		}
	}
	tb.Fatalf("dataset has no column %q: %+v", name, d.Columns)
	return columnSummary{}
}

// upload posts a CSV table to /v1/datasets with the query and returns the
// dataset, failing the test unless it is created.
func (c *client) upload(query string, table []byte) dataset {
	c.tb.Helper()
	r := c.do(http.MethodPost, "/v1/datasets?"+query, "text/csv", table)
	if r.status != http.StatusCreated {
		c.tb.Fatalf("upload ?%s: %d %s", query, r.status, r.body)
	}
	var d dataset
	mustDecode(c.tb, r, &d)
	return d
}

// train submits a job on the dataset with the given hidden layer, epochs
// and learning rate (Adam, seed 1) and waits for it to succeed.
func (c *client) train(model, datasetID string, units, epochs int, lr float64) {
	c.tb.Helper()
	r := c.doJSON(http.MethodPost, "/v1/jobs", map[string]any{
		"model_name": model, "dataset_id": datasetID,
		"network": map[string]any{"hidden": []map[string]any{{"units": units, "activation": "tanh"}}},
		"training": map[string]any{"epochs": epochs, "batch_size": 16, "seed": 1,
			"optimizer": map[string]any{"name": "adam", "learning_rate": lr}},
	})
	if r.status != http.StatusAccepted && r.status != http.StatusCreated {
		c.tb.Fatalf("submit job: %d %s", r.status, r.body)
	}
	var job struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	mustDecode(c.tb, r, &job)
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		r := c.do(http.MethodGet, "/v1/jobs/"+job.ID, "", nil)
		if r.status != http.StatusOK {
			c.tb.Fatalf("get job %s: %d %s", job.ID, r.status, r.body)
		}
		mustDecode(c.tb, r, &job)
		switch job.Status {
		case "succeeded":
			return
		case "failed", "cancelled":
			c.tb.Fatalf("job %s %s: %s", job.ID, job.Status, job.Error)
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("job %s still %s after 5 minutes", job.ID, job.Status)
		}
	}
}

// modelInput is one input column of a model's metadata.
type modelInput struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Levels []string `json:"levels"`
}

// inputs returns the model's input columns from its metadata.
func (c *client) inputs(model string) []modelInput {
	c.tb.Helper()
	r := c.do(http.MethodGet, "/v1/models/"+model, "", nil)
	if r.status != http.StatusOK {
		c.tb.Fatalf("get model %s: %d %s", model, r.status, r.body)
	}
	var m struct {
		Inputs []modelInput `json:"inputs"`
	}
	mustDecode(c.tb, r, &m)
	if len(m.Inputs) == 0 {
		c.tb.Fatalf("model %s lists no inputs: %s", model, r.body)
	}
	return m.Inputs
}

// prediction is a classifier's /v1 answer.
type prediction struct {
	Predictions []string `json:"predictions"`
	Warnings    []string `json:"warnings"`
}

// predict posts rows to /v1/models/{model}/predict and fails the test
// unless it answers 200 with a label per row.
func (c *client) predict(model string, rows []any) prediction {
	c.tb.Helper()
	r := c.doJSON(http.MethodPost, "/v1/models/"+model+"/predict", map[string]any{"inputs": rows})
	if r.status != http.StatusOK {
		c.tb.Fatalf("predict %s: %d %s", model, r.status, r.body)
	}
	var p prediction
	mustDecode(c.tb, r, &p)
	if len(p.Predictions) != len(rows) {
		c.tb.Fatalf("predict %s: %d predictions for %d rows", model, len(p.Predictions), len(rows))
	}
	return p
}

// table is a parsed CSV: its header and its records.
type table struct {
	header []string
	rows   [][]string
}

func parseCSV(tb testing.TB, b []byte) table {
	tb.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(recs) < 2 {
		tb.Fatalf("parse CSV: %v (%d records)", err, len(recs))
	}
	return table{header: recs[0], rows: recs[1:]}
}

// split shuffles the rows with a PCG seeded by seed and holds out the
// first fraction of them: the test, not the server, decides which rows
// the model never sees.
func (t table) split(seed uint64, fraction float64) (train, held table) {
	idx := rand.New(rand.NewPCG(seed, seed)).Perm(len(t.rows))
	n := int(fraction * float64(len(t.rows)))
	train.header, held.header = t.header, t.header
	for i, r := range idx {
		if i < n {
			held.rows = append(held.rows, t.rows[r])
		} else {
			train.rows = append(train.rows, t.rows[r])
		}
	}
	return train, held
}

// csv writes the table back as CSV, quoting what needs it.
func (t table) csv(tb testing.TB) []byte {
	tb.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write(t.header); err != nil {
		tb.Fatal(err)
	}
	if err := w.WriteAll(t.rows); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func (t table) col(tb testing.TB, name string) int {
	tb.Helper()
	for i, h := range t.header {
		if h == name {
			return i
		}
	}
	tb.Fatalf("no column %q in %q", name, t.header)
	return -1
}

// missingCell is what the tests' tables write for a missing cell besides
// the empty one: R's NA, as penguins_raw.csv has it.
const missingCell = "NA"

// rawRows turns the held-out records into /v1 object rows keyed by the
// model's input column names, each cell raw as a client holds it: a JSON
// number for a number column, the cell's text for a category or a date,
// and a left-out key for a missing cell (every second one) or null (the
// others), so that both spellings of missing are predicted.
func (t table) rawRows(tb testing.TB, inputs []modelInput) []any {
	tb.Helper()
	cols := make([]int, len(inputs))
	for i, in := range inputs {
		cols[i] = t.col(tb, in.Name)
	}
	var rows []any
	missing := 0
	for _, rec := range t.rows {
		row := map[string]any{}
		for i, in := range inputs {
			cell := rec[cols[i]]
			if cell == "" || cell == missingCell {
				missing++
				if missing%2 == 0 {
					row[in.Name] = nil
				}
				continue
			}
			if in.Type == "number" {
				v, err := strconv.ParseFloat(cell, 64)
				if err != nil {
					tb.Fatalf("column %s: %q is not a number", in.Name, cell)
				}
				row[in.Name] = v
			} else {
				row[in.Name] = cell
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// accuracy is the share of predictions equal to the held-out labels.
func accuracy(got []string, want []string) float64 {
	right := 0
	for i := range want {
		if got[i] == want[i] {
			right++
		}
	}
	return float64(right) / float64(len(want))
}

// column returns the cells of one column.
func (t table) column(tb testing.TB, name string) []string {
	tb.Helper()
	j := t.col(tb, name)
	out := make([]string, len(t.rows))
	for i, r := range t.rows {
		out[i] = r[j]
	}
	return out
}

// warningsMention reports whether some warning contains every part.
func warningsMention(ws []string, parts ...string) bool {
	for _, w := range ws {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(w, p)
		}
		if all {
			return true
		}
	}
	return false
}

// urlQuery escapes a query value.
func urlQuery(s string) string { return url.QueryEscape(s) }
