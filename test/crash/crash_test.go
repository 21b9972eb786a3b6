package crash

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/store"
)

// blobsCSV is a three-class problem: Gaussian clusters in `features`
// dimensions, rows rows, from seed. Big enough that one epoch takes tens
// of milliseconds, so that kills land inside training.
func blobsCSV(rows, features int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	var b strings.Builder
	for i := range features {
		fmt.Fprintf(&b, "f%d,", i)
	}
	b.WriteString("class\n")
	for i := range rows {
		c := i % 3
		for j := range features {
			fmt.Fprintf(&b, "%.4f,", float64(c*(j%3))+r.NormFloat64())
		}
		fmt.Fprintf(&b, "c%d\n", c)
	}
	return []byte(b.String())
}

// jobSpec is a job on the dataset: no validation data, so no early
// stopping, and every job runs exactly its epochs.
func jobSpec(model, dataset string, epochs int) []byte {
	return fmt.Appendf(nil, `{"model_name":%q,"dataset_id":%q,
		"network":{"hidden":[{"units":48,"activation":"relu"},{"units":24,"activation":"tanh"}]},
		"training":{"epochs":%d,"batch_size":32,"optimizer":{"name":"adam","learning_rate":0.01}}}`, model, dataset, epochs)
}

// crashRounds is how many SIGKILL rounds TestKillRestart runs:
// BACKPROPD_CRASH_ROUNDS, or 6 (one per phase) in the normal suite.
func crashRounds(t *testing.T) int {
	if v := os.Getenv("BACKPROPD_CRASH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("BACKPROPD_CRASH_ROUNDS=%q: want a positive integer", v)
		}
		return n
	}
	if testing.Short() {
		return 2
	}
	return 6
}

