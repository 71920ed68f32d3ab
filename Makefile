# Everything here works offline with the Go toolchain alone; targets that need
# more (docker, promu) say so and stop when it is missing.
#
# Other parts of the project extend this file without editing it: a file
# mk/<name>.mk may add prerequisites to the shared targets, e.g.
#   test: test-alerts
#   test-alerts: ; promtool test rules alerts/tests/*.yaml

GO        ?= go
GOFMT     ?= gofmt
BIN       ?= rocketmq_exporter
PKG       := github.com/rocketmq-exporter/rocketmq_exporter
FUZZTIME  ?= 10s
DOCKER_IMAGE ?= rocketmq-exporter:$(VERSION)

# Demo ports: the simulated NameServer, brokers, DLedger peers and the exporter.
DEMO_NAMESRV      ?= 127.0.0.1:9876
DEMO_BROKER_BASE  ?= 10911
DEMO_DLEDGER_BASE ?= 40911
DEMO_LISTEN       ?= :9187

VERSION   ?= $(shell cat VERSION 2>/dev/null || git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH    ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILDUSER ?= $(shell id -un 2>/dev/null || echo unknown)@$(shell hostname 2>/dev/null || echo unknown)
BUILDDATE ?= $(shell date -u +%Y%m%d-%H:%M:%S)

VERSION_PKG := github.com/prometheus/common/version
LDFLAGS := -s -w \
	-X $(VERSION_PKG).Version=$(VERSION) \
	-X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) \
	-X $(VERSION_PKG).BuildUser=$(BUILDUSER) \
	-X $(VERSION_PKG).BuildDate=$(BUILDDATE)
# Static: no cgo, pure-Go resolver and user lookup.
BUILD_FLAGS := -trimpath -tags netgo,osusergo -ldflags '$(LDFLAGS)'

.PHONY: all build test test-go test-short vet lint fmt fuzz bench demo docker tarball clean

all: lint build test

build:
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o $(BIN) ./cmd/rocketmq_exporter

# The one test entry point (CI runs `make test`); mk/*.mk add prerequisites.
test: test-go

# The end-to-end test (real Prometheus and Alertmanager) runs on its own after
# the rest, so its timing does not compete with the other packages for CPU.
test-go:
	$(GO) test $$($(GO) list ./... | grep -v '/test/e2e$$')
	$(GO) test -count=1 ./test/e2e/

test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

lint: vet
	@out="$$($(GOFMT) -l $$(git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

fmt:
	$(GOFMT) -w $$(git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')

# Runs every Fuzz target of every package for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# A simulated cluster with live traffic and failovers, and the exporter in
# cluster mode against it: open http://localhost:9187/metrics. Ctrl-C stops both.
demo:
	@mkdir -p .build
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o .build/rmqsim ./cmd/rmqsim
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o .build/$(BIN) ./cmd/rocketmq_exporter
	@.build/rmqsim --namesrv-address=$(DEMO_NAMESRV) --broker-base-port=$(DEMO_BROKER_BASE) \
	  --dledger-base-port=$(DEMO_DLEDGER_BASE) & sim=$$!; \
	.build/$(BIN) --web.listen-address=$(DEMO_LISTEN) --rocketmq.namesrv-address=$(DEMO_NAMESRV) & exp=$$!; \
	trap 'kill $$sim $$exp 2>/dev/null; wait; exit 0' INT TERM; \
	echo "demo: metrics at http://localhost$(DEMO_LISTEN)/metrics (Ctrl-C to stop)"; \
	while kill -0 $$sim 2>/dev/null && kill -0 $$exp 2>/dev/null; do sleep 1; done; \
	echo "demo: a process exited (port in use? set DEMO_NAMESRV, DEMO_BROKER_BASE, DEMO_DLEDGER_BASE, DEMO_LISTEN)"; \
	kill $$sim $$exp 2>/dev/null; wait; exit 1

# The image is built from the Dockerfile with the binary `make build` made
# (BINARY=prebuilt), the way promu-built images are.
docker: build
	@if ! command -v docker >/dev/null 2>&1; then \
	  echo "docker: no docker client installed; the static binary ./$(BIN) runs in any base image"; exit 1; fi
	@if ! docker info >/dev/null 2>&1; then \
	  echo "docker: no Docker engine reachable (docker info failed); start one or use the static binary ./$(BIN)"; exit 1; fi
	mkdir -p .build/$$($(GO) env GOOS)-$$($(GO) env GOARCH)
	cp $(BIN) .build/$$($(GO) env GOOS)-$$($(GO) env GOARCH)/rocketmq_exporter
	docker build --build-arg BINARY=prebuilt -t $(DOCKER_IMAGE) .

tarball:
	@if ! command -v promu >/dev/null 2>&1; then \
	  echo "tarball: promu is not installed (go install github.com/prometheus/promu@latest); nothing built"; exit 1; fi
	promu build --prefix .build
	promu tarball --prefix . .build

clean:
	rm -rf $(BIN) .build *.tar.gz

-include mk/*.mk
