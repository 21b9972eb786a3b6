package main

import (
	"go/parser"
	gotoken "go/token"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestPackageLayers holds the packages to the one-way data flow of
// docs/development.md: the engine imports none of the API, the job
// manager, the store, ingest or metrics; the store neither the API nor the
// job manager; ingest neither of those; and the job manager not the API. Test files are included, since a test importing upward would
// tie the layers together too.
func TestPackageLayers(t *testing.T) {
	const mod = "github.com/backpropd/backpropd/internal/"
	forbidden := map[string][]string{
		"engine": {"api", "jobs", "store", "ingest", "metrics"},
		"store":  {"api", "jobs"},
		"jobs":   {"api"},
		"ingest": {"api", "jobs"},
	}
	for pkg, bad := range forbidden {
		files, err := filepath.Glob(filepath.Join("..", "..", "internal", pkg, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files for internal/%s: %v", pkg, err)
		}
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseFile(gotoken.NewFileSet(), file, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				for _, b := range bad {
					if path == mod+b {
						t.Errorf("%s imports %s: internal/%s must not import it", file, path, pkg)
					}
				}
			}
		}
	}
}
