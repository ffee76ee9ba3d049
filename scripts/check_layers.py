#!/usr/bin/env python3
"""Refuses an #include that runs up the layer order of docs/ARCHITECTURE.md.

A file under src/<layer>/ may include only headers of its own layer or of
layers before it in the `Layer order:` line; include/mmkit/<layer>.h counts
as part of <layer>. Exit status 1 lists every offending include.
"""
import os
import re
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
doc = open(os.path.join(root, "docs", "ARCHITECTURE.md"), encoding="utf-8").read()
m = re.search(r"^\s*Layer order:\s*(.+)$", doc, re.M)
if not m:
    sys.exit("docs/ARCHITECTURE.md has no 'Layer order:' line")
order = [x.strip(" `.") for x in re.split(r"[,→>]+", m.group(1)) if x.strip(" `.")]
rank = {n: i for i, n in enumerate(order)}
inc = re.compile(r'\s*#\s*include\s*[<"](?:src/)?(?:mmkit/)?([a-z_]+)(?:/|\.h[">])')

def layer_of(path):
    rel = os.path.relpath(path, root).split(os.sep)
    if rel[0] == "src" and len(rel) > 2:
        return rel[1]
    if rel[:2] == ["include", "mmkit"]:
        return os.path.splitext(rel[2])[0]
    return None

bad = []
unknown = []
for top in ("src", os.path.join("include", "mmkit")):
    for dirpath, _, files in os.walk(os.path.join(root, top)):
        for f in files:
            if not f.endswith((".h", ".cc", ".hpp", ".cpp")):
                continue
            p = os.path.join(dirpath, f)
            layer = layer_of(p)
            if layer not in rank:
                unknown.append(os.path.relpath(p, root))
                continue
            for n, line in enumerate(open(p, encoding="utf-8", errors="replace"), 1):
                mm = inc.match(line)
                if mm and mm.group(1) in rank and rank[mm.group(1)] > rank[layer]:
                    bad.append(f"{os.path.relpath(p, root)}:{n}: {layer} includes {mm.group(1)}, a higher layer")
if unknown:
    bad += [f"{u}: not in a layer named by 'Layer order:'" for u in unknown]
if bad:
    print("\n".join(bad))
    sys.exit(1)
print(f"layer order ok ({', '.join(order)})")
