package deploy

import (
	"bufio"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// memoryLog is the server's start-up line about memory.
type memoryLog struct {
	Msg             string `json:"msg"`
	LimitBytes      int64  `json:"limit_bytes"`
	Source          string `json:"source"`
	BudgetBytes     int64  `json:"budget_bytes"`
	JobMaxMemory    int64  `json:"job_max_memory_bytes"`
	MaxDatasetCells int64  `json:"max_dataset_cells"`
}

// TestManifestMemoryFitsCaps runs the server with the Deployment's
// environment and the memory limit its container gets (passed as
// BACKPROPD_MEMORY_LIMIT, standing in for the cgroup this test does not
// run in) and checks the caps the server derives from it: a dataset at the
// cell cap must be trainable within what one job may use, which must fit
// the budget, which must leave headroom below the limit. Without that, the
// server would accept uploads that no job could train in the memory the
// manifest gives, or jobs that the kernel kills.
func TestManifestMemoryFitsCaps(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds and runs the server")
	}
	bin := buildServer(t)
	m := loadManifests(t)
	c := container(t, only[*appsv1.Deployment](t, m))
	lim, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		t.Fatal("deployment.yaml: the container has no memory limit")
	}
	limit := lim.Value()

	env := maps.Clone(kubernetesLaunch(t, imageLaunch(t)).env)
	env["BACKPROPD_ADDR"] = "127.0.0.1:0" // loopback: no token needed
	delete(env, "BACKPROPD_AUTH_TOKEN_FILE")
	env["BACKPROPD_DATA_DIR"] = t.TempDir()
	env["BACKPROPD_MEMORY_LIMIT"] = strconv.FormatInt(limit, 10)
	env["BACKPROPD_LOG_FORMAT"] = "json"

	cmd := exec.Command(bin)
	cmd.Env = environ(env)
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	found := make(chan memoryLog, 1)
	go func() {
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			var l memoryLog
			if json.Unmarshal(lines.Bytes(), &l) == nil && l.Msg == "memory" {
				found <- l
				return
			}
		}
		close(found)
	}()
	var got memoryLog
	select {
	case l, ok := <-found:
		if !ok {
			t.Fatal("the server exited without logging its memory settings")
		}
		got = l
	case <-time.After(30 * time.Second):
		t.Fatal("no memory line in the server's log within 30 s")
	}
	t.Logf("manifest limit %d bytes: budget %d, per job %d, dataset cap %d cells", limit, got.BudgetBytes, got.JobMaxMemory, got.MaxDatasetCells)

	if got.LimitBytes != limit || got.Source != "flag" {
		t.Errorf("server's memory limit %d from %q, want the manifest's %d from BACKPROPD_MEMORY_LIMIT", got.LimitBytes, got.Source, limit)
	}
	if !(got.JobMaxMemory > 0 && got.JobMaxMemory <= got.BudgetBytes && got.BudgetBytes < limit) {
		t.Errorf("want 0 < per-job %d <= budget %d < limit %d", got.JobMaxMemory, got.BudgetBytes, limit)
	}
	// The values alone of a dataset at the cap (8 bytes each) must leave
	// room in one job's memory for its indices, targets and network; the
	// server derives the cap from its own estimate of exactly that
	// (internal/jobs TestMaxCellsFor).
	if data := got.MaxDatasetCells * 8; data > got.JobMaxMemory/2 {
		t.Errorf("a dataset at the cap of %d cells holds %d bytes of values, more than half the %d bytes one job may use",
			got.MaxDatasetCells, data, got.JobMaxMemory)
	}
	// And the cap must still admit a useful dataset: a million rows of
	// one feature, the size of the 4 MB CSV that once crashed the server.
	if got.MaxDatasetCells < 1<<20 {
		t.Errorf("dataset cap %d cells is below 1,048,576 for a %d-byte limit", got.MaxDatasetCells, limit)
	}
}
