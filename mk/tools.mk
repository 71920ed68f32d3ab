# tools/ is a module of its own (Grafana Foundation SDK, the Prometheus PromQL
# parser): the dashboard and rule generators and their checks.

.PHONY: test-tools

test: test-tools

test-tools:
	cd tools && $(GO) vet ./... && $(GO) test ./...
