package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func epochEntries(from, n int) []json.RawMessage {
	out := make([]json.RawMessage, n)
	for i := range out {
		out[i] = json.RawMessage(fmt.Sprintf(`{"epoch":%d,"loss":0.5}`, from+i+1))
	}
	return out
}

func historyStrings(h []json.RawMessage) []string {
	out := make([]string, len(h))
	for i, e := range h {
		out[i] = string(e)
	}
	return out
}

// TestHistoryAppends appends a job's history batch by batch: the file
// grows by one frame per batch, each the size of its own entries (not of
// the history so far), and the record reads back with every entry.
func TestHistoryAppends(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	j := newJob(1, "running")
	mustPutJob(t, s, j)
	var want []json.RawMessage
	file := filepath.Join(dir, "jobs", j.ID+".history")
	var sizes []int64
	for batch := range 4 {
		entries := epochEntries(len(want), 3)
		if err := s.AppendJobHistory(bg, j.ID, len(want), entries); err != nil {
			t.Fatal(err)
		}
		want = append(want, entries...)
		j.HistoryLen = len(want)
		mustPutJob(t, s, j)
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, fi.Size())
		// A frame is 20 bytes of framing, 8 of index and the entries
		// with a newline between each two.
		n := int64(frameOverhd + historyHeader - 1)
		for _, e := range entries {
			n += int64(len(e)) + 1
		}
		if batch > 0 {
			if got := fi.Size() - sizes[batch-1]; got != n {
				t.Errorf("batch %d grew the file by %d bytes, want %d (its own frame)", batch, got, n)
			}
		}
	}
	got, err := s.Job(bg, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := fmt.Sprint(historyStrings(got.History)), fmt.Sprint(historyStrings(want)); g != w || got.HistoryLen != len(want) {
		t.Fatalf("history %s (len %d), want %s", g, got.HistoryLen, w)
	}
	rec, err := os.ReadFile(filepath.Join(dir, "jobs", j.ID+".job"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rec); n > 400 {
		t.Errorf("the record is %d bytes with 12 epochs of history: it should not hold them", n)
	}
}

// TestHistoryTrimmedAtStart leaves what a crash can leave after the last
// record, entries the record does not count and a torn last frame, and
// checks that ListJobs cuts them off, so that the next append follows the
// recorded entries, while Job only reads.
func TestHistoryTrimmedAtStart(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra func(t *testing.T, s *Store, path string, j *JobRecord)
	}{
		{"unrecorded entries", func(t *testing.T, s *Store, _ string, j *JobRecord) {
			if err := s.AppendJobHistory(bg, j.ID, 4, epochEntries(4, 2)); err != nil {
				t.Fatal(err)
			}
		}},
		{"torn frame", func(t *testing.T, _ *Store, path string, _ *JobRecord) {
			frame, err := historyFrame(4, epochEntries(4, 2))
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(frame[:len(frame)-3])
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := mustOpen(t, dir)
			j := newJob(1, "running")
			if err := s.AppendJobHistory(bg, j.ID, 0, epochEntries(0, 4)); err != nil {
				t.Fatal(err)
			}
			j.HistoryLen = 4
			mustPutJob(t, s, j)
			path := filepath.Join(dir, "jobs", j.ID+".history")
			clean, _ := os.ReadFile(path)
			tc.extra(t, s, path, j)
			s.Close()

			s = mustOpen(t, dir)
			got, err := s.Job(bg, j.ID)
			if err != nil || len(got.History) != 4 {
				t.Fatalf("Job: %d entries, %v; want the 4 recorded", len(got.History), err)
			}
			if b, _ := os.ReadFile(path); len(b) == len(clean) {
				t.Fatal("the extra bytes are missing before ListJobs; the test left nothing to trim")
			}
			if _, errs := s.ListJobs(bg); len(errs) != 0 {
				t.Fatal(errs)
			}
			if b, _ := os.ReadFile(path); string(b) != string(clean) {
				t.Fatalf("after ListJobs the file has %d bytes, want the %d the record counts", len(b), len(clean))
			}
			if err := s.AppendJobHistory(bg, j.ID, 4, epochEntries(4, 1)); err != nil {
				t.Fatal(err)
			}
			j.HistoryLen = 5
			mustPutJob(t, s, j)
			got, err = s.Job(bg, j.ID)
			if err != nil || len(got.History) != 5 || string(got.History[4]) != `{"epoch":5,"loss":0.5}` {
				t.Fatalf("after an append: %v, %v", historyStrings(got.History), err)
			}
		})
	}
}

