package upgrade

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backpropd/backpropd/internal/engine"
	"github.com/backpropd/backpropd/internal/jobs"
	"github.com/backpropd/backpropd/internal/store"
)

var update = flag.Bool("update", false, "regenerate testdata/v<N> with this build (only the newest version)")

// fixtureVersions lists the data directories under testdata/, one per
// format version, oldest first. The newest is the one -update rewrites;
// the older ones are kept as their builds wrote them.
//
// v1 holds job records of format 1, with the history inline; v2 those of
// format 2, whose history is in jobs/<id>.history, with job specs of
// version 1 (float64, no precision); v3 job specs of version 2, whose jobs
// train in float32 (training states of format 2, model files of format 3).
var fixtureVersions = []string{"v1", "v2", "v3"}

// Model names in the fixture, one per kind of job record.
const (
	finishedModel = "iris"   // a job that succeeded and stored version 1
	resumeModel   = "resume" // a running job, interrupted after epoch 2 with its checkpoint
	queuedModel   = "queued" // a job still waiting for a worker
	resumeAfter   = 2        // epochs in the resume job's checkpoint
	resumeEpochs  = 6        // epochs the resume job trains in all
	finishedEpoch = 3        // epochs of the finished job
	expectedFile  = "expected.json"
)

// expected is what the generating build computed, stored beside the data
// directory: the finished model's predictions on the dataset, and those of
// the models the resume and queued jobs ended with when that build ran them
// to completion.
type expected struct {
	DatasetID string               `json:"dataset_id"`
	Jobs      map[string]string    `json:"jobs"` // model name -> job id
	Predict   map[string][]float64 `json:"predictions"`
}

// fixtureData is a three-class problem of 24 rows: two features on a small
// grid, the class given by which third of the plane x+y falls in.
func fixtureData() *store.Dataset {
	const rows = 24
	d := &store.Dataset{Meta: store.DatasetMeta{
		Name: "tiny-iris", Rows: rows, Features: 2,
		FeatureNames: []string{"petal_length", "petal_width"},
		TargetNames:  []string{"species"},
		Task:         "multiclass",
		Classes:      []string{"setosa", "versicolor", "virginica"},
	}}
	for i := range rows {
		x, y := float64(i%6)/5, float64(i/6)/3
		d.X = append(d.X, x, y)
		switch s := x + y; {
		case s < 0.66:
			d.Labels = append(d.Labels, "setosa")
		case s < 1.33:
			d.Labels = append(d.Labels, "versicolor")
		default:
			d.Labels = append(d.Labels, "virginica")
		}
	}
	return d
}

func spec(model, datasetID string, epochs int, validation bool) jobs.Spec {
	s := jobs.Spec{
		ModelName: model, DatasetID: datasetID,
		Network: engine.NetworkConfig{Hidden: []engine.LayerConfig{{Units: 4, Activation: engine.Tanh}}},
		Training: jobs.TrainingSpec{TrainingConfig: engine.TrainingConfig{
			Epochs: epochs, BatchSize: 4,
			Optimizer: engine.OptimizerConfig{Name: "adam", LearningRate: 0.05},
		}},
	}
	if validation {
		// Early stopping is on with validation data, so the checkpoint
		// holds the best weights and the early-stopping bookkeeping too.
		s.Validation = &jobs.ValidationSpec{Fraction: 0.25}
	}
	return s
}

