# inkstream — make targets. Everything needs only Go; tools come from the Go module proxy.
GO        ?= go
BIN       ?= bin
PKGS      := ./...
TEST_FLAGS ?= -race -count=1 -timeout 20m
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test chromium prometheus build lint bench cluster fuzz clean

## run: the all-in-one development server (embedded NATS on :4222, data in ./data; RUN_FLAGS: more flags).
##      Built into $(BIN)/ and run with job control on a terminal, so that Ctrl-C reaches inkstream alone:
##      it stops cleanly, logs "stopped" and exits 0, and so does make. (`go run` would exit 1 after a
##      signal, and make, given the SIGINT too, would die of it with status 130.)
run:
	$(GO) build -o $(BIN)/inkstream ./cmd/inkstream
	@if [ -t 0 ]; then set -m; fi; $(BIN)/inkstream $(RUN_FLAGS)

## build: the binaries of ./cmd and nats-server into ./bin
build:
	$(GO) build -o $(BIN)/ ./cmd/...
	$(GO) build -o $(BIN)/nats-server github.com/nats-io/nats-server/v2

## test: every test, with the race detector, against real embedded NATS, a real Prometheus and a real
##       headless Chromium (Debian's prometheus and chromium packages, installed when missing);
##       screenshots and other artifacts in $(ARTIFACTS)/_artifacts
ARTIFACTS ?= test-artifacts
test: prometheus chromium
	$(GO) vet $(PKGS)
	@mkdir -p $(ARTIFACTS)
	$(GO) test $(TEST_FLAGS) -artifacts -outputdir $(abspath $(ARTIFACTS)) $(PKGS)

## chromium: Debian's chromium for the browser tests, installed with apt-get when missing
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "installing Debian's chromium package (for the browser tests)"; \
		$(SUDO) apt-get update -qq >/dev/null && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	fi

## prometheus: Debian's prometheus package (prometheus and promtool, which the tests of deployments/ run),
##             installed with apt-get when missing
prometheus:
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then \
		echo "installing Debian's prometheus package (promtool and prometheus, for the tests of deployments/)"; \
		$(SUDO) apt-get update -qq >/dev/null && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	fi

## fuzz: every fuzz target of the repository, one after the other, each for FUZZTIME (default 30s);
##       the last line of each says how many inputs it ran; a crasher fails it and is kept in testdata/fuzz
FUZZTIME ?= 30s
fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; \
	for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for target in $$(grep -h '^func Fuzz' $$dir/*_test.go | sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/'); do \
	    echo "== $$dir $$target ($(FUZZTIME))"; \
	    if ! $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$dir > $$log 2>&1; then cat $$log; exit 1; fi; \
	    grep -E '^fuzz: elapsed: .*execs' $$log | tail -n 1; \
	  done; \
	done

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## bench: the benchmark against its performance targets, baselines in the same run (< 10 min; BENCH_SHORT=1: < 2 min;
##        BENCH_FLAGS: more flags, e.g. -runs 3 or -pprof); results in bench/runs/<UTC time>.md and .json,
##        or with BENCH_PUBLISH=1 in the published bench/results.md and bench/results.json
bench: build
	$(BIN)/inkbench -bin $(BIN) $(if $(BENCH_PUBLISH),-out bench -name results,-out bench/runs) $(if $(BENCH_SHORT),-short) $(BENCH_FLAGS)

## cluster: 3-node NATS JetStream cluster + two of each service on loopback, replicas 3 (Ctrl-C stops it;
##          CLUSTER_FLAGS: more flags, e.g. -port-offset 1000; see README "Scale out")
cluster: build
	$(BIN)/inkcluster -bin $(BIN) $(CLUSTER_FLAGS)

clean:
	rm -rf $(BIN)
