// Command gen writes the generated files of the repository (dashboards,
// PrometheusRule manifest, parsed-expression record). Run it through
// `cd tools && go generate ./...`; tests fail when its output and the
// committed files differ.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/rocketmq-exporter/rocketmq_exporter/tools/gen"
)

func main() {
	root := flag.String("root", "..", "repository root")
	flag.Parse()
	files, err := gen.Files(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		full := filepath.Join(*root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(full, files[p], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}
