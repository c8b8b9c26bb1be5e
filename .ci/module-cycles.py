#!/usr/bin/env python3
"""Import cycles between the modules of a Rust crate (default: crates/spindle/src).

Reads every `use` tree and every path in code (`crate::a::b`, `super::x`,
`self::y`, a child module's or an imported name's path), follows `use`
re-exports to the module that defines an item, and builds two kinds of
graph: the crate's top-level modules, and, for every module, its child
modules (an edge a -> b when anything inside a, at any depth, names anything
inside b). Prints each cycle (strongly connected set of two or more modules)
with the lines that make its edges, and exits 1 when there is one.

A parent naming its children (or a child its parent) is not a cycle: only
siblings are compared. Comments, string literals and test-only code
(`#[cfg(test)]` modules and `use`s) are ignored.

A cycle listed in KNOWN below (one concept split over files, or a loop
noted in docs/NOTES.md) is reported but does not fail, as long as it keeps
exactly those members; a known cycle that is gone is reported too, so the
list can shrink.

Usage: .ci/module-cycles.py [SRC_DIR] [--graph]
"""

import os
import re
import sys

# (parent module, members of the cycle): why it stays.
KNOWN = {
    ("futures", ("future", "shared")): "one concept: Python's Future is one "
    "class; spindle splits the handle (future.rs) from the state it shares "
    "with its promise (shared.rs), which hands handles to done-callbacks",
}

TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lcomment>//[^\n]*)
  | (?P<bcomment>/\*)
  | (?P<rawstr>b?r(?P<hashes>\#*)")
  | (?P<str>b?"(?:\\.|[^"\\])*")
  | (?P<char>b?'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'\n])')
  | (?P<lifetime>'[A-Za-z_][A-Za-z0-9_]*)
  | (?P<ident>\$?[A-Za-z_][A-Za-z0-9_]*)
  | (?P<path>::)
  | (?P<num>[0-9][0-9A-Za-z_.]*)
  | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def tokens(text):
    """Identifiers, `::` and punctuation with their line numbers."""
    out = []
    pos, line = 0, 1
    while pos < len(text):
        m = TOKEN.match(text, pos)
        kind = m.lastgroup
        if kind == "hashes":
            kind = "rawstr"
        end = m.end()
        if kind == "bcomment":
            depth = 1
            while depth and end < len(text):
                if text.startswith("/*", end):
                    depth, end = depth + 1, end + 2
                elif text.startswith("*/", end):
                    depth, end = depth - 1, end + 2
                else:
                    end += 1
        elif kind == "rawstr":
            close = '"' + m.group("hashes")
            end = text.find(close, end)
            end = len(text) if end < 0 else end + len(close)
        if kind in ("ident", "path", "punct"):
            out.append((m.group(), line))
        line += text.count("\n", pos, end)
        pos = end
    return out


def module_of(src, path):
    rel = os.path.relpath(path, src)[: -len(".rs")].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


class Crate:
    def __init__(self, src):
        self.src = src
        self.modules = set()
        self.files = {}  # module -> file
        self.imports = {}  # module -> {name: (absolute path, line, file)}
        self.globs = {}  # module -> [absolute module path]
        self.refs = []  # (from module, absolute path, file, line, text)
        self.raw = []
        self.test_mods = set()  # modules declared under #[cfg(test)]
        for root, _, names in os.walk(src):
            for name in sorted(names):
                if name.endswith(".rs"):
                    path = os.path.join(root, name)
                    self.files[module_of(src, path)] = path
        self.modules.update(self.files)
        for mod, path in sorted(self.files.items()):
            with open(path, encoding="utf-8") as f:
                self.scan(mod, path, tokens(f.read()))

    # -- reading -------------------------------------------------------------
    def scan(self, filemod, path, toks):
        # (module, brace depth its body opened at, test-only)
        stack = [(filemod, -1, False)]
        depth = 0
        i = 0
        test_attr = False  # a `#[cfg(..test..)]` waits for its item
        raw = []  # (module, segments, file, line, is_use, alias)
        while i < len(toks):
            t, line = toks[i]
            mod = stack[-1][0]
            in_test = any(e[2] for e in stack)
            if t == "#" and i + 1 < len(toks) and toks[i + 1][0] in ("[", "!"):
                j, level = i + 1, 0
                while True:
                    if toks[j][0] == "[":
                        level += 1
                    elif toks[j][0] == "]":
                        level -= 1
                        if level == 0:
                            break
                    j += 1
                words = {w for w, _ in toks[i + 1 : j]}
                if toks[i + 2][0] == "cfg" and "test" in words and "not" not in words:
                    test_attr = True
                i = j + 1
                continue
            if t in ("pub", "(", ")", "crate", "super"):
                i += 1  # a visibility: the attribute still waits
                continue
            pending, test_attr = test_attr, False
            if t == "{":
                depth += 1
            elif t == "}":
                depth -= 1
                if len(stack) > 1 and stack[-1][1] == depth:
                    stack.pop()
            elif t == "mod" and i + 2 < len(toks) and toks[i + 2][0] in ("{", ";"):
                child = mod + (toks[i + 1][0],)
                self.modules.add(child)
                if toks[i + 2][0] == ";":
                    if pending or in_test:
                        self.test_mods.add(child)
                    i += 3
                    continue
                stack.append((child, depth, pending))
                depth += 1
                i += 3
                continue
            elif t == "use" and (i == 0 or toks[i - 1][0] != "."):
                trees, i = self.use_tree(toks, i + 1, [])
                if not (pending or in_test):
                    for segs, alias in trees:
                        raw.append((mod, segs, path, line, True, alias))
                continue
            elif t == "in" and i >= 2 and toks[i - 1][0] == "(" and toks[i - 2][0] == "pub":
                while toks[i][0] != ")":  # pub(in path): a visibility
                    i += 1
                continue
            elif (
                re.fullmatch(r"\$?[A-Za-z_]\w*", t)
                and i + 1 < len(toks)
                and toks[i + 1][0] == "::"
                and (i == 0 or toks[i - 1][0] not in ("::", "."))
            ):
                segs = [t]
                i += 1
                while (
                    i + 1 < len(toks)
                    and toks[i][0] == "::"
                    and re.fullmatch(r"[A-Za-z_]\w*", toks[i + 1][0])
                ):
                    segs.append(toks[i + 1][0])
                    i += 2
                if not in_test:
                    raw.append((mod, segs, path, line, False, None))
                continue
            i += 1
        self.raw += raw

    def use_tree(self, toks, i, prefix):
        """Parses a use tree from toks[i]; returns ([(segments, alias)], next i)."""
        segs = list(prefix)
        out = []
        if toks[i][0] == "::":
            i += 1
        while True:
            t = toks[i][0]
            if t == "{":
                i += 1
                while toks[i][0] != "}":
                    sub, i = self.use_tree(toks, i, segs)
                    out += sub
                    if toks[i][0] == ",":
                        i += 1
                i += 1
                break
            if t == "*":
                out.append((segs + ["*"], None))
                i += 1
                break
            segs.append(t)
            i += 1
            if toks[i][0] == "::":
                i += 1
                continue
            alias = None
            if toks[i][0] == "as":
                alias = toks[i + 1][0]
                i += 2
            out.append((segs, alias))
            break
        if not prefix:  # the statement's end
            while toks[i][0] != ";":
                i += 1
            i += 1
        return out, i

    # -- resolving -----------------------------------------------------------
    def start(self, mod, first):
        """The absolute module a path's first segment names, or None (extern)."""
        if first in ("crate", "$crate", "spindle"):
            return ()
        if first == "super":
            return mod[:-1]
        if first == "self":
            return mod
        if mod + (first,) in self.modules:
            return mod + (first,)
        return None

    def absolute(self, mod, segs):
        """A path's absolute segments, or None for a path outside the crate."""
        out = None
        rest = list(segs)
        base = self.start(mod, rest[0])
        if base is not None:
            out = list(base)
            rest.pop(0)
            while rest and rest[0] == "super":
                out.pop()
                rest.pop(0)
        else:
            for scope in [mod] + self.globs.get(mod, []):
                imp = self.imports.get(scope, {}).get(rest[0])
                if imp is not None:
                    out = list(imp[0])
                    rest.pop(0)
                    break
            else:
                return None
        return tuple(out + rest)

    def resolve(self, segs, hops=0):
        """The module that defines what absolute path segs names."""
        mod = ()
        for k, s in enumerate(segs):
            if mod + (s,) in self.modules:
                mod = mod + (s,)
                continue
            imp = self.imports.get(mod, {}).get(s)
            if imp is not None and hops < 16 and imp[0] != mod + (s,):
                return self.resolve(imp[0] + tuple(segs[k + 1 :]), hops + 1)
            break
        return mod

    def build(self):
        # Test-only code (`#[cfg(test)]` modules and uses) is left out: a
        # test may reach into a sibling.
        self.raw = [
            r
            for r in self.raw
            if not any(r[0][: len(t)] == t for t in self.test_mods)
        ]
        # Imports first (a `use` may name another `use`), to a fixed point.
        uses = [r for r in self.raw if r[4]]
        for _ in range(8):
            changed = False
            for mod, segs, path, line, _, alias in uses:
                ab = self.absolute(mod, segs)
                if ab is None:
                    continue
                if ab[-1] == "*":
                    target = self.resolve(ab[:-1])
                    globs = self.globs.setdefault(mod, [])
                    if target not in globs:
                        globs.append(target)
                        changed = True
                    continue
                if ab[-1] == "self":
                    ab = ab[:-1]
                if not ab:
                    continue
                name = alias or ab[-1]
                if name == "_":
                    continue
                old = self.imports.setdefault(mod, {}).get(name)
                if old is None or old[0] != ab:
                    self.imports[mod][name] = (ab, line, path)
                    changed = True
            if not changed:
                break
        for mod, segs, path, line, is_use, _ in self.raw:
            ab = self.absolute(mod, segs)
            if ab is None:
                continue
            if ab and ab[-1] in ("*", "self"):
                ab = ab[:-1]
            target = self.resolve(ab)
            text = "::".join(s for s in segs if s != "self" or s is segs[0])
            self.refs.append((mod, target, path, line, ("use " if is_use else "") + text))


def sccs(nodes, edges):
    """Tarjan's strongly connected components of two or more nodes."""
    index, low, on, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main(argv):
    show_graph = "--graph" in argv
    args = [a for a in argv if not a.startswith("--")]
    here = os.path.dirname(os.path.abspath(__file__))
    src = args[0] if args else os.path.join(here, "..", "crates", "spindle", "src")
    crate = Crate(os.path.normpath(src))
    crate.build()

    # For every parent module, the graph of its children.
    parents = {m[:-1] for m in crate.modules if m}
    found = 0
    seen = set()
    for parent in sorted(parents):
        n = len(parent)
        children = {m[n] for m in crate.modules if len(m) > n and m[:n] == parent}
        edges, why = {}, {}
        for src_mod, dst, path, line, text in crate.refs:
            if len(src_mod) <= n or len(dst) <= n:
                continue
            if src_mod[:n] != parent or dst[:n] != parent or src_mod[n] == dst[n]:
                continue
            a, b = src_mod[n], dst[n]
            edges.setdefault(a, set()).add(b)
            why.setdefault((a, b), []).append(
                f"{os.path.relpath(path)}:{line}: {text}"
            )
        name = "::".join(("crate",) + parent)
        if show_graph and edges:
            print(f"{name}:")
            for a in sorted(edges):
                print(f"  {a} -> {', '.join(sorted(edges[a]))}")
        for comp in sccs(children, edges):
            key = ("::".join(parent), tuple(comp))
            if key in KNOWN:
                seen.add(key)
                print(f"known cycle in {name}: {' <-> '.join(comp)} ({KNOWN[key]})")
                continue
            found += 1
            print(f"cycle in {name}: {' <-> '.join(comp)}")
            for a in comp:
                for b in sorted(edges.get(a, ())):
                    if b in comp:
                        print(f"  {a} -> {b}:")
                        for w in why[(a, b)][:6]:
                            print(f"    {w}")
                        if len(why[(a, b)]) > 6:
                            print(f"    (+{len(why[(a, b)]) - 6} more)")
    for parent, comp in sorted(set(KNOWN) - seen):
        print(f"known cycle gone, drop it from KNOWN: crate::{parent}: {' <-> '.join(comp)}")
    if found:
        print(f"{found} import cycle(s) between sibling modules")
        return 1
    print(
        f"no new import cycles between sibling modules ({len(crate.modules)} modules, "
        f"{len(seen)} known)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
