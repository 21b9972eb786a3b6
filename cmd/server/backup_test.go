package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBackupWhileTraining runs the backup commands of docs/operations.md,
// as written, on the data directory of a server that is training, starts a
// second server on the copy, and checks that the copy is whole: every
// dataset loads, every model predicts, and every job the copy holds
// unfinished resumes and succeeds.
func TestBackupWhileTraining(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bash is missing")
		}
		t.Skip("bash is not installed")
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(docSection(t, "../../docs/operations.md", "backup"), -1)
	if len(blocks) != 1 || !strings.HasPrefix(blocks[0][1], "SRC=data DST=backup\n") {
		t.Fatalf("the backup section should hold one sh block that starts SRC=data DST=backup; got %d blocks", len(blocks))
	}
	script := "set -euo pipefail\n" + blocks[0][1]

	dir := t.TempDir()
	src, dst := filepath.Join(dir, "data"), filepath.Join(dir, "backup")
	m1, base1, _ := startServer(t, src)
	closed := false
	defer func() {
		if !closed {
			m1.Close()
		}
	}()
	c := client{t, base1}
	csv, err := os.ReadFile("../../examples/iris.csv")
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := c.do(http.MethodPost, "/v1/datasets?name=iris&target=species", "text/csv", csv)
	if status != http.StatusCreated {
		t.Fatalf("upload: %d %s", status, body)
	}
	var ds struct{ ID string }
	if err := json.Unmarshal(body, &ds); err != nil {
		t.Fatal(err)
	}
	submit := func(name string, epochs int, inline bool) string {
		req := map[string]any{"model_name": name, "training": map[string]any{"epochs": epochs}}
		if inline {
			req["data"] = map[string]any{"features": [][]float64{{0, 0}, {0, 1}, {1, 0}, {1, 1}}, "targets": []float64{0, 1, 1, 0}}
		} else {
			req["dataset_id"] = ds.ID
		}
		var j jobView
		c.json(http.MethodPost, "/v1/jobs", req, http.StatusAccepted, &j)
		return j.ID
	}
	quick := submit("quick", 5, false)
	waitJobs(t, c, []string{quick}, 30*time.Second)

	// Long enough to be training while the copy runs, short enough to
	// finish on the copy in a few seconds. Two workers: two train, the rest
	// wait in the queue.
	var long []string
	for i, name := range []string{"iris-a", "iris-b", "xor"} {
		long = append(long, submit(name, 120, i == 2))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var j struct {
			Status   string
			Progress struct{ Epoch int }
		}
		c.json(http.MethodGet, "/v1/jobs/"+long[0], nil, http.StatusOK, &j)
		if j.Status == "running" && j.Progress.Epoch >= 1 {
			break
		}
		if j.Status != "queued" && j.Status != "running" || time.Now().After(deadline) {
			t.Fatalf("job %s is %s at epoch %d; want it training", long[0], j.Status, j.Progress.Epoch)
		}
		time.Sleep(5 * time.Millisecond)
	}

	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the backup commands failed: %v\n%s", err, out)
	}
	closed = true
	if err := m1.Close(); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dst, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			t.Errorf("the backup holds the temp file %s", path)
		}
		return nil
	})

	m2, base2, _ := startServer(t, dst)
	defer m2.Close()
	c = client{t, base2}
	var list struct {
		Jobs []struct{ ID, Status string }
	}
	c.json(http.MethodGet, "/v1/jobs?limit=100", nil, http.StatusOK, &list)
	var all, unfinished []string
	for _, j := range list.Jobs {
		all = append(all, j.ID)
		if j.Status == "queued" || j.Status == "running" {
			unfinished = append(unfinished, j.ID)
		}
	}
	if len(unfinished) == 0 {
		t.Fatalf("the copy holds no unfinished job (jobs %v), so it shows nothing about resuming", list.Jobs)
	}
	if !strings.Contains(strings.Join(all, " "), quick) {
		t.Errorf("the copy lacks job %s, which succeeded before the copy began", quick)
	}
	t.Logf("the copy holds %d jobs, %d of them unfinished", len(all), len(unfinished))
	waitJobs(t, c, all, 60*time.Second)

	var dsl struct{ Datasets []struct{ ID string } }
	c.json(http.MethodGet, "/v1/datasets", nil, http.StatusOK, &dsl)
	if len(dsl.Datasets) != 1 || dsl.Datasets[0].ID != ds.ID {
		t.Errorf("the copy lists datasets %v, want the one uploaded, %s", dsl.Datasets, ds.ID)
	}
	// A job on the uploaded dataset reads its numbers back.
	var j jobView
	c.json(http.MethodPost, "/v1/jobs", map[string]any{"model_name": "again", "dataset_id": ds.ID,
		"training": map[string]any{"epochs": 2}}, http.StatusAccepted, &j)
	waitJobs(t, c, []string{j.ID}, 30*time.Second)

	var models struct{ Models []struct{ Name string } }
	c.json(http.MethodGet, "/v1/models", nil, http.StatusOK, &models)
	if len(models.Models) != 5 {
		t.Errorf("the copy has models %v, want quick, iris-a, iris-b, xor and again", models.Models)
	}
	for _, mod := range models.Models {
		row := []float64{5.1, 3.5, 1.4, 0.2} // iris's first row
		if mod.Name == "xor" {
			row = []float64{0, 1}
		}
		var pred struct{ Predictions []any }
		c.json(http.MethodPost, "/v1/models/"+mod.Name+"/predict", map[string]any{"inputs": [][]float64{row}}, http.StatusOK, &pred)
		if len(pred.Predictions) != 1 {
			t.Errorf("model %s: predictions %v, want one", mod.Name, pred.Predictions)
		}
	}
}

// waitJobs polls until every job in ids has finished and fails the test
// unless each succeeded.
func waitJobs(t *testing.T, c client, ids []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, id := range ids {
		for {
			var j jobView
			c.json(http.MethodGet, "/v1/jobs/"+id, nil, http.StatusOK, &j)
			if j.Status == "succeeded" {
				break
			}
			if j.Status != "queued" && j.Status != "running" {
				t.Fatalf("job %s ended %s: %s", id, j.Status, j.Error)
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s is still %s after %v", id, j.Status, timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
