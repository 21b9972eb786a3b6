package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestWalkthrough runs the README's walk-through, as written, against the
// server: every shell block after the one that starts the server, in one
// bash, with only the address changed to the test server's.
func TestWalkthrough(t *testing.T) {
	for _, prog := range []string{"bash", "curl", "sed", "grep"} {
		if _, err := exec.LookPath(prog); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is missing (.ci/steps/05-walkthrough-tools.sh installs it)", prog)
			}
			t.Skipf("%s is not installed", prog)
		}
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "<!-- section: walkthrough -->")
	end := strings.Index(readme, "<!-- end: walkthrough -->")
	if start < 0 || end < start {
		t.Fatal("no walk-through section in README.md")
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(readme[start:end], -1)
	if len(blocks) < 5 || strings.TrimSpace(blocks[0][1]) != "go run ./cmd/server" {
		t.Fatalf("the walk-through should start the server with go run ./cmd/server, then give its steps; got %d blocks", len(blocks))
	}

	m := NewMain()
	if err := m.ParseFlags([]string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, func(string) string { return "" }, io.Discard); err != nil {
		t.Fatal(err)
	}
	m.LogOutput = io.Discard
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, blk := range blocks[1:] {
		script.WriteString(strings.ReplaceAll(blk[1], "http://127.0.0.1:8080", "http://"+m.Addr()))
	}
	// A fresh directory that holds the examples, as a clone does, so that
	// the files the walk-through writes land outside the repository.
	dir := t.TempDir()
	abs, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, filepath.Join(dir, "examples")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walk-through failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		`"task":"multiclass"`,                  // the dataset
		`"status":"succeeded"`,                 // the event stream's end
		`"stop_reason":"`,                      // which says why the job ended
		`"predictions":["setosa","virginica"]`, // /v1 predict
		`"predictions":["versicolor"]`,         // by feature name
		`"data":["setosa","virginica"]`,        // /v2 labels
		"backpropd_training_loss{",             // /metrics
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the walk-through's output lacks %s:\n%.3000s", want, out)
		}
	}
	if err := streamShowsEpochs(string(out)); err != nil {
		t.Errorf("the walk-through's event stream: %v:\n%.3000s", err, out)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "loss.svg"))
	if err != nil || !strings.Contains(string(svg), "<svg") {
		t.Errorf("loss.svg: %v, %.100s", err, svg)
	}
	// Run from a clone, the walk-through leaves its files in the repository
	// root; git must ignore them. Its data directory is ./data (the test
	// gave the server another).
	left := []string{"data/"}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "examples" {
			left = append(left, e.Name())
		}
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Logf("git is not installed; not checking that .gitignore covers %v", left)
		return
	}
	for _, name := range left {
		// --no-index: the file need not exist in the repository;
		// safe.directory: CI runs as root in a clone it may not own.
		check := exec.Command("git", "-c", "safe.directory=*", "check-ignore", "-q", "--no-index", name)
		check.Dir = "../.."
		if err := check.Run(); err != nil {
			t.Errorf("the walk-through leaves %s, which .gitignore does not cover (git check-ignore: %v)", name, err)
		}
	}
}

// sseEvent matches one event of a text/event-stream as curl prints it,
// with its id when it has one.
var sseEvent = regexp.MustCompile(`(?m)^(?:id: (\d+)\n)?event: (\w+)\ndata: (.*)$`)

