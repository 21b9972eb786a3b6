package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// requireProgram returns the path of the named program. Without it the test
// is skipped on a developer machine, but fails under CI=true, so that CI can
// never pass by skipping.
func requireProgram(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is required under CI=true (.ci/steps/50-deploy.sh installs it): %v", name, err)
		}
		tb.Skipf("%s not installed: %v", name, err)
	}
	return path
}

// mustRead returns the contents of a file given relative to deploy/.
func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		tb.Fatalf("read %s: %v", path, err)
	}
	return b
}

// repoRoot is the repository's root, the parent of deploy/.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		tb.Fatalf("repository root %s has no go.mod: %v", root, err)
	}
	return root
}
