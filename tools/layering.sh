#!/usr/bin/env python3
# tools/layering.sh [SRC]: the include rule of the tiers (README,
# "Architecture"), checked over SRC (default src/). Exit 0 when it holds,
# 1 with one line per violation when it does not.
#
# The graph: a module is a file's basename (catalog for catalog.c and
# catalog.h); X -> Y when X.c or X.h includes a header Y.h that exists
# under SRC (looked up beside the including file, then in SRC, SRC/engine,
# SRC/integrations, as the compiler's -I paths would find it, then in
# SRC/cli). A header found nowhere under SRC is a system or library header
# and is no edge.
#
# The rule:
#   1. the module graph has no cycle;
#   2. a file in SRC/engine includes no header of SRC/integrations or
#      SRC/cli;
#   3. a file in SRC/cli includes no header of SRC but the public one,
#      SRC/forkstore.h;
#   4. a file in SRC/integrations includes no header of SRC/cli.
#
# Written in Python (standard library only) because a cycle search in bash
# would be longer than the rule it checks.
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)
# Block and line comments go (an #include in a comment is none); string
# and character literals are matched so that a quote or a comment opener
# inside one is not taken for the real thing, and kept as they are.
STRIP = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


def strip_comments(text):
    def repl(m):
        s = m.group(0)
        if s[0] in '"\'':
            return s
        return '\n' * s.count('\n')
    return STRIP.sub(repl, text)


def main():
    src = os.path.normpath(sys.argv[1] if len(sys.argv) > 1 else 'src')
    if not os.path.isdir(src):
        print(f'layering: {src} is not a directory', file=sys.stderr)
        return 2
    tiers = {'engine', 'integrations', 'cli'}
    # The build's -I paths, and src/cli too: a header there is found (and
    # judged) even though no -I path would reach it.
    search = [src] + [os.path.join(src, t) for t in ('engine', 'integrations', 'cli')]

    def tier(path):
        rel = os.path.relpath(path, src).split(os.sep)
        return rel[0] if len(rel) > 1 and rel[0] in tiers else 'top'

    def resolve(name, includer):
        for d in [os.path.dirname(includer)] + search:
            p = os.path.normpath(os.path.join(d, name))
            if os.path.isfile(p) and not os.path.relpath(p, src).startswith('..'):
                return p
        return None

    files = []
    for root, dirs, names in os.walk(src):
        dirs.sort()
        for n in sorted(names):
            if n.endswith(('.c', '.h')):
                files.append(os.path.join(root, n))

    bad = []
    graph = {}        # module -> {module: "file includes header" (first seen)}
    where = {}        # module -> the files that make it
    for f in files:
        mod = os.path.splitext(os.path.basename(f))[0]
        where.setdefault(mod, set()).add(os.path.relpath(f, src))
        graph.setdefault(mod, {})
        with open(f, encoding='utf-8', errors='replace') as fh:
            text = strip_comments(fh.read())
        for name in INCLUDE.findall(text):
            h = resolve(name, f)
            if h is None:
                continue
            dep = os.path.splitext(os.path.basename(h))[0]
            ft, ht = tier(f), tier(h)
            edge = f'{f} includes {os.path.relpath(h)}'
            if ft == 'engine' and ht in ('integrations', 'cli'):
                bad.append(f'layering: engine file {edge}: the engine may include only its own '
                           f'headers and the public header')
            if ft == 'cli' and os.path.relpath(h, src) != 'forkstore.h':
                bad.append(f'layering: cli file {edge}: forkctl may include only the public '
                           f'header forkstore.h')
            if ft == 'integrations' and ht == 'cli':
                bad.append(f'layering: integration file {edge}: integrations may not include '
                           f'forkctl\'s headers')
            if dep != mod:
                graph[mod].setdefault(dep, edge)
                graph.setdefault(dep, {})

    # Cycles: Tarjan's strongly connected components; each component of
    # more than one module is reported once, with one cycle through it.
    index, low, stack, on, sccs = {}, {}, [], set(), []

    def visit(v):
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        while work:
            u, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    p = work[-1][0]
                    low[p] = min(low[p], low[u])
                if low[u] == index[u]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        comp.append(x)
                        if x == u:
                            break
                    sccs.append(comp)
            elif w not in index:
                index[w] = low[w] = len(index)
                stack.append(w)
                on.add(w)
                work.append((w, iter(sorted(graph[w]))))
            elif w in on:
                low[u] = min(low[u], index[w])

    for v in sorted(graph):
        if v not in index:
            visit(v)

    for comp in sccs:
        if len(comp) < 2:
            continue
        members = set(comp)
        # One cycle: a shortest path back to the start inside the component.
        start = min(comp)
        prev, queue, seen = {}, [start], {start}
        found = None
        while queue and found is None:
            nxt = []
            for u in queue:
                for w in sorted(graph[u]):
                    if w == start:
                        found = u
                        break
                    if w in members and w not in seen:
                        seen.add(w)
                        prev[w] = u
                        nxt.append(w)
                if found is not None:
                    break
            queue = nxt
        path = [found]
        while path[-1] != start:
            path.append(prev[path[-1]])
        path.reverse()
        path.append(start)
        bad.append('layering: include cycle ' + ' -> '.join(path) + ' (' +
                   '; '.join(graph[a][b] for a, b in zip(path, path[1:])) + ')' +
                   (f'; modules on cycles with it: {", ".join(sorted(members))}' if len(members) > 2 else ''))

    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        print(f'layering: {len(bad)} violation(s) of the include rule (README, "Architecture")',
              file=sys.stderr)
        return 1
    nedges = sum(len(d) for d in graph.values())
    print(f'layering: {len(graph)} modules, {nedges} include edges, no cycle, tiers respected')
    return 0


if __name__ == '__main__':
    sys.exit(main())