// pauser blocks the worker in JobEpoch when the resume job reaches the
// epoch after its checkpoint: the checkpoint and record of epoch
// resumeAfter are durable then and nothing else is being written, which is
// the state a crash at that moment leaves.
type pauser struct {
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

func (p *pauser) JobQueued(jobs.Job)  {}
func (p *pauser) JobStarted(jobs.Job) {}
func (p *pauser) JobEpoch(j jobs.Job, e engine.Epoch) {
	if j.ModelName == resumeModel && e.Epoch == resumeAfter+1 {
		p.once.Do(func() { close(p.reached) })
		<-p.release
	}
}
func (p *pauser) JobFinished(jobs.Job) {}
func (p *pauser) WorkersBusy(int)      {}

// TestFixtures regenerates the newest fixture with -update and otherwise
// checks that every fixture directory holds the files the tests expect.
func TestFixtures(t *testing.T) {
	newest := filepath.Join("testdata", fixtureVersions[len(fixtureVersions)-1])
	if *update {
		generate(t, newest)
	}
	for _, v := range fixtureVersions {
		t.Run(v, func(t *testing.T) {
			exp := readExpected(t, filepath.Join("testdata", v))
			for _, model := range []string{finishedModel, resumeModel, queuedModel} {
				if exp.Jobs[model] == "" || len(exp.Predict[model]) == 0 {
					t.Errorf("%s: no job or predictions recorded for model %s", expectedFile, model)
				}
			}
			var files []string
			root := filepath.Join("testdata", v, "datadir")
			var total int64
			err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				total += info.Size()
				rel, _ := filepath.Rel(root, p)
				files = append(files, filepath.ToSlash(rel))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				"checkpoints/" + exp.Jobs[resumeModel] + ".ckpt",
				"datasets/" + exp.DatasetID + ".data",
				"datasets/" + exp.DatasetID + ".meta",
				"jobs/" + exp.Jobs[finishedModel] + ".job",
				"jobs/" + exp.Jobs[queuedModel] + ".job",
				"jobs/" + exp.Jobs[resumeModel] + ".job",
				"models/" + finishedModel + "/v1.meta",
				"models/" + finishedModel + "/v1.model",
				"models/" + finishedModel + "/counter",
			}
			if v != "v1" {
				// Job records of format 2 keep their history beside them;
				// the queued job has none yet.
				want = append(want,
					"jobs/"+exp.Jobs[finishedModel]+".history",
					"jobs/"+exp.Jobs[resumeModel]+".history")
			}
			slices.Sort(want)
			slices.Sort(files)
			if !slices.Equal(files, want) {
				t.Errorf("files in %s:\n got %q\nwant %q", root, files, want)
			}
			// Fixtures are committed: a few kilobytes, not a real data set.
			if total > 32<<10 {
				t.Errorf("%s holds %d bytes; keep fixtures under 32 KiB", root, total)
			}
		})
	}
}

