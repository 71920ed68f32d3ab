# Reliability: race detector, soak and the fault matrix (docs/reliability.md).
#
#   make race                 -race on the packages with shared state
#   make soak SOAK=1h         long soak against the simulated demo cluster
#   make soak-smoke           short soak; part of `make test`
#   make faults               only the fault matrix and the security tests

SOAK        ?= 10m
SOAK_SMOKE  ?= 30s
SOAK_REPORT ?=

.PHONY: race soak soak-smoke faults

test: soak-smoke

race:
	$(GO) test -race -count=1 ./rocketmq/ ./collector/
	$(GO) test -race -count=1 -short -run 'InProcess' ./cmd/rocketmq_exporter/

soak:
	RMQ_SOAK=$(SOAK) RMQ_SOAK_REPORT=$(SOAK_REPORT) $(GO) test -v -count=1 -timeout 0 -run '^TestSoak$$' ./test/soak/

soak-smoke:
	RMQ_SOAK=$(SOAK_SMOKE) $(GO) test -count=1 -timeout 5m -run '^TestSoak$$' ./test/soak/

faults:
	$(GO) test -count=1 -run '^TestFault' ./collector/
	$(GO) test -count=1 -run 'Secrets|WebConfig|AllowList|Slowloris|TLSToBrokers|Parallel|UnderLoad' ./cmd/rocketmq_exporter/
