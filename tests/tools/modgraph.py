#!/usr/bin/env python3
"""Fails on a dependency circle between the modules of a Rust crate, or on a module that imports from
a layer above its own (`make lint` runs it on the core).

A module depends on another when its code names a `crate::…` path (a `use` or a path in code) that
resolves to that module's file. Paths resolve to the deepest module that exists as a file; `mod`
declarations are not dependencies, and the crate root (lib.rs, which only declares modules and
re-exports) is not a node. Tests (`#[cfg(test)]` and below) are left out.

usage: modgraph.py SRC_DIR [--dot]
"""
import os
import re
import sys


def modules(src):
    """module path (tuple) -> file"""
    out = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel == ["lib"] or rel == ["main"]:
                continue
            if rel[-1] == "mod":
                rel = rel[:-1]
            out[tuple(rel)] = os.path.join(root, f)
    return out


PATH = re.compile(r"\bcrate::((?:[A-Za-z_][A-Za-z0-9_]*::)*)(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)", re.S)
SUPER = re.compile(r"\bsuper::((?:[A-Za-z_][A-Za-z0-9_]*::)*)([A-Za-z_][A-Za-z0-9_]*)")


def strip(text):
    text = text.split("#[cfg(test)]", 1)[0]
    text = re.sub(r"//[^\n]*", "", text)
    return text


def edges(mods):
    graph = {m: set() for m in mods}
    for m, path in mods.items():
        with open(path, encoding="utf-8") as f:
            text = strip(f.read())
        targets = []
        for prefix, last in PATH.findall(text):
            segs = [s for s in prefix.split("::") if s]
            if last.startswith("{"):
                for item in re.split(r"[,\s]+", last.strip("{}")):
                    item = item.split("::")
                    targets.append(segs + [s for s in item if s and s != "self"])
            else:
                targets.append(segs + [last])
        base = m if path.endswith("mod.rs") else m[:-1]
        for prefix, last in SUPER.findall(text):
            segs = [s for s in prefix.split("::") if s]
            targets.append(list(base[:-1]) + segs + [last])
        for t in targets:
            for n in range(len(t), 0, -1):
                cand = tuple(t[:n])
                if cand in mods:
                    if cand != m:
                        graph[m].add(cand)
                    break
    return graph


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


# The core's layers (filter/core/src), bottom up; a module may import from its own layer and those below. The longest
# matching prefix decides a module's layer. A module no prefix names is not checked for layering.
LAYERS = [
    ("wire", 0), ("host", 0),
    ("contract", 1),
    ("auth", 2), ("apps::directory", 2), ("apps::settings", 2), ("config::validator", 2), ("config::router", 2), ("config::parameters", 2),
    ("plugins", 3), ("cluster", 3),
    ("config", 4), ("apps::registry", 4),
    ("request", 5),
]


def layer(m):
    name = "::".join(m)
    best = None
    for prefix, n in LAYERS:
        if (name == prefix or name.startswith(prefix + "::")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, n)
    return None if best is None else best[1]


def upward(graph):
    out = []
    for a, targets in sorted(graph.items()):
        for b in sorted(targets):
            la, lb = layer(a), layer(b)
            if la is not None and lb is not None and lb > la:
                out.append((a, b))
    return out


def main():
    src = sys.argv[1]
    graph = edges(modules(src))
    if "--dot" in sys.argv:
        for m, ts in sorted(graph.items()):
            for t in sorted(ts):
                print(f'"{"::".join(m)}" -> "{"::".join(t)}"')
        return 0
    found = cycles(graph)
    for comp in found:
        names = ", ".join("::".join(c) for c in comp)
        print(f"dependency circle between {len(comp)} modules: {names}")
        for a in comp:
            for b in sorted(graph[a]):
                if b in comp:
                    print(f"  {'::'.join(a)} -> {'::'.join(b)}")
    up = upward(graph)
    for a, b in up:
        print(f"layering: {'::'.join(a)} (layer {layer(a)}) imports {'::'.join(b)} (layer {layer(b)})")
    if found or up:
        return 1
    print(f"no dependency circle between the {len(graph)} modules of {src}, and no import from a layer above")
    return 0


if __name__ == "__main__":
    sys.exit(main())
