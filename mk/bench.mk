# Scale benchmarks (issue 7): a full scrape of 10,000 topics × 8 queues and
# 2,000 consumer groups, see docs/benchmarks.md.
#
#   make bench-scale            the table: the exporter process scraped over HTTP
#                               (wall, CPU, RSS, requests, series per scrape)
#   make bench-scale-live       the same against the live simulation, with a
#                               row where the lagging groups moved
#   make bench-scale-go         the go test -bench figures (allocations)
#   make bench-peer PEER=path   adds qsrg/rocketmq-exporter-go, per collection
#   make bench-smoke            every benchmark, once, -short (those that build
#                               the 10,000-topic scenario skip); part of
#                               `make test`, so a benchmark cannot rot unnoticed

BENCH_SCRAPES ?= 11
PEER          ?=

.PHONY: bench-scale bench-scale-live bench-scale-go bench-peer bench-smoke

bench: bench-scale

test: bench-smoke

bench-smoke:
	$(GO) test -short -run '^$$' -bench . -benchtime 1x ./...

bench-scale:
	$(GO) run ./cmd/rmqbench -scrapes $(BENCH_SCRAPES)

bench-scale-live:
	$(GO) run ./cmd/rmqbench -live -scrapes $(BENCH_SCRAPES)

bench-scale-go:
	$(GO) test -run '^$$' -bench 'BenchmarkScale' -benchtime 5x -benchmem ./collector/

bench-peer:
	@if [ -z "$(PEER)" ]; then echo "bench-peer: set PEER to a built qsrg/rocketmq-exporter-go binary (docs/benchmarks.md says how)"; exit 1; fi
	$(GO) run ./cmd/rmqbench -mode cluster -scrapes 5 -codes -peer $(PEER) -peer-interval 4m -peer-rounds 2
