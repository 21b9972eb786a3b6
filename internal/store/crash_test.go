package store

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

const crashDirEnv = "BACKPROPD_STORE_CRASH_DIR"

// crashJobID is the job the crash child rewrites.
const crashJobID = "6f1c9a52-3d0e-4a57-9b1e-2c8f4d7a6b90"

// TestCrashChild is the child of TestCrashDuringWrites: it rewrites one
// job, its checkpoint and new model versions as fast as it can until it is
// killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashDuringWrites")
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for gen := 1; ; gen++ {
		j := newJob(1, strconv.Itoa(gen))
		j.ID = crashJobID
		if err := s.PutJob(bg, j); err != nil {
			t.Fatal(err)
		}
		// Large enough that a kill often lands mid-write.
		if err := s.PutCheckpoint(bg, crashJobID, bytes.Repeat([]byte{byte(gen)}, 256<<10)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutModel(bg, ModelMeta{Name: "m"}, bytes.Repeat([]byte{byte(gen)}, 64<<10)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashDuringWrites kills a process that is busy writing (SIGKILL, no
// chance to clean up) and checks that the store reopened from the files
// alone holds whole records: a complete job, a checkpoint of a single
// generation, consecutive intact model versions, and no temp files.
func TestCrashDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	for round := range 3 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(150+100*round) * time.Millisecond)
			cmd.Process.Kill()
			cmd.Wait()

			s := mustOpen(t, dir)
			if tmp := tempFiles(t, dir); len(tmp) != 0 {
				t.Fatalf("temp files survived Open: %v", tmp)
			}
			j, err := s.Job(bg, crashJobID)
			if err != nil {
				t.Skipf("child was killed before its first write: %v", err)
			}
			gen, _ := strconv.Atoi(j.Status)
			ck, err := s.Checkpoint(bg, crashJobID)
			if err == nil {
				if len(ck) != 256<<10 || !bytes.Equal(ck, bytes.Repeat(ck[:1], len(ck))) {
					t.Fatalf("checkpoint mixes generations or is short: %d bytes", len(ck))
				}
				if g := int(ck[0]); g != gen%256 && g != (gen-1)%256 {
					t.Fatalf("checkpoint generation %d, job generation %d", g, gen)
				}
			} else if gen > 1 {
				t.Fatalf("checkpoint lost after generation %d: %v", gen, err)
			}
			mn, err := s.ModelVersions(bg, "m")
			if err != nil {
				return // killed before the first model
			}
			for i, v := range mn.Versions {
				if v != i+1 {
					t.Fatalf("versions %v are not 1..n", mn.Versions)
				}
				_, f, err := s.ModelFile(bg, "m", v)
				if err != nil || len(f) != 64<<10 || f[0] != byte(v) {
					t.Fatalf("model v%d damaged: %d bytes, %v", v, len(f), err)
				}
			}
			t.Logf("killed at job generation %d with %d model versions", gen, len(mn.Versions))
		})
	}
}
