#!/usr/bin/env python3
"""Runs a WASI program (a `cargo test --target wasm32-wasip1` test binary) under wasmtime, so that
the code the Wasm build runs, SIMD paths included, is unit-tested in Wasm: cargo calls this as the
target's runner (`CARGO_TARGET_WASM32_WASIP1_RUNNER`), with the module and its arguments."""
import sys

from wasmtime import Engine, ExitTrap, Linker, Module, Store, WasiConfig


def main():
    path, args = sys.argv[1], sys.argv[2:]
    engine = Engine()
    linker = Linker(engine)
    linker.define_wasi()
    store = Store(engine)
    wasi = WasiConfig()
    wasi.argv = [path] + args
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    store.set_wasi(wasi)
    instance = linker.instantiate(store, Module.from_file(engine, path))
    try:
        instance.exports(store)["_start"](store)
    except ExitTrap as e:
        sys.exit(e.code)


if __name__ == "__main__":
    main()