// TestHistoryShortKeepsIntactEntries: a record counting more entries than
// the history file holds intact (the file copied before the record) reads
// with the entries the file has, and ListJobs leaves the file holding
// exactly those, so that appends continue after them.
func TestHistoryShortKeepsIntactEntries(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	j := newJob(1, "running")
	if err := s.AppendJobHistory(bg, j.ID, 0, epochEntries(0, 2)); err != nil {
		t.Fatal(err)
	}
	j.HistoryLen = 3
	mustPutJob(t, s, j)
	got, err := s.Job(bg, j.ID)
	if err != nil || got.HistoryLen != 2 || len(got.History) != 2 {
		t.Fatalf("Job: %+v, %v; want the 2 entries the file holds", got, err)
	}
	// A record written without its history file at all.
	k := newJob(2, "running")
	k.HistoryLen = 4
	mustPutJob(t, s, k)
	list, errs := s.ListJobs(bg)
	if len(errs) != 0 || len(list) != 2 || list[1].HistoryLen != 0 {
		t.Fatalf("ListJobs: %v %v", list, errs)
	}
	if err := s.AppendJobHistory(bg, j.ID, 2, epochEntries(2, 1)); err != nil {
		t.Fatal(err)
	}
	mustPutJob(t, s, j) // HistoryLen 3 again
	if got, err := s.Job(bg, j.ID); err != nil || len(got.History) != 3 {
		t.Fatalf("after an append: %v, %v", got, err)
	}
}

// TestHistoryReadsFormat1 reads a job record of format 1, which holds its
// history inline and has no history file.
func TestHistoryReadsFormat1(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	id := "8541ce93-7098-438c-a478-375804b702a9"
	payload := []byte(`{"id":"` + id + `","model_name":"m","dataset_id":"d","status":"succeeded","spec":{},"seq":1,` +
		`"created_at":"2024-01-01T00:00:00Z","attempts":1,"history":[{"epoch":1,"loss":0.9},{"epoch":2,"loss":0.4}]}`)
	if err := s.writeBytes(bg, jobPath(id), kindJob, payload); err != nil {
		t.Fatal(err)
	}
	got, err := s.Job(bg, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.HistoryLen != 2 || len(got.History) != 2 || string(got.History[1]) != `{"epoch":2,"loss":0.4}` {
		t.Fatalf("format 1 record: len %d, history %v", got.HistoryLen, historyStrings(got.History))
	}
}

// TestDeleteJobDeletesHistory: deleting a job removes its history file,
// and one left by a delete that a crash interrupted is removed at Open.
func TestDeleteJobDeletesHistory(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir)
	j := newJob(1, "succeeded")
	if err := s.AppendJobHistory(bg, j.ID, 0, epochEntries(0, 2)); err != nil {
		t.Fatal(err)
	}
	j.HistoryLen = 2
	mustPutJob(t, s, j)
	if err := s.DeleteJob(bg, j.ID); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "jobs", j.ID+".history")
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("history file after DeleteJob: %v", err)
	}
	// The record gone, its history left: what a crash inside DeleteJob leaves.
	if err := s.AppendJobHistory(bg, j.ID, 0, epochEntries(0, 2)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	mustOpen(t, dir)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("history file without a record after Open: %v", err)
	}
}

// TestHistoryRefusesNewlines: an entry is one line of the file.
func TestHistoryRefusesNewlines(t *testing.T) {
	s := mustOpen(t, t.TempDir())
	err := s.AppendJobHistory(bg, newJob(1, "running").ID, 0, []json.RawMessage{json.RawMessage("{\n}")})
	if err == nil || !strings.Contains(err.Error(), "newline") {
		t.Fatalf("append of an entry with a newline: %v", err)
	}
}
