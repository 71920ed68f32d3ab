// Command rulegen renders the rule files of alerts/ for one deployment: it
// adds a label selector to every selector that reads an exporter metric
// (replacing the default job matcher of the exporter-down alerts) and writes
// the rule files, a PrometheusRule manifest, or both.
//
//	cd tools && go run ./cmd/rulegen -selector 'job="rmq-prod"' -out /etc/prometheus/rules
//	cd tools && go run ./cmd/rulegen -selector 'env="prod"' -manifest rules.yaml -namespace monitoring
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rocketmq-exporter/rocketmq_exporter/tools/gen"
	"github.com/rocketmq-exporter/rocketmq_exporter/tools/promqlx"
	"github.com/rocketmq-exporter/rocketmq_exporter/tools/rules"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rulegen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("rulegen", flag.ContinueOnError)
	src := fs.String("alerts", "../alerts", "directory of the source rule files")
	selector := fs.String("selector", "", `label matchers added to every exporter-metric selector, e.g. 'job="rmq-prod",env="prod"'`)
	out := fs.String("out", "", "directory to write the rule files to")
	manifest := fs.String("manifest", "", "file to write a PrometheusRule manifest to")
	name := fs.String("name", gen.ManifestOptions.Name, "PrometheusRule name")
	namespace := fs.String("namespace", "", "PrometheusRule namespace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" && *manifest == "" {
		return fmt.Errorf("nothing to do: give -out and/or -manifest")
	}
	ms, err := promqlx.ParseMatchers(*selector)
	if err != nil {
		return err
	}
	files, err := rules.Load(*src)
	if err != nil {
		return err
	}
	if err := rules.InjectSelector(files, ms); err != nil {
		return err
	}
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		for _, f := range files {
			b, err := rules.Marshal(f.Root)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(*out, f.Name), b, 0o644); err != nil {
				return err
			}
		}
	}
	if *manifest != "" {
		o := gen.ManifestOptions
		o.Name, o.Namespace = *name, *namespace
		b, err := rules.Manifest(files, o)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*manifest, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
