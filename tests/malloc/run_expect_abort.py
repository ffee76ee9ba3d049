#!/usr/bin/env python3
"""Runs a command that must die of a signal (SIGABRT by default) with stderr
matching a regular expression; exit 0 if so, 1 otherwise.

Why: ctest's WILL_FAIL accepts any failure (a crash in the wrong place, a
missing library) and PASS_REGULAR_EXPRESSION ignores how the process ended.
The debug-malloc victims must be caught *and* reported: death by SIGABRT and
SLUB's report text on stderr.

  run_expect_abort.py [--preload LIB] [--env NAME=VALUE]... --regex RE -- CMD [ARG...]

--preload and --env apply to CMD only (not to this interpreter): a debugging
allocator preloaded into python itself would slow it down and muddle the test.
"""
import argparse
import os
import re
import resource
import signal
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preload", help="LD_PRELOAD for the command")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--regex", required=True, help="must match (re.search) the command's stderr")
    ap.add_argument("--signal", default="SIGABRT", help="the signal it must die of")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("no command given")
    want_sig = getattr(signal, args.signal)

    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if args.preload:
        if not os.path.exists(args.preload):
            print(f"run_expect_abort: FAIL: {args.preload} does not exist")
            return 1
        env["LD_PRELOAD"] = args.preload
    for kv in args.env:
        name, _, value = kv.partition("=")
        env[name] = value

    def no_core():  # the expected abort should not leave core files behind
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    try:
        r = subprocess.run(cmd, env=env, capture_output=True, timeout=args.timeout,
                           preexec_fn=no_core)
    except subprocess.TimeoutExpired:
        print(f"run_expect_abort: FAIL: {cmd[0]} still running after {args.timeout} s")
        return 1
    stderr = r.stderr.decode(errors="replace")
    stdout = r.stdout.decode(errors="replace")
    how = (f"killed by {signal.Signals(-r.returncode).name}" if r.returncode < 0
           else f"exit status {r.returncode}")
    problems = []
    if r.returncode != -want_sig:
        problems.append(f"{how}, not killed by {args.signal}")
    if not re.search(args.regex, stderr, re.MULTILINE):
        problems.append(f"stderr does not match /{args.regex}/")
    name = os.path.basename(cmd[0])
    if not problems:
        first = next((line for line in stderr.splitlines() if re.search(args.regex, line)), "")
        print(f"run_expect_abort: PASS: {name}: {how}; stderr: {first.strip()}")
        return 0
    print(f"run_expect_abort: FAIL: {name}: " + "; ".join(problems))
    for label, text in (("stdout", stdout), ("stderr", stderr)):
        lines = text.splitlines()
        if lines:
            print(f"--- {label} ({len(lines)} lines, last 60) ---")
            print("\n".join(lines[-60:]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
