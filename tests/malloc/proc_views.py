#!/usr/bin/env python3
"""MMKIT_PROC=DIR under the preload: at exit the heap's /proc views are in DIR.

Runs an ordinary program (sort) with the library preloaded and MMKIT_PROC set,
then checks that the views are there in Linux's formats (slabinfo's version
line and its malloc-* caches, meminfo's MemTotal, buddyinfo's node line); that
the program's own output and exit status are unchanged; and that a DIR that
does not exist costs one line on stderr naming the file, and nothing else
(exit status still the program's).

Usage: proc_views.py --lib PATH/libmmkit-malloc.so
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile


def run(lib, env_extra, stdin):
    env = dict(os.environ, LD_PRELOAD=lib, **env_extra)
    return subprocess.run(["sort", "-n"], input=stdin, capture_output=True, text=True, env=env,
                          timeout=120)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    lib = ap.parse_args().lib
    stdin = "".join(f"{(i * 7919) % 100003}\n" for i in range(50000))
    want = subprocess.run(["sort", "-n"], input=stdin, capture_output=True, text=True).stdout
    failures = []
    with tempfile.TemporaryDirectory() as d:
        r = run(lib, {"MMKIT_PROC": d}, stdin)
        if r.returncode != 0 or r.stdout != want:
            failures.append(f"sort under the preload: status {r.returncode}, output differs")
        if r.stderr:
            failures.append(f"unexpected stderr: {r.stderr!r}")
        views = {name: open(os.path.join(d, name)).read() for name in os.listdir(d)}
        checks = {
            "slabinfo": r"^slabinfo - version: 2\.1\n(.|\n)*\nmalloc-64 +\d+ +\d+ +64 ",
            "meminfo": r"^MemTotal: +\d+ kB\n",
            "buddyinfo": r"^Node 0, zone +\w+( +\d+){11} *\n",
        }
        for name, pattern in checks.items():
            if name not in views:
                failures.append(f"{name}: not written (have {sorted(views)})")
            elif not re.search(pattern, views[name]):
                failures.append(f"{name}: not in Linux's format:\n{views[name][:400]}")
    missing = "/nonexistent/mmkit-proc-dir"
    r = run(lib, {"MMKIT_PROC": missing}, stdin)
    if r.returncode != 0 or r.stdout != want:
        failures.append(f"with a missing DIR: status {r.returncode}, output differs")
    lines = r.stderr.splitlines()
    if len(lines) != 1 or not lines[0].startswith(f"mmkit-malloc: MMKIT_PROC: cannot write {missing}/"):
        failures.append(f"with a missing DIR, stderr should be one line naming the file: {r.stderr!r}")
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print("MMKIT_PROC: views written in Linux's formats; a missing DIR is one line")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
