# Deployment manifests (deploy/, its own Go module with the Kubernetes,
# prometheus-operator, kustomize and compose libraries) and the generated
# files (dashboards, PrometheusRule, Grafana ConfigMap bundle).
#
#   make test-deploy   strict decoding and cross-checks of every manifest
#   make generate      regenerate dashboards, rules manifest and bundle

.PHONY: test-deploy generate

test: test-deploy

test-deploy:
	cd deploy && $(GO) vet ./... && $(GO) test ./...

# Order matters: the ConfigMap bundle is built from the dashboards JSON.
generate:
	cd tools && $(GO) generate ./...
	cd deploy && $(GO) generate ./...
