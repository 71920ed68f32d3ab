// Command gendashboards writes the Grafana dashboard ConfigMaps of
// deploy/kubernetes from dashboards/*.json (run by `go generate` in deploy/).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/rocketmq-exporter/rocketmq_exporter/deploy/internal/grafanabundle"
)

func main() {
	dir := flag.String("dashboards", "../dashboards", "directory of the dashboard JSON files")
	out := flag.String("out", "kubernetes/grafana-dashboards.yaml", "file to write")
	flag.Parse()
	b, err := grafanabundle.Generate(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendashboards:", err)
		os.Exit(1)
	}
	// Leave the file alone when nothing changed, so its mtime means something.
	if old, err := os.ReadFile(*out); err == nil && bytes.Equal(old, b) {
		return
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gendashboards:", err)
		os.Exit(1)
	}
}