// streamShowsEpochs checks out's event stream as the README documents it: it
// begins with a status event holding the job's history so far, whose id is
// the last epoch of that history (0 when it is empty), then one epoch event
// per further epoch with its epoch number as id; later status events have
// neither id nor history. A job may finish before curl connects; then the
// only epochs are in that first history, and there is no epoch event.
// Either way the stream must show at least one epoch.
func streamShowsEpochs(out string) error {
	events := sseEvent.FindAllStringSubmatch(out, -1)
	if len(events) == 0 {
		return errors.New("no events")
	}
	type epoch struct {
		Epoch int `json:"epoch"`
	}
	var first struct {
		History []epoch `json:"history"`
	}
	if events[0][2] != "status" {
		return fmt.Errorf("first event is %q, want status", events[0][2])
	}
	if err := json.Unmarshal([]byte(events[0][3]), &first); err != nil {
		return fmt.Errorf("first status event: %v", err)
	}
	last := 0
	if n := len(first.History); n > 0 {
		last = first.History[n-1].Epoch
	}
	if want := fmt.Sprint(last); events[0][1] != want {
		return fmt.Errorf("first status event has id %q, want %s, the last epoch of its history", events[0][1], want)
	}
	epochs := len(first.History)
	for i, e := range events[1:] {
		switch e[2] {
		case "epoch":
			var ep epoch
			if err := json.Unmarshal([]byte(e[3]), &ep); err != nil {
				return fmt.Errorf("event %d: %v", i+2, err)
			}
			if want := fmt.Sprint(ep.Epoch); e[1] != want {
				return fmt.Errorf("epoch %d event has id %q, want %s", ep.Epoch, e[1], want)
			}
			epochs++
		case "status":
			var st struct {
				History *json.RawMessage `json:"history"`
			}
			if err := json.Unmarshal([]byte(e[3]), &st); err != nil {
				return fmt.Errorf("event %d: %v", i+2, err)
			}
			if e[1] != "" || st.History != nil {
				return fmt.Errorf("status event %d has id %q and history %v; only the first has them", i+2, e[1], st.History != nil)
			}
		}
	}
	if epochs == 0 {
		return errors.New("no epoch: neither epoch events nor a history in the first status event")
	}
	return nil
}

func TestStreamShowsEpochs(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		ok        bool
	}{
		{"epochs as they come", "id: 0\nevent: status\ndata: {\"status\":\"running\",\"history\":[]}\n\n" +
			"id: 1\nevent: epoch\ndata: {\"epoch\":1}\n\nevent: status\ndata: {\"status\":\"succeeded\"}\n", true},
		// The job finished before curl connected: the flake this check replaced
		// "event: epoch" for.
		{"finished before the stream began", "id: 2\nevent: status\ndata: {\"status\":\"succeeded\",\"history\":[{\"epoch\":1},{\"epoch\":2}]}\n", true},
		{"resumed after epoch 2", "id: 2\nevent: status\ndata: {\"status\":\"running\",\"history\":[{\"epoch\":1},{\"epoch\":2}]}\n\n" +
			"id: 3\nevent: epoch\ndata: {\"epoch\":3}\n", true},
		{"no epoch at all", "id: 0\nevent: status\ndata: {\"status\":\"running\",\"history\":[]}\n\n" +
			"event: status\ndata: {\"status\":\"failed\"}\n", false},
		{"epoch first", "id: 1\nevent: epoch\ndata: {\"epoch\":1}\n", false},
		{"no stream", "{\"task\":\"multiclass\"}\n", false},
		{"first status without id", "event: status\ndata: {\"status\":\"running\",\"history\":[]}\n\n" +
			"id: 1\nevent: epoch\ndata: {\"epoch\":1}\n", false},
		{"first status id not its last epoch", "id: 1\nevent: status\ndata: {\"status\":\"running\",\"history\":[{\"epoch\":1},{\"epoch\":2}]}\n", false},
		{"epoch without id", "id: 0\nevent: status\ndata: {\"status\":\"running\",\"history\":[]}\n\n" +
			"event: epoch\ndata: {\"epoch\":1}\n", false},
		{"closing status repeats the history", "id: 0\nevent: status\ndata: {\"status\":\"running\",\"history\":[]}\n\n" +
			"id: 1\nevent: epoch\ndata: {\"epoch\":1}\n\nevent: status\ndata: {\"status\":\"succeeded\",\"history\":[{\"epoch\":1}]}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := streamShowsEpochs(tc.out); (err == nil) != tc.ok {
				t.Errorf("streamShowsEpochs = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
