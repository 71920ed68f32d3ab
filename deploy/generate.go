// Package deploy holds the deployment files of rocketmq_exporter (container
// image, Kubernetes, KubeBlocks, docker-compose) and the tests that check
// them against the exporter binary: it is a module of its own so the
// Kubernetes, Prometheus Operator, kustomize and compose libraries those
// tests need stay out of the exporter's go.mod.
package deploy

//go:generate go run ./internal/cmd/gendashboards -dashboards ../dashboards -out kubernetes/grafana-dashboards.yaml