// crashSeed is BACKPROPD_CRASH_SEED (to replay a failure) or the clock.
func crashSeed(t *testing.T) uint64 {
	if v := os.Getenv("BACKPROPD_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("BACKPROPD_CRASH_SEED=%q: %v", v, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// ledger is what the test knows the server promised.
type ledger struct {
	mu       sync.Mutex
	accepted map[string]int // job id -> epochs asked
	// floor is, for jobs killed mid-training, the number of epochs the
	// checkpoint must at least hold: the last epoch event seen before the
	// kill, minus one (the event is published before the checkpoint of
	// that epoch is written).
	floor map[string]int
	// interrupted jobs were seen running when the server was killed.
	interrupted map[string]bool
	// want is the acknowledged end of a job the test cancelled ("cancelled"),
	// stopped ("stopped") or deleted ("deleted") just before a kill.
	want map[string]string
	// present and gone are paths (a model version, a dataset) whose
	// creation (201) or deletion (204) was acknowledged just before a
	// kill: GET must answer 200 or 404 after the restarts.
	present, gone []string
}

func (l *ledger) accept(id string, epochs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accepted[id] = epochs
}

// submit posts a job and records it when the server answers 202.
func (l *ledger) submit(s *server, dataset string, n, epochs int) (string, error) {
	var j job
	status, err := s.call(context.Background(), "POST", "/v1/jobs", "application/json",
		jobSpec(fmt.Sprintf("m%d", n%5), dataset, epochs), &j)
	if err != nil {
		return "", err
	}
	if status != 202 || j.ID == "" {
		return "", fmt.Errorf("submit: %d %+v", status, j)
	}
	l.accept(j.ID, epochs)
	return j.ID, nil
}

// submitInline posts a job whose data comes inline (the server stores it
// as a hidden dataset) and records it when the server answers 202.
func (l *ledger) submitInline(s *server, n, epochs int) (string, error) {
	var b strings.Builder
	b.WriteString(`{"features":[`)
	for i := range 60 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "[%d,%d]", i%7, i%3)
	}
	b.WriteString(`],"targets":[`)
	for i := range 60 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"c%d"`, i%3)
	}
	b.WriteString(`]}`)
	var j job
	status, err := s.call(context.Background(), "POST", "/v1/jobs", "application/json",
		fmt.Appendf(nil, `{"model_name":"inline%d","data":%s,"training":{"epochs":%d}}`, n%3, b.String(), epochs), &j)
	if err != nil {
		return "", err
	}
	if status != 202 || j.ID == "" {
		return "", fmt.Errorf("submit: %d %+v", status, j)
	}
	l.accept(j.ID, epochs)
	return j.ID, nil
}

// TestKillRestart is the crash-safety requirement: SIGKILL the server at seeded
// random moments in each of four phases (accepting jobs, mid-training
// where every epoch writes a checkpoint, right after the last epoch where
// the model is saved, and anywhere), restart it each time, and check that
// nothing the API accepted is lost.
func TestKillRestart(t *testing.T) {
	rounds := crashRounds(t)
	seed := crashSeed(t)
	t.Logf("seed %d (replay with BACKPROPD_CRASH_SEED=%d), %d rounds", seed, seed, rounds)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	l := &ledger{accepted: map[string]int{}, floor: map[string]int{}, interrupted: map[string]bool{}, want: map[string]string{}}

	s := startServer(t, dir)
	var ds struct {
		ID string `json:"id"`
	}
	if _, err := s.call(context.Background(), "POST", "/v1/datasets?name=blobs&target=class", "text/csv",
		blobsCSV(12000, 10, seed), &ds); err != nil {
		t.Fatalf("upload: %v", err)
	}
	datasets := map[string]int{ds.ID: 12000} // id -> rows, for every 201
	phases := []string{"accepting", "checkpointing", "saving", "anywhere", "uploading", "mutating"}
	counts := map[string]int{}
	n := 0
	for round := range rounds {
		if round > 0 {
			s = startServer(t, dir)
			checkFloors(t, s, l)
		}
		phase := phases[rng.IntN(len(phases))]
		if round < len(phases) {
			phase = phases[round] // every phase at least once when rounds allow
		}
		counts[phase]++
		switch phase {
		case "accepting":
			// Several submissions race the kill; those answered 202
			// before it must survive.
			var wg sync.WaitGroup
			for i := range 4 {
				n++
				k, epochs := n, 5+rng.IntN(10) // rng stays on this goroutine
				if i%2 == 1 {
					wg.Go(func() { _, _ = l.submitInline(s, k, epochs) })
					continue
				}
				wg.Go(func() { _, _ = l.submit(s, ds.ID, k, epochs) })
			}
			time.Sleep(time.Duration(rng.IntN(40000)) * time.Microsecond)
			s.kill()
			wg.Wait()
		case "checkpointing":
			n++
			epochs := 40
			id, err := l.submit(s, ds.ID, n, epochs)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			target := 2 + rng.IntN(epochs-8)
			last := 0
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			err = s.followEpochs(ctx, id, func(e int) bool { last = e; return e >= target })
			cancel()
			// A short random delay moves the kill across the epoch's
			// checkpoint and record writes.
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
			s.kill()
			if err != nil || last < target {
				t.Fatalf("round %d: events of %s ended at epoch %d of %d: %v", round, id, last, target, err)
			}
			l.mu.Lock()
			l.floor[id] = last - 1
			l.interrupted[id] = true
			l.mu.Unlock()
		case "saving":
			n++
			epochs := 6
			id, err := l.submit(s, ds.ID, n, epochs)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			_ = s.followEpochs(ctx, id, func(e int) bool { return e >= epochs })
			cancel()
			time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
			s.kill()
		case "uploading":
			// One small upload completes; a large one streams in slowly
			// and is cut by the kill.
			var small struct {
				ID string `json:"id"`
			}
			if _, err := s.call(context.Background(), "POST", "/v1/datasets?name=small&target=class", "text/csv",
				blobsCSV(300, 10, seed+uint64(round)), &small); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			datasets[small.ID] = 300
			big := blobsCSV(12000, 10, seed)
			pr, pw := io.Pipe()
			go func() {
				for off := 0; off < len(big); off += 16 << 10 {
					if _, err := pw.Write(big[off:min(off+16<<10, len(big))]); err != nil {
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
				pw.Close()
			}()
			upload := make(chan struct{})
			var bigID struct {
				ID string `json:"id"`
			}
			var upErr error
			go func() {
				defer close(upload)
				req, _ := http.NewRequest("POST", s.url+"/v1/datasets?name=big&target=class", pr)
				req.Header.Set("Content-Type", "text/csv")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					upErr = err
					return
				}
				defer res.Body.Close()
				if res.StatusCode != 201 || json.NewDecoder(res.Body).Decode(&bigID) != nil {
					upErr = fmt.Errorf("status %d", res.StatusCode)
				}
			}()
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
			s.kill()
			pw.CloseWithError(errors.New("server killed"))
			<-upload
			if upErr == nil {
				datasets[bigID.ID] = 12000
			}
		case "mutating":
			// Acknowledged changes must survive a kill right after the
			// answer: a cancel, a stop, the deletion of a finished job, a
			// model import, a model version's and a dataset's deletion.
			n++
			id, err := l.submit(s, ds.ID, n, 200)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			_ = s.followEpochs(ctx, id, func(e int) bool { return e >= 2 })
			cancel()
			op := []string{"cancel", "stop"}[rng.IntN(2)]
			var j job
			if _, err := s.call(context.Background(), "POST", "/v1/jobs/"+id+"/"+op, "", nil, &j); err != nil {
				t.Fatalf("round %d: %s: %v", round, op, err)
			}
			l.want[id] = map[string]string{"cancel": "cancelled", "stop": "stopped"}[op]
			for done := range l.accepted {
				if done == id || l.want[done] != "" {
					continue
				}
				if fj, _, err := s.getJob(done); err == nil && fj.terminal() {
					status, err := s.call(context.Background(), "DELETE", "/v1/jobs/"+done, "", nil, nil)
					if status == 204 {
						l.want[done] = "deleted"
						break
					}
					t.Logf("round %d: delete %s: %v", round, done, err)
				}
			}
			mutateStore(t, s, l, round)
			s.kill()
		case "anywhere":
			for range 2 {
				n++
				if _, err := l.submit(s, ds.ID, n, 10+rng.IntN(20)); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
			s.kill()
		}
		t.Logf("round %d: killed while %s; %d jobs accepted so far", round, phase, len(l.accepted))
	}
	t.Logf("kills per phase: %v", counts)

	s = startServer(t, dir)
	checkFloors(t, s, l)
	final := waitAllTerminal(t, s, l)
	checkJobs(t, l, final)
	checkModels(t, s)
	checkDatasets(t, s, datasets)
	checkAcknowledged(t, s, l)
	used := allJobDatasets(t, s)
	if took, code := s.terminate(15 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM (%v):\n%s", code, took, s.Logs())
	}
	checkNoLeftovers(t, dir)
	checkModelFiles(t, dir)
	checkNoOrphanInlineData(t, dir, used)
}

// allJobDatasets lists every job the server holds, including jobs whose
// 202 a kill kept from the test, and returns the datasets they train on.
func allJobDatasets(t *testing.T, s *server) map[string]bool {
	t.Helper()
	used := map[string]bool{}
	cursor := ""
	for {
		var page struct {
			Jobs       []job  `json:"jobs"`
			NextCursor string `json:"next_cursor"`
		}
		if _, err := s.call(context.Background(), "GET", "/v1/jobs?limit=1000&cursor="+cursor, "", nil, &page); err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Jobs {
			used[j.Spec.DatasetID] = true
		}
		if page.NextCursor == "" {
			return used
		}
		cursor = page.NextCursor
	}
}

// checkNoOrphanInlineData: every hidden dataset (a job's inline data) on
// disk belongs to a job that exists; a kill between storing the data and
// the job record, or between deleting a job and its data, must not leave
// data that nothing lists or deletes.
func checkNoOrphanInlineData(t *testing.T, dir string, used map[string]bool) {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	metas, _ := filepath.Glob(filepath.Join(dir, "datasets", "*.meta"))
	hidden, orphans := 0, 0
	for _, p := range metas {
		id := strings.TrimSuffix(filepath.Base(p), ".meta")
		m, err := st.DatasetMeta(context.Background(), id)
		if err != nil {
			t.Errorf("dataset %s: %v", id, err)
			continue
		}
		if !m.Hidden {
			continue
		}
		hidden++
		if !used[id] {
			orphans++
			t.Errorf("inline dataset %s belongs to no job: left behind by a kill", id)
		}
	}
	if len(metas) == 0 {
		t.Error("no dataset metadata files found; the store's layout changed and this check proves nothing")
	}
	t.Logf("%d inline datasets on disk, %d of them belonging to no job", hidden, orphans)
}

// checkDatasets: every dataset answered 201 is listed with its rows, and
// every listed dataset (a kill may have hidden a 201) is whole: its
// metadata reads and it loads for training (checkModelFiles loads them
// from the store).
func checkDatasets(t *testing.T, s *server, accepted map[string]int) {
	t.Helper()
	var list struct {
		Datasets []struct {
			ID   string `json:"id"`
			Rows int    `json:"rows"`
		} `json:"datasets"`
	}
	if _, err := s.call(context.Background(), "GET", "/v1/datasets", "", nil, &list); err != nil {
		t.Fatal(err)
	}
	listed := map[string]int{}
	for _, d := range list.Datasets {
		listed[d.ID] = d.Rows
	}
	for id, rows := range accepted {
		if got, ok := listed[id]; !ok || got != rows {
			t.Errorf("dataset %s was created (201) with %d rows; listed: %v, %d rows", id, rows, ok, got)
		}
	}
	t.Logf("%d datasets answered 201, %d listed", len(accepted), len(listed))
}

// mutateStore makes acknowledged changes to stored objects just before a
// kill: it imports a stored model file as a new version of "imported",
// deletes the oldest version of a model that has two, and uploads and
// deletes a small dataset.
func mutateStore(t *testing.T, s *server, l *ledger, round int) {
	t.Helper()
	ctx := context.Background()
	var list struct {
		Models []struct {
			Name     string `json:"name"`
			Versions []int  `json:"versions"`
		} `json:"models"`
	}
	if _, err := s.call(ctx, "GET", "/v1/models", "", nil, &list); err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	deleted := false
	for _, m := range list.Models {
		if len(m.Versions) == 0 || m.Name == "imported" {
			continue
		}
		if len(l.present) < 20 {
			res, err := http.Get(fmt.Sprintf("%s/v1/models/%s/versions/%d/file", s.url, m.Name, m.Versions[0]))
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			file, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("round %d: export: %d %v", round, res.StatusCode, err)
			}
			var meta struct {
				Version int `json:"version"`
			}
			if _, err := s.call(ctx, "POST", "/v1/models/imported/versions", "application/octet-stream", file, &meta); err != nil {
				t.Fatalf("round %d: import: %v", round, err)
			}
			l.present = append(l.present, fmt.Sprintf("/v1/models/imported/versions/%d", meta.Version))
		}
		if !deleted && len(m.Versions) >= 2 {
			path := fmt.Sprintf("/v1/models/%s/versions/%d", m.Name, m.Versions[0])
			if status, err := s.call(ctx, "DELETE", path, "", nil, nil); status != 204 {
				t.Fatalf("round %d: DELETE %s: %d %v", round, path, status, err)
			}
			l.gone = append(l.gone, path)
			deleted = true
		}
	}
	var ds struct {
		ID string `json:"id"`
	}
	if _, err := s.call(ctx, "POST", "/v1/datasets?name=doomed&target=class", "text/csv", blobsCSV(30, 3, 1), &ds); err != nil {
		t.Fatalf("round %d: %v", round, err)
	}
	if status, err := s.call(ctx, "DELETE", "/v1/datasets/"+ds.ID, "", nil, nil); status != 204 {
		t.Fatalf("round %d: DELETE dataset: %d %v", round, status, err)
	}
	l.gone = append(l.gone, "/v1/datasets/"+ds.ID)
}

// checkAcknowledged: every acknowledged creation is there, every
// acknowledged deletion is gone.
func checkAcknowledged(t *testing.T, s *server, l *ledger) {
	t.Helper()
	for _, p := range l.present {
		if status, err := s.call(context.Background(), "GET", p, "", nil, nil); status != 200 {
			t.Errorf("%s was created (201) before a kill; now %d %v", p, status, err)
		}
	}
	for _, p := range l.gone {
		if status, _ := s.call(context.Background(), "GET", p, "", nil, nil); status != 404 {
			t.Errorf("%s was deleted (204) before a kill; now %d", p, status)
		}
	}
	t.Logf("%d acknowledged imports present, %d acknowledged deletions gone", len(l.present), len(l.gone))
}

// checkFloors polls the jobs killed mid-training right after a restart:
// their history must never hold fewer epochs than their checkpoint did,
// which it would if a job started over from scratch.
func checkFloors(t *testing.T, s *server, l *ledger) {
	t.Helper()
	l.mu.Lock()
	floors := make(map[string]int, len(l.floor))
	for id, f := range l.floor {
		floors[id] = f
	}
	l.floor = map[string]int{}
	l.mu.Unlock()
	problems, err := floorViolations(s, floors)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// floorViolations polls the jobs for 1.5 s, or until they end, and
// describes each one seen holding fewer epochs than its floor.
func floorViolations(s *server, floors map[string]int) ([]string, error) {
	var out []string
	deadline := time.Now().Add(1500 * time.Millisecond)
	for len(floors) > 0 && time.Now().Before(deadline) {
		for id, f := range floors {
			j, _, err := s.getJob(id)
			if err != nil {
				return out, fmt.Errorf("job %s after restart: %w", id, err)
			}
			if len(j.History) < f {
				out = append(out, fmt.Sprintf("job %s holds %d epochs after a restart; its checkpoint had at least %d: it did not resume",
					id, len(j.History), f))
				delete(floors, id)
				continue
			}
			if j.terminal() {
				delete(floors, id)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return out, nil
}

// TestFloorCheckCatchesARestartFromScratch tests the harness: a job killed
// at epoch 10 whose checkpoint is then deleted starts over, and the check
// TestKillRestart relies on for "resumed from its checkpoint" must say so.
func TestFloorCheckCatchesARestartFromScratch(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	var ds struct {
		ID string `json:"id"`
	}
	if _, err := s.call(context.Background(), "POST", "/v1/datasets?name=blobs&target=class", "text/csv",
		blobsCSV(12000, 10, 1), &ds); err != nil {
		t.Fatal(err)
	}
	l := &ledger{accepted: map[string]int{}, floor: map[string]int{}, interrupted: map[string]bool{}, want: map[string]string{}}
	id, err := l.submit(s, ds.ID, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	last := 0
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	err = s.followEpochs(ctx, id, func(e int) bool { last = e; return e >= 10 })
	cancel()
	s.kill()
	if err != nil || last < 10 {
		t.Fatalf("events ended at epoch %d: %v", last, err)
	}
	cps, _ := filepath.Glob(filepath.Join(dir, "checkpoints", "*"))
	if len(cps) == 0 {
		t.Fatal("no checkpoint file to delete; the store's layout changed")
	}
	for _, p := range cps {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	s = startServer(t, dir)
	problems, err := floorViolations(s, map[string]int{id: last - 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) == 0 {
		t.Error("a job restarted from scratch passed the resume check")
	}
	if _, err := s.call(context.Background(), "POST", "/v1/jobs/"+id+"/cancel", "", nil, nil); err != nil {
		t.Fatal(err)
	}
}

// waitAllTerminal waits until every accepted job is finished and returns
// them.
func waitAllTerminal(t *testing.T, s *server, l *ledger) map[string]job {
	t.Helper()
	out := map[string]job{}
	deadline := time.Now().Add(5 * time.Minute)
	for id := range l.accepted {
		for {
			j, status, err := s.getJob(id)
			if l.want[id] == "deleted" {
				if status != 404 {
					t.Errorf("job %s was deleted (204) before a kill and is back: %d %s", id, status, j.Status)
				}
				break
			}
			if status == 404 {
				t.Fatalf("job %s was accepted (202) and is gone", id)
			}
			if err != nil {
				t.Fatalf("job %s: %v", id, err)
			}
			if j.terminal() {
				out[id] = j
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s still %s after 5 minutes", id, j.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return out
}

// checkJobs: every accepted job succeeded with all its epochs, one entry
// per epoch in order, except that the manager may give up on a job
// interrupted three times (its documented limit); interrupted jobs
// counted their runs.
func checkJobs(t *testing.T, l *ledger, final map[string]job) {
	t.Helper()
	succeeded, gaveUp := 0, 0
	for id, j := range final {
		switch l.want[id] {
		case "cancelled":
			if j.Status != "cancelled" {
				t.Errorf("job %s was cancelled (200) before a kill and ended %s", id, j.Status)
			}
			continue
		case "stopped":
			if j.Status != "succeeded" || !j.StoppedEarly || j.ModelVersion < 1 {
				t.Errorf("job %s was stopped (200) before a kill and ended %s, stopped_early %v, version %d: %s",
					id, j.Status, j.StoppedEarly, j.ModelVersion, j.Error)
			}
			continue
		}
		switch {
		case j.Status == "succeeded":
			succeeded++
			if len(j.History) != l.accepted[id] || j.ModelVersion < 1 {
				t.Errorf("job %s succeeded with %d epochs of %d, model version %d", id, len(j.History), l.accepted[id], j.ModelVersion)
			}
			for i, e := range j.History {
				if e.Epoch != i+1 {
					t.Errorf("job %s: history[%d] is epoch %d", id, i, e.Epoch)
					break
				}
			}
		case j.Status == "failed" && strings.Contains(j.Error, "interrupted") && j.Attempts >= 3:
			gaveUp++
		default:
			t.Errorf("job %s ended %s after %d attempts: %s", id, j.Status, j.Attempts, j.Error)
		}
		if l.interrupted[id] && j.Attempts < 2 {
			t.Errorf("job %s was killed while running, yet counts %d attempt", id, j.Attempts)
		}
	}
	t.Logf("%d jobs accepted: %d succeeded, %d given up after 3 interruptions, %d killed mid-training, %d cancelled, stopped or deleted before a kill",
		len(final), succeeded, gaveUp, len(l.interrupted), len(l.want))
	if succeeded == 0 {
		t.Error("no job succeeded")
	}
}

// checkModels predicts with every version of every stored model.
func checkModels(t *testing.T, s *server) {
	t.Helper()
	var list struct {
		Models []struct {
			Name     string `json:"name"`
			Versions []int  `json:"versions"`
		} `json:"models"`
	}
	if _, err := s.call(context.Background(), "GET", "/v1/models", "", nil, &list); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range list.Models {
		for _, v := range m.Versions {
			var meta struct {
				FeatureNames []string `json:"feature_names"`
			}
			if _, err := s.call(context.Background(), "GET", fmt.Sprintf("/v1/models/%s/versions/%d", m.Name, v), "", nil, &meta); err != nil {
				t.Errorf("model %s v%d: %v", m.Name, v, err)
				continue
			}
			row := strings.TrimSuffix(strings.Repeat("0.5,", len(meta.FeatureNames)), ",")
			body := []byte(`{"inputs":[[` + row + `],[` + row + `]]}`)
			var res struct {
				Predictions []string `json:"predictions"`
			}
			path := fmt.Sprintf("/v1/models/%s/versions/%d/predict", m.Name, v)
			if _, err := s.call(context.Background(), "POST", path, "application/json", body, &res); err != nil {
				t.Errorf("%s: %v", path, err)
			} else if len(res.Predictions) != 2 {
				t.Errorf("%s: %d predictions for 2 rows", path, len(res.Predictions))
			}
			n++
		}
	}
	if n == 0 {
		t.Error("no stored model")
	}
	t.Logf("%d model versions predict", n)
}

// checkNoLeftovers walks the data directory of a cleanly stopped server:
// no temporary files, no checkpoints of finished jobs.
func checkNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		rel, _ := filepath.Rel(dir, p)
		if strings.Contains(name, ".tmp") || strings.HasSuffix(name, "~") {
			t.Errorf("temporary file left: %s", rel)
		}
		if !d.IsDir() && strings.HasPrefix(rel, "checkpoints"+string(filepath.Separator)) {
			t.Errorf("checkpoint left after every job finished: %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkModelFiles opens the data directory with the store, loads every
// dataset and decodes every model file with the engine: files on disk are
// whole.
func checkModelFiles(t *testing.T, dir string) {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	names, err := st.ListModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sets, err := st.ListDatasets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range sets {
		if got, err := st.LoadDataset(ctx, d.ID); err != nil || got.Meta.Rows != d.Rows {
			t.Errorf("dataset %s does not load whole: %v", d.ID, err)
		}
	}
	for _, n := range names {
		for _, v := range n.Versions {
			_, file, err := st.ModelFile(ctx, n.Name, v)
			if err != nil {
				t.Errorf("model %s v%d: %v", n.Name, v, err)
				continue
			}
			if _, err := engine.DecodeModel(file); err != nil {
				t.Errorf("model %s v%d does not decode: %v", n.Name, v, err)
			}
		}
	}
}

// TestSIGTERMResumes: SIGTERM during training exits 0 within the shutdown
// timeout, and after a restart the job resumes from its checkpoint and
// succeeds.
func TestSIGTERMResumes(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	var ds struct {
		ID string `json:"id"`
	}
	if _, err := s.call(context.Background(), "POST", "/v1/datasets?name=blobs&target=class", "text/csv",
		blobsCSV(12000, 10, 1), &ds); err != nil {
		t.Fatal(err)
	}
	l := &ledger{accepted: map[string]int{}, floor: map[string]int{}, interrupted: map[string]bool{}, want: map[string]string{}}
	const epochs = 60
	id, err := l.submit(s, ds.ID, 0, epochs)
	if err != nil {
		t.Fatal(err)
	}
	last := 0
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	err = s.followEpochs(ctx, id, func(e int) bool { last = e; return e >= 3 })
	cancel()
	if err != nil || last < 3 {
		t.Fatalf("events ended at epoch %d: %v", last, err)
	}
	// --shutdown-timeout is 6s (startServer); allow process exit overhead.
	took, code := s.terminate(8 * time.Second)
	t.Logf("SIGTERM at epoch %d: exit %d after %v", last, code, took)
	if code != 0 || took > 6500*time.Millisecond {
		t.Fatalf("SIGTERM: exit code %d after %v, want 0 within the 6s shutdown timeout:\n%s", code, took, s.Logs())
	}
	// A graceful stop checkpoints the epoch in progress: at least the
	// last one seen. It is not an attempt (internal/jobs/doc.go).
	l.floor[id] = last

	s = startServer(t, dir)
	checkFloors(t, s, l)
	final := waitAllTerminal(t, s, l)
	checkJobs(t, l, final)
	if a := final[id].Attempts; a != 1 {
		t.Errorf("attempts = %d after a graceful restart, want 1: a clean shutdown is not an attempt", a)
	}
	checkModels(t, s)
	if _, code := s.terminate(10 * time.Second); code != 0 {
		t.Errorf("second SIGTERM: exit %d", code)
	}
	checkNoLeftovers(t, dir)
}

// TestSIGTERMWithSlowClients: SIGTERM while a client streams an upload
// slower than the shutdown budget allows and another holds an event stream
// open: the process still exits 0 within --shutdown-timeout, cutting the
// slow client off, and restarts cleanly.
func TestSIGTERMWithSlowClients(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	var ds struct {
		ID string `json:"id"`
	}
	if _, err := s.call(context.Background(), "POST", "/v1/datasets?name=blobs&target=class", "text/csv",
		blobsCSV(3000, 10, 1), &ds); err != nil {
		t.Fatal(err)
	}
	l := &ledger{accepted: map[string]int{}, floor: map[string]int{}, interrupted: map[string]bool{}, want: map[string]string{}}
	id, err := l.submit(s, ds.ID, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	streaming := make(chan struct{})
	go func() {
		defer close(streaming)
		_ = s.followEpochs(context.Background(), id, func(int) bool { return false })
	}()
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		_, _ = pw.Write([]byte("a,y\n"))
		for {
			time.Sleep(100 * time.Millisecond)
			if _, err := pw.Write([]byte("1,p\n")); err != nil {
				return
			}
		}
	}()
	uploading := make(chan struct{})
	go func() {
		defer close(uploading)
		req, _ := http.NewRequest("POST", s.url+"/v1/datasets?name=slow", pr)
		req.Header.Set("Content-Type", "text/csv")
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	took, code := s.terminate(8 * time.Second)
	t.Logf("SIGTERM with a slow upload and an open event stream: exit %d after %v", code, took)
	if code != 0 || took > 6500*time.Millisecond {
		t.Errorf("exit code %d after %v, want 0 within the 6s shutdown timeout:\n%s", code, took, s.Logs())
	}
	<-streaming
	pw.CloseWithError(errors.New("done"))
	<-uploading
	s = startServer(t, dir)
	j, _, err := s.getJob(id)
	if err != nil || j.terminal() {
		t.Fatalf("the long job after the restart: %+v, %v; want it queued or running again", j, err)
	}
	if _, err := s.call(context.Background(), "POST", "/v1/jobs/"+id+"/cancel", "", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, code := s.terminate(10 * time.Second); code != 0 {
		t.Errorf("second SIGTERM: exit %d", code)
	}
}