// generate writes a data directory with this build into dir/datadir: a
// dataset, a finished job with its model, a job interrupted after epoch
// resumeAfter with its checkpoint, and a queued job; and dir/expected.json.
func generate(t *testing.T, dir string) {
	ctx := context.Background()
	work := t.TempDir()
	st, err := store.Open(work, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	meta, err := st.CreateDataset(ctx, fixtureData())
	if err != nil {
		t.Fatal(err)
	}
	p := &pauser{reached: make(chan struct{}), release: make(chan struct{})}
	m, err := jobs.New(st, jobs.Options{Workers: 1, Observer: p})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	exp := expected{DatasetID: meta.ID, Jobs: map[string]string{}, Predict: map[string][]float64{}}
	submit := func(s jobs.Spec) string {
		j, err := m.Submit(ctx, s)
		if err != nil {
			t.Fatalf("submit %s: %v", s.ModelName, err)
		}
		exp.Jobs[s.ModelName] = j.ID
		return j.ID
	}
	waitDone(t, m, submit(spec(finishedModel, meta.ID, finishedEpoch, false)))
	resume := submit(spec(resumeModel, meta.ID, resumeEpochs, true))
	queued := submit(spec(queuedModel, meta.ID, 4, false))
	select {
	case <-p.reached:
	case <-time.After(30 * time.Second):
		t.Fatal("the resume job did not reach its pause")
	}
	out := filepath.Join(dir, "datadir")
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	copyDir(t, work, out)
	close(p.release)
	waitDone(t, m, resume)
	waitDone(t, m, queued)
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{finishedModel, resumeModel, queuedModel} {
		exp.Predict[name] = predict(t, st, name)
	}
	b, err := json.MarshalIndent(exp, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, expectedFile), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitDone waits until job id has succeeded.
func waitDone(tb testing.TB, m *jobs.Manager, id string) jobs.Job {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := m.Get(context.Background(), id)
		if err != nil {
			tb.Fatalf("get job %s: %v", id, err)
		}
		switch {
		case j.Status == jobs.Succeeded:
			return j
		case j.Status.Terminal():
			tb.Fatalf("job %s (%s) ended %s: %s", id, j.ModelName, j.Status, j.Error)
		case time.Now().After(deadline):
			tb.Fatalf("job %s (%s) still %s after 60s", id, j.ModelName, j.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// predict decodes the latest version of name and predicts the fixture's
// dataset with it.
func predict(tb testing.TB, st *store.Store, name string) []float64 {
	tb.Helper()
	_, file, err := st.ModelFile(context.Background(), name, 0)
	if err != nil {
		tb.Fatalf("model file %s: %v", name, err)
	}
	model, err := engine.DecodeModel(file)
	if err != nil {
		tb.Fatalf("decode model %s: %v", name, err)
	}
	d := fixtureData()
	out := make([]float64, d.Meta.Rows*model.Outputs())
	if err := model.Predict(out, d.X, d.Meta.Rows); err != nil {
		tb.Fatalf("predict with %s: %v", name, err)
	}
	return out
}

// copyDir copies the regular files of the data directory src into dst,
// leaving out temp files of writes in flight.
func copyDir(tb testing.TB, src, dst string) {
	tb.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		tb.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

func readExpected(tb testing.TB, dir string) expected {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(dir, expectedFile))
	if err != nil {
		tb.Fatal(err)
	}
	var exp expected
	if err := json.Unmarshal(b, &exp); err != nil {
		tb.Fatalf("%s: %v", expectedFile, err)
	}
	return exp
}

// TestUpgradeLoadsEveryFixture opens a copy of each fixture data directory
// with this build, reads every file in it, predicts with the stored model,
// and lets the real job manager resume the interrupted job from its
// checkpoint and run the queued one, both to completion.
func TestUpgradeLoadsEveryFixture(t *testing.T) {
	for _, v := range fixtureVersions {
		t.Run(v, func(t *testing.T) {
			ctx := context.Background()
			exp := readExpected(t, filepath.Join("testdata", v))
			dir := t.TempDir()
			copyDir(t, filepath.Join("testdata", v, "datadir"), dir)
			st, err := store.Open(dir, store.Options{})
			if err != nil {
				t.Fatalf("open fixture %s: %v", v, err)
			}
			defer st.Close()

			ds, err := st.LoadDataset(ctx, exp.DatasetID)
			if err != nil {
				t.Fatalf("load dataset: %v", err)
			}
			if want := fixtureData(); !slices.Equal(ds.X, want.X) || !slices.Equal(ds.Labels, want.Labels) {
				t.Errorf("dataset %s does not hold the rows it was created with", exp.DatasetID)
			}
			recs, errs := st.ListJobs(ctx)
			if len(errs) != 0 || len(recs) != 3 {
				t.Fatalf("ListJobs: %d records, errors %v; want 3 records", len(recs), errs)
			}
			status := map[string]string{}
			for _, r := range recs {
				status[r.ModelName] = r.Status
			}
			if want := map[string]string{finishedModel: "succeeded", resumeModel: "running", queuedModel: "queued"}; !mapsEqual(status, want) {
				t.Errorf("job statuses %v, want %v", status, want)
			}
			ckpt, err := st.Checkpoint(ctx, exp.Jobs[resumeModel])
			if err != nil {
				t.Fatalf("checkpoint: %v", err)
			}
			// The epochs in the checkpoint, as the generating build timed
			// them: a resumed job keeps them, one trained afresh does not.
			restored := checkpointHistory(t, st, exp, ckpt)
			if len(restored) != resumeAfter {
				t.Fatalf("checkpoint holds %d epochs, want %d", len(restored), resumeAfter)
			}
			checkPredictions(t, "stored model "+finishedModel, predict(t, st, finishedModel), exp.Predict[finishedModel])

			m, err := jobs.New(st, jobs.Options{Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer m.Shutdown(ctx)
			fin, err := m.Get(ctx, exp.Jobs[finishedModel])
			if err != nil || fin.Status != jobs.Succeeded || fin.ModelVersion != 1 || len(fin.History) != finishedEpoch {
				t.Errorf("finished job: %+v, %v; want succeeded with model version 1 and %d epochs", fin, err, finishedEpoch)
			}
			res := waitDone(t, m, exp.Jobs[resumeModel])
			if res.Attempts != 2 {
				t.Errorf("resumed job has %d attempts, want 2 (the interrupted one and this one)", res.Attempts)
			}
			if len(res.History) < resumeAfter {
				t.Fatalf("resumed job has %d epochs of history", len(res.History))
			}
			for i, e := range restored {
				if got := res.History[i].DurationSeconds; got != e.DurationSeconds {
					t.Errorf("epoch %d took %vs in the checkpoint and %vs in the resumed job: it was trained again, not resumed", i+1, e.DurationSeconds, got)
				}
			}
			waitDone(t, m, exp.Jobs[queuedModel])
			// Resuming ends bit-identical to an uninterrupted run (the
			// engine's promise), so the models equal those the generating
			// build trained without interruption.
			checkPredictions(t, "resumed job's model", predict(t, st, resumeModel), exp.Predict[resumeModel])
			checkPredictions(t, "queued job's model", predict(t, st, queuedModel), exp.Predict[queuedModel])
		})
	}
}

// checkpointHistory restores ckpt into a trainer for the resume job's spec
// as stored in its record, and returns the history it holds.
func checkpointHistory(tb testing.TB, st *store.Store, exp expected, ckpt []byte) []engine.Epoch {
	tb.Helper()
	rec, err := st.Job(context.Background(), exp.Jobs[resumeModel])
	if err != nil {
		tb.Fatalf("job record: %v", err)
	}
	var s jobs.Spec
	if err := json.Unmarshal(rec.Spec, &s); err != nil {
		tb.Fatalf("decode spec: %v", err)
	}
	d := fixtureData()
	data := engine.Data{Rows: d.Meta.Rows, Features: d.Meta.Features, X: d.X, FeatureNames: d.Meta.FeatureNames, TargetNames: d.Meta.TargetNames, Labels: d.Labels}
	cfg := engine.Config{Network: s.Network, Training: s.Training.TrainingConfig}
	val := engine.Validation{Fraction: s.Validation.Fraction}
	tr, err := engine.NewTrainer(cfg, engine.TaskMulticlass, data, val, engine.Options{Threads: 1})
	if err != nil {
		tb.Fatalf("trainer for the resume job: %v", err)
	}
	if err := tr.RestoreState(ckpt); err != nil {
		tb.Fatalf("restore the fixture checkpoint with this build: %v", err)
	}
	return tr.History()
}

// checkPredictions compares with the generating build's predictions. The
// tolerance, 1e-12, allows only for a different summation order in matrix
// products; any change of weights or of the standardization is far larger.
func checkPredictions(tb testing.TB, what string, got, want []float64) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d predictions, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			tb.Errorf("%s: prediction %d is %v, the generating build computed %v", what, i, got[i], want[i])
			return
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// reframe returns the stored file b with its payload replaced by edit's
// result and the frame's length and checksum rewritten to match (the frame
// layout of internal/store/frame.go: 16-byte header, payload, CRC-32C).
func reframe(b []byte, edit func(payload []byte) []byte) []byte {
	payload := edit(slices.Clone(b[16 : len(b)-4]))
	out := slices.Clone(b[:16])
	binary.LittleEndian.PutUint64(out[8:], uint64(len(payload)))
	out = append(out, payload...)
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, crc32.MakeTable(crc32.Castagnoli)))
}

// TestUpgradeRefusesNewerFormats takes the newest fixture, rewrites files
// as a build with the next format version would, and checks that this
// build refuses each with an error naming the file and both versions,
// serves the rest, and changes none of them.
func TestUpgradeRefusesNewerFormats(t *testing.T) {
	ctx := context.Background()
	v := fixtureVersions[len(fixtureVersions)-1]
	exp := readExpected(t, filepath.Join("testdata", v))
	dir := t.TempDir()
	copyDir(t, filepath.Join("testdata", v, "datadir"), dir)

	// The queued job's record: one format version newer than this
	// build's job record format, 2.
	jobRel := "jobs/" + exp.Jobs[queuedModel] + ".job"
	newerJob := reframe(readFile(t, filepath.Join(dir, jobRel)), func(p []byte) []byte {
		var rec map[string]any
		if err := json.Unmarshal(p, &rec); err != nil {
			t.Fatal(err)
		}
		rec["format"] = 3
		b, _ := json.Marshal(rec)
		return b
	})
	writeFile(t, filepath.Join(dir, jobRel), newerJob)
	// The resume job's checkpoint: a training state of the next format.
	ckptRel := store.CheckpointPath(exp.Jobs[resumeModel])
	newerState := reframe(readFile(t, filepath.Join(dir, ckptRel)), func(p []byte) []byte {
		binary.LittleEndian.PutUint32(p[8:], 3)
		return binary.LittleEndian.AppendUint32(p[:len(p)-4], crc32.Checksum(p[:len(p)-4], crc32.MakeTable(crc32.Castagnoli)))
	})
	writeFile(t, filepath.Join(dir, ckptRel), newerState)
	// The stored model's file: a model of the format after the newest
	// this build reads (4: format 2 holds typed inputs, 3 float32 weights).
	modelRel := store.ModelFilePath(finishedModel, 1)
	writeFile(t, filepath.Join(dir, modelRel), reframe(readFile(t, filepath.Join(dir, modelRel)), func(p []byte) []byte {
		binary.LittleEndian.PutUint32(p[8:], 4)
		return binary.LittleEndian.AppendUint32(p[:len(p)-4], crc32.Checksum(p[:len(p)-4], crc32.MakeTable(crc32.Castagnoli)))
	}))

	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	_, errs := st.ListJobs(ctx)
	if len(errs) != 1 || !errors.Is(errs[0], store.ErrNewerFormat) ||
		!strings.Contains(errs[0].Error(), jobRel+": job record format version 3 is newer than this build reads (2)") {
		t.Errorf("ListJobs errors %v; want one naming %s and versions 3 and 2", errs, jobRel)
	}
	_, file, err := st.ModelFile(ctx, finishedModel, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.DecodeModel(file); !errors.Is(err, engine.ErrNewerFormat) ||
		err.Error() != "model format version 4 is newer than this build reads (3); upgrade backpropd" {
		t.Errorf("DecodeModel: %v; want ErrNewerFormat naming versions 4 and 3", err)
	}

	var logBuf strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logBuf.Write(p)
	}), nil))
	m, err := jobs.New(st, jobs.Options{Workers: 1, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(ctx)
	if _, err := m.Get(ctx, exp.Jobs[queuedModel]); !errors.Is(err, jobs.ErrNotFound) {
		t.Errorf("the newer job record was loaded: Get gives %v", err)
	}
	// The interrupted job refuses the newer checkpoint and trains afresh;
	// deterministic training ends where the generating build's did.
	waitDone(t, m, exp.Jobs[resumeModel])
	checkPredictions(t, "resume job trained afresh", predict(t, st, resumeModel), exp.Predict[resumeModel])
	mu.Lock()
	log := logBuf.String()
	mu.Unlock()
	for _, want := range []string{jobRel + ": job record format version 3", "file=" + ckptRel, "training state format version 3 is newer than this build reads (2)"} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not say %q:\n%s", want, log)
		}
	}
	if got := readFile(t, filepath.Join(dir, jobRel)); !bytes.Equal(got, newerJob) {
		t.Errorf("%s was changed", jobRel)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func readFile(tb testing.TB, p string) []byte {
	tb.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func writeFile(tb testing.TB, p string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}
