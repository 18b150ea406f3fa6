#!/usr/bin/env python3
"""Fails on a dependency circle between the modules of a Rust crate, on a dependency circle between its
folders, or on a folder that imports from a layer above its own (`make lint` runs it on the core).

A module depends on another when its code names a `crate::…` path (a `use` or a path in code) that
resolves to that module's file. Paths resolve to the deepest module that exists as a file; `mod`
declarations are not dependencies, and the crate root (lib.rs, which only declares modules and
re-exports) is not a node. Tests (`#[cfg(test)]` and below) are left out.

The folders are the first path component under SRC_DIR (`wire/`, `config/`, …; a top-level file such
as `host.rs` is a folder of its own). A folder depends on another when one of its modules depends on
one of the other's. Every folder has a layer (`LAYERS`, bottom up): a folder imports only from the
folders below it, and a folder `LAYERS` does not name fails the check until it is given its place.

usage: modgraph.py SRC_DIR [--dot] [--folders]
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


# The core's folders (filter/core/src) as layers, bottom up: a folder imports only from those below it.
LAYERS = [
    "ids",  # ids.rs: typed indices into the configuration's tables
    "wire",  # bytes on the wire: header maps, URLs, forms, header-safe text, time formats
    "host",  # host.rs: the host services as traits, with in-memory versions
    "contract",  # what clients and backends see: error table, refusals, replies, header names
    "schema",  # the Validator: typed walking of a JSON settings document, every problem with its path
    "auth",  # the digest signature, replay protection
    "apps",  # the app directory and credentials, the app registry's settings
    "plugins",  # Aliyun's plugins, their binding, the condition language
    "cluster",  # cluster mode: RLS and etcd messages, cluster settings
    "config",  # the configuration compiled into a Gateway; the app registry merged into one
    "request",  # the request decision: route, authenticate, admit
    "engine",  # the request engine: the host's events for one stream, per-VM state
]


def folder(m):
    return m[0]


def layer(f):
    return LAYERS.index(f) if f in LAYERS else None


def folder_graph(graph):
    """folder -> {folder: [(module, module), ...]} for the module edges that cross folders."""
    out = {folder(m): {} for m in graph}
    for a, targets in graph.items():
        for b in targets:
            fa, fb = folder(a), folder(b)
            if fa != fb:
                out[fa].setdefault(fb, []).append((a, b))
    return out


def upward(folders):
    """Edges from a folder to one of a higher layer, and folders without a layer."""
    out = []
    for fa, targets in sorted(folders.items()):
        for fb, via in sorted(targets.items()):
            la, lb = layer(fa), layer(fb)
            if la is not None and lb is not None and lb > la:
                out.append((fa, fb, sorted(via)))
    unknown = sorted(f for f in folders if layer(f) is None)
    return out, unknown


def shortest_circle(graph, comp):
    """The shortest circle through the nodes of a strongly connected component, from its first node back."""
    inside = set(comp)
    best = None
    for start in comp:
        prev, queue = {start: None}, [start]
        while queue:
            v = queue.pop(0)
            if start in graph[v]:
                if best is None or len(path_to(prev, v)) + 1 < len(best):
                    best = path_to(prev, v) + [start]
                break
            for w in sorted(graph[v]):
                if w in inside and w not in prev:
                    prev[w] = v
                    queue.append(w)
    return best


def path_to(prev, v):
    out = []
    while v is not None:
        out.append(v)
        v = prev[v]
    return out[::-1]


def name(m):
    return "::".join(m)


def main():
    src = sys.argv[1]
    graph = edges(modules(src))
    folders = folder_graph(graph)
    if "--dot" in sys.argv:
        if "--folders" in sys.argv:
            for f, ts in sorted(folders.items()):
                for t in sorted(ts):
                    print(f'"{f}" -> "{t}"')
        else:
            for m, ts in sorted(graph.items()):
                for t in sorted(ts):
                    print(f'"{name(m)}" -> "{name(t)}"')
        return 0
    failed = False
    for comp in cycles(graph):
        failed = True
        print(f"dependency circle between {len(comp)} modules: {', '.join(name(c) for c in comp)}")
        for a in comp:
            for b in sorted(graph[a]):
                if b in comp:
                    print(f"  {name(a)} -> {name(b)}")
    fgraph = {f: set(ts) for f, ts in folders.items()}
    for comp in cycles(fgraph):
        failed = True
        circle = shortest_circle(fgraph, comp)
        print(f"dependency circle between {len(comp)} folders ({', '.join(comp)}), e.g. {' -> '.join(circle)}:")
        for fa, fb in zip(circle, circle[1:]):
            via = sorted(folders[fa][fb])
            more = f" (and {len(via) - 3} more)" if len(via) > 3 else ""
            print(f"  {fa} -> {fb}: " + ", ".join(f"{name(a)} -> {name(b)}" for a, b in via[:3]) + more)
    up, unknown = upward(folders)
    for fa, fb, via in up:
        failed = True
        print(f"layering: folder {fa} (layer {layer(fa)}) imports folder {fb} (layer {layer(fb)}), above it:")
        for a, b in via:
            print(f"  {name(a)} -> {name(b)}")
    for f in unknown:
        failed = True
        print(f"layering: folder {f} has no layer: give it its place in LAYERS ({' < '.join(LAYERS)})")
    if failed:
        return 1
    print(
        f"no dependency circle between the {len(graph)} modules nor the {len(folders)} folders of {src}, "
        f"and no import from a layer above ({' < '.join(LAYERS)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
