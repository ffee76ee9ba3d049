#!/usr/bin/env python3
"""Runs real programs, unmodified, with and without LD_PRELOAD=<lib> and
requires the same stdout and exit status.

Why: unit checks of the malloc API cannot show everything a drop-in
allocator breaks; an interpreter, a sort that spills and merges with
threads, git (many processes, a threaded pack-objects) and a C++ compiler
can. The programs:
  python3  objects.py (millions of small objects, PYTHONMALLOC=malloc so
           each object is a malloc/free of its own);
  sort     a few hundred thousand generated lines, with a small buffer and
           two threads (temporary files and a merge);
  git      a fresh repository of a few hundred commits built with
           fast-import, then log, diff, rev-list, gc and fsck;
  g++      -fsyntax-only and -O1 -S of a small file using <map>, <string>,
           <vector> and <algorithm>.
Each preloaded run also gets MMKIT_SHOW_STATS=1 and each command must print
a line starting with "mmkit-malloc:" on stderr: the proof that the preload
took effect. A command may close its stderr before exiting (sort does, as
every coreutils program: gnulib's close_stdout); if the library demonstrably
prints statistics (`python3 -c pass` shows them), such a command is instead
checked with LD_TRACE_LOADED_OBJECTS=1 (the dynamic loader lists the
preloaded library) and gets a note. (A library that writes its statistics to
a duplicate of fd 2 taken at startup shows them even there.) Stdout and the
exit status must
match exactly; stderr is compared after removing the statistics blocks and a
difference is only reported (--strict-stderr makes it fail).

  real_programs.py --lib PATH/libmmkit-malloc.so     # the real test
  real_programs.py --lib OTHER.so --no-marker        # another allocator
  real_programs.py                                   # baseline only: every
                                                     # program twice, same output

A program whose command is not installed is skipped with a note. The host's
git configuration, locale and time zone are kept out (HOME and TMPDIR in a
fresh temporary directory, GIT_CONFIG_NOSYSTEM=1, LC_ALL=C, TZ=UTC).
Standard library only. Exit status 1 on any mismatch.
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MARKER = re.compile(r"^mmkit-malloc:", re.MULTILINE)
# Lines of the MMKIT_SHOW_STATS block after its "mmkit-malloc:" line:
# Linux's slabinfo (header, "# name" legend, one line per cache) and
# buddyinfo ("Node 0, zone Normal ..."), and blank lines.
STATS_LINE = re.compile(
    r"^(slabinfo - version:.*|# ?name\b.*|\S+(\s+\d+){5}\s*:.*|Node \d+, zone\s.*|\s*)$")


def strip_stats(text):
    """stderr without the mmkit-malloc statistics blocks."""
    out, in_block = [], False
    for line in text.splitlines():
        if line.startswith("mmkit-malloc"):
            in_block = True
            continue
        if in_block and STATS_LINE.match(line):
            continue
        in_block = False
        out.append(line)
    return "\n".join(out)


# --- the programs ---------------------------------------------------------------------------
# Each has: name, commands it needs, prepare(shared_dir) writing its inputs
# once, and steps(shared_dir, run_dir) -> [(argv, cwd, stdin_path, extra_env)]
# for one run (run_dir is fresh per run: git's repository changes).

class Python:
    name = "python3"
    needs = []  # this interpreter

    def prepare(self, shared):
        pass

    def steps(self, shared, run_dir):
        env = {"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        return [([sys.executable, os.path.join(HERE, "objects.py")], run_dir, None, env)]


class Sort:
    name = "sort"
    needs = ["sort"]
    lines = 300000

    def prepare(self, shared):
        rng = random.Random(1234)
        words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
                 "kappa", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau"]
        with open(os.path.join(shared, "sort-input.txt"), "w") as f:
            for i in range(self.lines):
                w = rng.choice(words) + rng.choice(words)[: rng.randint(0, 5)]
                f.write(f"{w} {rng.randint(0, 10**9)} {rng.getrandbits(48):012x} {i % 977}\n")

    def steps(self, shared, run_dir):
        inp = os.path.join(shared, "sort-input.txt")
        # A 2 MiB buffer for ~13 MB of input: sorted runs in temporary files, merged.
        return [(["sort", "--parallel=2", "-S", "2M", "-T", run_dir, inp], run_dir, None, {}),
                (["sort", "-t", " ", "-k2,2n", "-k3,3r", "-u", inp], run_dir, None, {})]


class Git:
    name = "git"
    needs = ["git"]
    commits = 300

    def prepare(self, shared):
        # A fast-import stream: fixed names and dates, so the hashes are fixed.
        rng = random.Random(99)
        files = {f"src/file{n:02d}.txt": "" for n in range(40)}
        out = []
        for c in range(self.commits):
            when = 1700000000 + c * 3600
            changed = rng.sample(sorted(files), 3)
            if c % 25 == 0:
                changed.append(f"doc/note{c:03d}.md")
            body = []
            for path in changed:
                text = files.get(path, "")
                text += "".join(f"line {c}.{k} {rng.getrandbits(32):08x}\n"
                                for k in range(rng.randint(1, 12)))
                files[path] = text
                data = text.encode()
                body.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
            msg = f"commit {c}: touch {', '.join(changed)}\n".encode()
            out.append(b"commit refs/heads/main\n")
            out.append(f"committer Test <test@example.com> {when} +0000\n".encode())
            out.append(f"data {len(msg)}\n".encode() + msg)  # parent: the branch's tip
            out += body
            out.append(b"\n")
        with open(os.path.join(shared, "git-stream"), "wb") as f:
            f.write(b"".join(out))

    def steps(self, shared, run_dir):
        repo = os.path.join(run_dir, "repo")
        git = ["git", "-c", "user.name=x", "-c", "user.email=y", "-c", "gc.auto=0",
               "-c", "core.pager=cat", "-c", "pack.threads=2", "-c", "init.defaultBranch=main"]
        return [
            (git + ["init", "-q", repo], run_dir, None, {}),
            (git + ["fast-import", "--quiet"], repo, os.path.join(shared, "git-stream"), {}),
            (git + ["log", "--oneline"], repo, None, {}),
            (git + ["log", "--stat", "--format=%H %s", "HEAD~50..HEAD"], repo, None, {}),
            (git + ["diff", "HEAD~120", "HEAD"], repo, None, {}),
            (git + ["gc", "--quiet", "--prune=now"], repo, None, {}),
            (git + ["rev-list", "--objects", "--all"], repo, None, {}),
            (git + ["fsck", "--no-progress", "--strict"], repo, None, {}),
            (git + ["rev-list", "--count", "HEAD"], repo, None, {}),
        ]


class Gxx:
    name = "g++"
    needs = ["g++"]
    source = r"""
