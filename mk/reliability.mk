# Reliability: race detector, soak and the fault matrix (docs/reliability.md).
#
#   make race                 -race on the whole suite (-short: the tests that exec
#                             the binary or real Prometheus run without -race)
#   make fuzz-smoke           every fuzz target for FUZZ_SMOKE; part of `make test`
#   make soak SOAK=1h         long soak against the simulated demo cluster
#   make soak-smoke           short soak; part of `make test`
#   make faults               only the fault matrix and the security tests

SOAK        ?= 10m
SOAK_SMOKE  ?= 30s
SOAK_REPORT ?=

FUZZ_SMOKE  ?= 3s

.PHONY: race soak soak-smoke faults fuzz-smoke

test: soak-smoke race fuzz-smoke

race:
	$(GO) test -race -count=1 -short $$($(GO) list ./... | grep -v '/test/e2e$$')

# Fuzzing for a few seconds per target in CI: the kept corpus
# (rocketmq/testdata/fuzz) already runs as seeds in every plain go test.
fuzz-smoke:
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZ_SMOKE)

soak:
	RMQ_SOAK=$(SOAK) RMQ_SOAK_REPORT=$(SOAK_REPORT) $(GO) test -v -count=1 -timeout 0 -run '^TestSoak$$' ./test/soak/

soak-smoke:
	RMQ_SOAK=$(SOAK_SMOKE) $(GO) test -count=1 -timeout 5m -run '^TestSoak$$' ./test/soak/

faults:
	$(GO) test -count=1 -run '^TestFault' ./collector/
	$(GO) test -count=1 -run 'Secrets|WebConfig|AllowList|Slowloris|TLSToBrokers|Parallel|UnderLoad' ./cmd/rocketmq_exporter/
