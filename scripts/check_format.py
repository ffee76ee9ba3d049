#!/usr/bin/env python3
"""Every C++ file is clang-formatted (repo .clang-format); lists those that are not."""
import os
import subprocess
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
files = []
for top in ("src", "include", "tools", "tests", "bench"):
    for dirpath, _, names in os.walk(os.path.join(root, top)):
        files += [os.path.join(dirpath, n) for n in names if n.endswith((".h", ".cc"))]
bad = []
for f in sorted(files):
    r = subprocess.run(["clang-format", "--dry-run", "-Werror", f], capture_output=True)
    if r.returncode != 0:
        bad.append(os.path.relpath(f, root))
if bad:
    print("not clang-formatted (run clang-format -i):\n  " + "\n  ".join(bad))
    sys.exit(1)
print(f"clang-format ok ({len(files)} files)")
