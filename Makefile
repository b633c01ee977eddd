# kubeha: `make demo` (the main job, offline, on embedded defaults) and `make test` (everything).
# Both install what they need on a fresh Debian 12 machine as root (`make deps`, idempotent and quiet).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
OUT ?= $(CURDIR)/out
STAMP := $(CURDIR)/target/.stamps

# Debian packages every part needs; each mk/*.mk adds its own to APT_PACKAGES and its test target to TEST_TARGETS.
APT_PACKAGES := build-essential pkg-config openssl ca-certificates iproute2 python3 python3-pip curl jq zstd xz-utils
PIP_PACKAGES :=
TEST_TARGETS :=
DEMO_TARGETS :=

include $(sort $(wildcard mk/*.mk))

.PHONY: all deps build lint check-house unit test demo bench clean nextest

all: build

$(STAMP):
	@mkdir -p $@

# One apt run for every part; re-run only when the list changes.
deps: $(STAMP)
	@want="$(sort $(APT_PACKAGES))"; \
	if [ "$$(cat $(STAMP)/apt 2>/dev/null)" != "$$want" ]; then \
	  echo "deps: apt-get install $$(echo $$want | wc -w) packages"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $$want >/dev/null; \
	  echo "$$want" > $(STAMP)/apt; \
	fi
	@want="$(sort $(PIP_PACKAGES))"; \
	if [ -n "$$want" ] && [ "$$(cat $(STAMP)/pip 2>/dev/null)" != "$$want" ]; then \
	  echo "deps: pip install $$want"; \
	  pip install -q --disable-pip-version-check $$want >/dev/null 2>&1 || pip install -q --break-system-packages $$want >/dev/null; \
	  echo "$$want" > $(STAMP)/pip; \
	fi

build:
	$(CARGO) build --workspace --bins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(MAKE) --no-print-directory check-house

# The house rules (house/src/lib.rs): tools only through kubeha-runner, no awk/sed or bundle.toml in kickstart
# templates, kernel argument keys only in model/, no import circle between a crate's files; exceptions with their
# reasons in house/allow.toml.
check-house:
	$(CARGO) run --quiet -p kubeha-house -- $(CURDIR)

# cargo-nextest is not on every new machine: built from crates.io once (~4 min on 2 cores).
nextest:
	@command -v cargo-nextest >/dev/null || $(CARGO) install cargo-nextest --locked

# The real kubeadm of the default release and of a v1beta3-era release judge the agent's kubeadm files
# (firstboot/tests/kubeadm_validate.rs); the media tests embed the glibc-2.17 agent of node-binary
# (cli/tests/media_agent.rs) and the ELF reader is checked against objdump -T on it.
unit: deps nextest k8s k8s-v1beta3 node-binary
	KUBEHA_K8S_BIN=$(K8S_DIR)/bin KUBEHA_K8S_V1BETA3_BIN=$(K8S_V1BETA3_DIR)/bin \
	  KUBEHA_NODE_BINARY=$(CURDIR)/dist/kubeha-firstboot \
	  $(CARGO) nextest run --workspace --features kubeha-firstboot/crash-hook --no-fail-fast --status-level fail --final-status-level fail

test: deps lint unit $(TEST_TARGETS)
	@echo "make test: all passed"

demo: deps build $(DEMO_TARGETS)

clean:
	rm -rf target dist out
