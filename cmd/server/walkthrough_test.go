package main

import (
	"context"
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
	end := strings.Index(readme, "<!-- section: configuration -->")
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
		"event: epoch",                         // the event stream
		`"status":"succeeded"`,                 // its end
		`"predictions":["setosa","virginica"]`, // /v1 predict
		`"predictions":["versicolor"]`,         // by feature name
		`"data":["setosa","virginica"]`,        // /v2 labels
		"backpropd_training_loss{",             // /metrics
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the walk-through's output lacks %s:\n%.3000s", want, out)
		}
	}
	svg, err := os.ReadFile(filepath.Join(dir, "loss.svg"))
	if err != nil || !strings.Contains(string(svg), "<svg") {
		t.Errorf("loss.svg: %v, %.100s", err, svg)
	}
}