#include <algorithm>
#include <map>
#include <string>
#include <vector>

// Enough templates to make the compiler allocate: maps of vectors of strings.
template <class K, class V>
std::map<V, std::vector<K>> invert(const std::map<K, V>& m) {
  std::map<V, std::vector<K>> out;
  for (const auto& [k, v] : m) out[v].push_back(k);
  for (auto& [v, ks] : out) std::sort(ks.begin(), ks.end());
  return out;
}

int count_words(const std::vector<std::string>& words) {
  std::map<std::string, int> freq;
  for (const auto& w : words) ++freq[w];
  auto inv = invert(freq);
  std::vector<std::pair<int, std::string>> top;
  for (const auto& [n, ws] : inv)
    for (const auto& w : ws) top.emplace_back(n, w);
  std::stable_sort(top.begin(), top.end(), [](auto& a, auto& b) { return a.first > b.first; });
  return top.empty() ? 0 : top.front().first + static_cast<int>(inv.size());
}

std::string join(std::vector<std::string> v) {
  std::reverse(v.begin(), v.end());
  std::string s;
  for (auto& x : v) s += x + ",";
  return s;
}
"""

    def prepare(self, shared):
        with open(os.path.join(shared, "prog.cc"), "w") as f:
            f.write(self.source)

    def steps(self, shared, run_dir):
        src = os.path.join(shared, "prog.cc")
        return [(["g++", "-std=c++20", "-fsyntax-only", src], shared, None, {}),
                (["g++", "-std=c++20", "-O1", "-frandom-seed=mmkit", "-S", "-o", "-", src],
                 shared, None, {})]


PROGRAMS = [Python(), Sort(), Git(), Gxx()]


# --- running -------------------------------------------------------------------------------
class Run:
    def __init__(self):
        self.stdout = []    # per step
        self.status = []    # per step
        self.stderr = []    # per step
        self.seconds = 0.0
        self.timed_out = None


def run_steps(steps, env, timeout):
    r = Run()
    t0 = time.monotonic()
    for argv, cwd, stdin_path, extra in steps:
        e = dict(env)
        e.update(extra)
        stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        try:
            p = subprocess.run(argv, cwd=cwd, env=e, stdin=stdin, capture_output=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            r.timed_out = " ".join(argv)
            break
        finally:
            if stdin_path:
                stdin.close()
        r.stdout.append(p.stdout)
        r.status.append(p.returncode)
        r.stderr.append(p.stderr.decode(errors="replace"))
        if p.returncode != 0:
            break  # later steps depend on this one
    r.seconds = time.monotonic() - t0
    return r


def first_difference(a, b):
    """A short description of where two byte strings differ."""
    la, lb = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            return f"line {i + 1}: {x[:80]!r} vs {y[:80]!r}"
    return f"{len(la)} vs {len(lb)} lines"


def preloaded_by_loader(program, env, lib):
    """Does ld.so load `lib` into `program` (an ELF executable) under `env`?"""
    path = shutil.which(program, path=env.get("PATH"))
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return False
    except (OSError, TypeError):
        return False
    e = dict(env)
    e["LD_TRACE_LOADED_OBJECTS"] = "1"  # list the objects, do not run
    r = subprocess.run([path], env=e, capture_output=True, timeout=60)
    return r.returncode == 0 and os.path.realpath(lib) in {
        os.path.realpath(w) for w in r.stdout.decode(errors="replace").split() if w.startswith("/")}


def stats_probe(env):
    """Does a trivial preloaded process (python3 -c pass) print the statistics?"""
    r = subprocess.run([sys.executable, "-c", "pass"], env=env, capture_output=True, timeout=60)
    return bool(MARKER.search(r.stderr.decode(errors="replace")))


def compare(steps, base, other, other_label, other_env, check_marker, stats_work, strict_stderr):
    """Problems found (fatal) and notes (not) comparing two runs."""
    problems, notes = [], []
    for label, r in (("baseline", base), (other_label, other)):
        if r.timed_out:
            problems.append(f"{label}: timed out in `{r.timed_out}`")
    if problems:
        return problems, notes
    if any(base.status):
        i = next(k for k, s in enumerate(base.status) if s)
        problems.append(f"baseline itself failed: `{' '.join(steps[i][0])}` exit {base.status[i]}: "
                        f"{base.stderr[i].strip()[:300]}")
        return problems, notes
    if other.status != base.status:
        i = len(other.status) - 1
        problems.append(f"exit status {other.status} vs baseline {base.status} "
                        f"(`{' '.join(steps[i][0])}`: {strip_stats(other.stderr[i]).strip()[:300]})")
    for i, (a, b) in enumerate(zip(base.stdout, other.stdout)):
        if a != b:
            problems.append(f"stdout of `{' '.join(steps[i][0])}` differs at "
                            f"{first_difference(a, b)}")
    if check_marker:
        for i, err in enumerate(other.stderr):
            if MARKER.search(err):
                continue
            # No statistics: either the preload did not take effect, or the
            # program closed fd 2 before exiting (coreutils' close_stdout()
            # does: sort closes 0, 1 and 2). Ask the dynamic loader.
            cmd = " ".join(steps[i][0])
            if stats_work and preloaded_by_loader(steps[i][0][0], other_env,
                                                  other_env["LD_PRELOAD"]):
                notes.append(f"no 'mmkit-malloc:' line on stderr of `{cmd}` (it closes stderr "
                             f"before exit?); LD_TRACE_LOADED_OBJECTS shows the preload")
            else:
                problems.append(f"no 'mmkit-malloc:' line on stderr of `{cmd}`: preload not in "
                                f"effect" + ("" if stats_work else
                                             " (and python3 -c pass shows no statistics either)"))
    for i, (a, b) in enumerate(zip(base.stderr, other.stderr)):
        sa, sb = strip_stats(a).strip(), strip_stats(b).strip()
        if sa != sb:
            msg = f"stderr of `{' '.join(steps[i][0])}` differs: {sb[:200]!r} vs {sa[:200]!r}"
            (problems if strict_stderr else notes).append(msg)
    return problems, notes


def base_env(home):
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith(("MMKIT_", "PYTHON", "GIT_", "LC_"))}
    env.update({"LC_ALL": "C", "LANG": "C", "TZ": "UTC", "HOME": home,
                "XDG_CONFIG_HOME": os.path.join(home, ".config"), "TMPDIR": home,
                "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.path.join(home, ".gitconfig"),
                "GIT_AUTHOR_DATE": "1700000000 +0000", "GIT_COMMITTER_DATE": "1700000000 +0000"})
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", help="the allocator to preload (absent: baseline runs only)")
    ap.add_argument("--no-marker", action="store_true",
                    help="do not require the mmkit-malloc: stats line (another allocator)")
    ap.add_argument("--strict-stderr", action="store_true",
                    help="a stderr difference (stats blocks removed) is a failure")
    ap.add_argument("--programs", help="comma-separated subset of: " +
                    ", ".join(p.name for p in PROGRAMS))
    ap.add_argument("--timeout", type=float, default=300, help="seconds per command")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()

    if args.lib:
        args.lib = os.path.abspath(args.lib)
        if not os.path.isfile(args.lib):
            print(f"real_programs: FAIL: {args.lib} does not exist")
            return 1
    wanted = set(args.programs.split(",")) if args.programs else None
    tmp = tempfile.mkdtemp(prefix="mmkit-real-programs-")
    failures = 0
    try:
        home = os.path.join(tmp, "home")
        os.makedirs(home)
        env = base_env(home)
        other_env = dict(env)
        if args.lib:
            other_env["LD_PRELOAD"] = args.lib
            if not args.no_marker:
                other_env["MMKIT_SHOW_STATS"] = "1"
        mode = (f"LD_PRELOAD={args.lib}" + (" (no marker check)" if args.no_marker else "")
                if args.lib else "baseline twice (no --lib)")
        check_marker = bool(args.lib) and not args.no_marker
        stats_work = check_marker and stats_probe(other_env)
        if check_marker:
            mode += (", statistics shown by python3 -c pass" if stats_work else
                     ", NO statistics from python3 -c pass")
        print(f"real_programs: {mode}")
        for prog in PROGRAMS:
            if wanted is not None and prog.name not in wanted:
                continue
            missing = [c for c in prog.needs if shutil.which(c, path=env.get("PATH")) is None]
            if missing:
                print(f"SKIP {prog.name}: {', '.join(missing)} not installed")
                continue
            shared = os.path.join(tmp, prog.name.replace("+", "x"))
            os.makedirs(shared)
            prog.prepare(shared)
            runs = []
            for label in ("baseline", "preload" if args.lib else "baseline-again"):
                run_dir = os.path.join(shared, label)
                os.makedirs(run_dir)
                steps = prog.steps(shared, run_dir)
                runs.append(run_steps(steps, other_env if label == "preload" else env,
                                      args.timeout))
            base, other = runs
            problems, notes = compare(steps, base, other,
                                      "preload" if args.lib else "second baseline", other_env,
                                      check_marker, stats_work, args.strict_stderr)
            out_bytes = sum(len(s) for s in base.stdout)
            timing = f"{base.seconds:.1f} s vs {other.seconds:.1f} s"
            if problems:
                failures += 1
                print(f"FAIL {prog.name}: " + "; ".join(problems) + f" ({timing})")
            else:
                what = "identical stdout and exit status" if args.lib else "deterministic"
                print(f"PASS {prog.name}: {len(steps)} commands, {what}, {out_bytes} bytes of "
                      f"stdout ({timing})")
            for n in notes:
                print(f"  note: {n}")
    finally:
        if args.keep:
            print(f"real_programs: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"real_programs: {'FAIL' if failures else 'PASS'} ({failures} program(s) differ)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
