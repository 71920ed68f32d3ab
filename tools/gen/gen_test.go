package gen

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesUpToDate regenerates every generated file and fails on
// any difference with the committed one.
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := Files("../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("only %d generated files", len(files))
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join("../..", p))
		if err != nil {
			t.Errorf("%s: %v (run: cd tools && go generate ./...)", p, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from its generator's output (run: cd tools && go generate ./...)", p)
		}
	}
	// A dashboard file nobody generates any more would linger unchecked.
	stale, err := filepath.Glob("../../" + DashboardsDir + "/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range stale {
		rel, _ := filepath.Rel("../..", f)
		if _, ok := files[filepath.ToSlash(rel)]; !ok {
			t.Errorf("%s is not generated; delete it or add it to tools/dashboards", rel)
		}
	}
}
