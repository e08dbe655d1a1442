# flashotp: `make run` serves the demo, `make test` installs the SIP peers it needs and runs every test;
# `make test-short` is the quick tier (go test -short: the slowest tests skip themselves).
GO      ?= go
BIN     := bin/flashotp
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build run test test-short ui ui-test screenshots attack deps lint bench soak fuzz release clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/flashotp

run: build
	./$(BIN) serve --config configs/flashotp.yaml

deps:
	./scripts/deps.sh

test: deps ui-test
	$(GO) test -race -count=1 -timeout 20m ./...

# The console's browser app (web/, docs in web/README.md): `make ui` type-checks it and rebuilds web/dist, which
# is committed and embedded in the binary, so building the engine never needs Node. `make ui-test` runs its
# Vitest tests.
ui:
	cd web && npm ci --no-audit --no-fund && npm run build

ui-test: deps
	cd web && npm test

# Screenshots of every console page at 1280 px and 390 px, from the built binary's own console, into
# docs/console/ (commit them): the browser tests' TestConsolePages, writing what it sees.
screenshots: deps
	mkdir -p docs/console
	FLASHOTP_SCREENSHOTS=$(CURDIR)/docs/console $(GO) test -count=1 -run 'TestConsolePages' ./cmd/flashotp

# The quick tier: every test but the slowest few (the hostile trunks, the container image, the bench smoke
# test), which skip themselves under -short. make test still runs them all.
test-short: deps
	$(GO) test -race -count=1 -short -timeout 10m ./...

# The probes of attacks from the network (issue 13: floods, malformed SIP, forged responses, reflection, log
# growth, concurrent guesses), each asserting its bound; docs/security.md lists them. make test runs them too.
attack: deps
	$(GO) test -race -count=1 -timeout 10m -run TestAttack -v ./...

lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) mod tidy -diff

# The Go benchmarks of the parts, then `flashotp bench`: SIPp reference, dialer alone, whole path and verifies
# (the engine as its own process under wrk), ringing memory and drain, each three times: medians and ratios
# (docs/benchmarks.md).
bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	./$(BIN) bench

# 30 minutes of sends and verifies at 200/s against a SIPp callee: memory, goroutines and open files sampled
# every 30 s must stay flat (docs/benchmarks.md has the last result). Not part of make test.
SOAK ?= 30m
soak: deps build
	./$(BIN) bench --only s --soak $(SOAK)

# Each fuzz target for a while; `make test` runs their seeds (testdata/fuzz/) only. A new input is minimized for
# a second at most: with go's default of a minute, minimizing one large input (the example config, an app body
# with every setting) can take a whole run.
FUZZTIME ?= 30s
FUZZ = $(GO) test -run '^$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s -fuzz
fuzz:
	$(FUZZ) FuzzLoad ./configs/
	$(FUZZ) FuzzNormalizeRecipient ./otp/
	$(FUZZ) FuzzSendBody ./httpapi/
	$(FUZZ) FuzzVerifyBody ./httpapi/
	$(FUZZ) FuzzResendBody ./httpapi/
	$(FUZZ) FuzzAppBody ./httpapi/
	$(FUZZ) FuzzPoolBody ./httpapi/
	$(FUZZ) FuzzValidateNumbers ./numberpool/
	$(FUZZ) FuzzSDPMediaAddr ./sip/
	$(FUZZ) FuzzTrunkResponse ./sip/
	$(FUZZ) FuzzAppSettings ./apps/
	$(FUZZ) FuzzAuthenticateJWT ./apps/
	$(FUZZ) FuzzMeasure ./sms/
	$(FUZZ) FuzzCheck ./sms/

# Static, stripped binaries for linux/amd64 and linux/arm64, each in flashotp_<version>_linux_<arch>.tar.gz
# with LICENSE, README.md, CHANGELOG.md and the example configs, and dist/SHA256SUMS over the archives.
RELEASE_ARCHES ?= amd64 arm64
release:
	rm -rf dist && mkdir -p dist
	set -e; for arch in $(RELEASE_ARCHES); do \
	  name=flashotp_$(VERSION)_linux_$$arch; mkdir -p dist/$$name; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o dist/$$name/flashotp ./cmd/flashotp; \
	  cp LICENSE README.md CHANGELOG.md configs/flashotp.yaml deploy/flashotp.container.yaml deploy/flashotp.service dist/$$name/; \
	  tar -C dist --owner=0 --group=0 --sort=name -czf dist/$$name.tar.gz $$name; rm -r dist/$$name; \
	done
	cd dist && sha256sum *.tar.gz > SHA256SUMS && cat SHA256SUMS

clean:
	rm -rf bin data dist
