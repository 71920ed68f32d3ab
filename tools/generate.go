// Package tools is the separate module of the repository's generators and
// their heavy dependencies (the Prometheus PromQL parser, the Grafana
// Foundation SDK), kept out of the exporter's go.mod.
package tools

//go:generate go run ./cmd/gen -root ..
