#!/usr/bin/env python3
"""Whole-program malloc benchmark suite: every workload under every malloc.

Runs the mbench_* workloads (built from this folder), a Python program, a
g++ compile and, when installed, redis-server driven by redis-benchmark,
under glibc's malloc and under jemalloc, tcmalloc, mimalloc and mmkit's
malloc put in with LD_PRELOAD, and prints a Markdown table of the median
wall time and peak RSS of each (workload, allocator), with geometric means
and ratios. Standard library only.

  python3 bench/malloc/run_suite.py --bin-dir DIR [--mmkit PATH] [--reps N]
      [--quick] [--only w1,w2] [--allocators a,b] [--json OUT]

How it measures:
  - Runs are interleaved: each repetition runs each workload under every
    allocator, starting from a different allocator each time, so slow
    drifts and bursts of noise hit all of them alike. One process at a time.
  - Wall time is time.perf_counter() around the process. Peak RSS is the
    process's ru_maxrss from wait4. Children are started through
    mbench_spawn (DIR/mbench_spawn), which reports the program's own
    ru_maxrss: a child forked straight from this script would inherit this
    script's RSS as its floor (Linux charges the pre-exec mm's high-water
    mark). Without mbench_spawn, os.wait4 on the child is used, and the
    table says so.
  - Each workload prints "checksum ..."; every allocator's checksum must
    equal glibc's (any mismatch or failed run is reported loudly, and the
    exit status is 1). Lines "metric NAME VALUE" are recorded as extra
    columns (fragmentation's rss_after_phase_kb).
  - Before the runs, each preloaded library is looked for in the
    /proc/self/maps of a workload started the same way
    (MBENCH_SHOW_MAPS=1), and of the Python interpreter: a preload that did
    not take effect is an error, not a column of glibc numbers.
"""
import argparse
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
PEERS = ("glibc", "jemalloc", "tcmalloc", "mimalloc")
# mmkit-unhardened: the same library with MMKIT_HARDENED=0 (plain free
# pointers), to measure what the hardened default costs.
ALLOCATORS = PEERS + ("mmkit", "mmkit-unhardened")
ALLOC_ENV = {"mmkit-unhardened": {"MMKIT_HARDENED": "0"}}
RUN_TIMEOUT_S = 600
SLOW_FLAG = 1.5  # mmkit slower than this times the best peer is flagged
REDIS_REQUESTS = 40_000  # per test at scale 1

# name -> (kind, what it measures); the order of the table.
WORKLOADS = {
    "churn": ("bin", "single thread, mixed sizes, random replacement"),
    "threads_private": ("bin", "4 threads, private churn"),
    "producer_consumer": ("bin", "cross-thread frees"),
    "realloc_grow": ("bin", "realloc growth and shrink"),
    "big_blocks": ("bin", "64 KiB-64 MiB blocks, touched"),
    "fragmentation": ("bin", "phase change, 10% survivors"),
    "memory_bound": ("bin", "hash table traversal, locality"),
    "cxx_objects": ("bin", "std::map/string/vector/shared_ptr"),
    "py_objects": ("python", "CPython, PYTHONMALLOC=malloc"),
    "compile": ("compile", "g++ -O1 -c compile_me.cc"),
    "redis": ("redis", "redis-server under redis-benchmark"),
}


class Run:
    """One process run: what was measured, or why it failed."""

    def __init__(self):
        self.time_s = None
        self.maxrss_kb = None
        self.checksum = None
        self.metrics = {}
        self.error = None
        self.notes = []
        self.stdout = ""

    def to_json(self):
        return {"time_s": self.time_s, "maxrss_kb": self.maxrss_kb, "checksum": self.checksum,
                "metrics": self.metrics, "error": self.error, "notes": self.notes}


def loud(msg):
    print(f"\n*** ERROR: {msg}\n", file=sys.stderr, flush=True)


def progress(msg):
    print(msg, file=sys.stderr, flush=True)


def find_allocators(mmkit, wanted, notes):
    """name -> library to preload (None for glibc), in table order."""
    libs = {
        "glibc": None,
        "jemalloc": os.path.join(LIBDIR, "libjemalloc.so.2"),
        # The minimal library is the same allocator without the heap
        # profiler and checker; the full one is the fallback.
        "tcmalloc": next((os.path.join(LIBDIR, f) for f in
                          ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4")
                          if os.path.exists(os.path.join(LIBDIR, f))), None),
        "mimalloc": os.path.join(LIBDIR, "libmimalloc.so.2"),
        "mmkit": os.path.abspath(mmkit) if mmkit else None,
        "mmkit-unhardened": os.path.abspath(mmkit) if mmkit else None,
    }
    found = {}
    for name in ALLOCATORS:
        if name not in wanted:
            continue
        lib = libs[name]
        if name == "glibc":
            found[name] = None
        elif name.startswith("mmkit") and not mmkit:
            notes.append(f"{name} omitted: no --mmkit PATH given")
        elif lib is None or not os.path.exists(lib):
            notes.append(f"{name} omitted: {lib or 'its library'} not found")
        else:
            found[name] = lib
    return found


def mapped_paths(maps_text):
    """The real paths of the files named in /proc/PID/maps text."""
    paths = set()
    for line in maps_text.splitlines():
        fields = line.split(None, 5)
        if len(fields) == 6 and fields[5].startswith("/"):
            paths.add(os.path.realpath(fields[5].strip()))
    return paths


class Suite:
    def __init__(self, args):
        self.bin_dir = os.path.abspath(args.bin_dir)
        self.scale = args.scale
        self.python = args.python
        self.spawn = os.path.join(self.bin_dir, "mbench_spawn")
        if not os.access(self.spawn, os.X_OK):
            self.spawn = None
        self.gxx = shutil.which("g++")
        self.redis_server = shutil.which("redis-server") or self._redis_server_alias()
        self.redis_benchmark = shutil.which("redis-benchmark")
        self.alloc_env = {}  # the environment of the allocator being run (ALLOC_ENV)

    def _redis_server_alias(self):
        """Debian's redis-tools ships the server binary as redis-check-rdb,
        which acts as the server when argv[0] names redis-server (the
        redis-server package only adds that link and a system service)."""
        check_rdb = shutil.which("redis-check-rdb")
        if not check_rdb:
            return None
        self._alias_dir = tempfile.TemporaryDirectory(prefix="mbench-redis-bin-")
        link = os.path.join(self._alias_dir.name, "redis-server")
        os.symlink(os.path.realpath(check_rdb), link)
        return link

    # -- running one process ------------------------------------------------

    def measure(self, argv, lib, extra_env=None):
        """Runs argv with `lib` preloaded; a Run with time, peak RSS, output."""
        run = Run()
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        env.update(extra_env or {})
        env.update(self.alloc_env)
        pass_fds = ()
        report_r = None
        if self.spawn:
            report_r, report_w = os.pipe()
            pass_fds = (report_w,)
            cmd = [self.spawn, "--report-fd", str(report_w)]
            cmd += ["--preload", lib] if lib else []
            cmd += ["--"] + argv
        else:
            cmd = argv
            if lib:
                env["LD_PRELOAD"] = lib
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, pass_fds=pass_fds,
                                 start_new_session=True)
            if report_r is not None:
                os.close(report_w)
            timed_out = threading.Event()
            timer = threading.Timer(RUN_TIMEOUT_S, self._kill_group, (p.pid, timed_out))
            timer.start()
            try:
                _, status, usage = os.wait4(p.pid, 0)
            except BaseException:  # Ctrl-C: the child is in a session of its own
                self._kill_group(p.pid)
                p.wait()
                raise
            run.time_s = time.perf_counter() - start
            timer.cancel()
            p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
            run.maxrss_kb = usage.ru_maxrss
            if report_r is not None:
                report = os.read(report_r, 4096).decode()
                os.close(report_r)
                m = re.search(r"maxrss_kb=(\d+)", report)
                if m:
                    run.maxrss_kb = int(m.group(1))
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode(errors="replace")
            stderr = err.read().decode(errors="replace")
        self._parse_output(run, stdout)
        if timed_out.is_set():
            run.error = f"killed after {RUN_TIMEOUT_S} s"
        elif p.returncode != 0:
            run.error = f"exit status {p.returncode}: {stderr.strip()[-500:]}"
        elif "cannot be preloaded" in stderr:
            run.error = f"preload failed: {stderr.strip()[-500:]}"
        run.stdout = stdout
        return run

    @staticmethod
    def _kill_group(pid, flag=None):
        if flag:
            flag.set()
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @staticmethod
    def _parse_output(run, stdout):
        sums = []
        for line in stdout.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0] == "checksum":
                sums.append(fields[1])
            elif len(fields) == 3 and fields[0] == "metric":
                try:
                    run.metrics[fields[1]] = float(fields[2])
                except ValueError:
                    pass
        run.checksum = " ".join(sums) if sums else None

    # -- the workloads --------------------------------------------------------

    def skip_reason(self, name):
        kind = WORKLOADS[name][0]
        if kind == "bin" and not os.access(self.binary(name), os.X_OK):
            return f"{self.binary(name)} not found (build bench/malloc first)"
        if kind == "compile" and not self.gxx:
            return "g++ not found"
        if kind == "redis" and not (self.redis_server and self.redis_benchmark):
            return ("redis-server / redis-benchmark not installed "
                    "(Debian package redis-tools)")
        return None

    def binary(self, name):
        return os.path.join(self.bin_dir, "mbench_" + name)

    def run(self, name, lib):
        kind = WORKLOADS[name][0]
        scale = f"{self.scale:g}"
        if kind == "bin":
            return self.measure([self.binary(name), scale], lib)
        if kind == "python":
            return self.measure(
                [self.python, os.path.join(HERE, "py_objects.py"), scale], lib,
                {"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"})
        if kind == "compile":
            return self.run_compile(lib)
        return self.run_redis(lib)

    def run_compile(self, lib):
        fd, obj = tempfile.mkstemp(prefix="mbench-compile-", suffix=".o", dir="/tmp")
        os.close(fd)
        try:
            run = self.measure([self.gxx, "-std=c++20", "-O1", "-c",
                                os.path.join(HERE, "compile_me.cc"), "-o", obj], lib)
            if not run.error:
                with open(obj, "rb") as f:
                    run.checksum = "sha256:" + hashlib.sha256(f.read()).hexdigest()[:16]
        finally:
            os.unlink(obj)
        return run

    def run_redis(self, lib):
        """Server under `lib`; the client's wall time, the server's VmHWM."""
        run = Run()
        with socket.socket() as s:  # a free port
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        server_env = dict(env, **self.alloc_env, **({"LD_PRELOAD": lib} if lib else {}))
        with tempfile.TemporaryDirectory(prefix="mbench-redis-") as workdir:
            server = subprocess.Popen(
                [self.redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--dir", workdir],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=server_env,
                start_new_session=True)
            try:
                self._redis_session(run, server, port, lib, env)
            finally:
                if server.poll() is None:
                    server.terminate()
                    try:
                        server.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        server.kill()
                        server.wait()
        return run

    def _redis_session(self, run, server, port, lib, client_env):
        deadline = time.monotonic() + 20
        while True:
            if server.poll() is not None:
                run.error = f"redis-server exited with status {server.returncode}"
                return
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    run.error = "redis-server did not start listening"
                    return
                time.sleep(0.05)
        with open(f"/proc/{server.pid}/maps") as f:
            paths = mapped_paths(f.read())
        if lib and os.path.realpath(lib) not in paths:
            run.error = f"preload of {lib} not seen in redis-server's maps"
            return
        if not lib and any("libjemalloc" in p for p in paths):
            run.notes.append("redis-server links libjemalloc itself: its glibc column is jemalloc")

        n = max(1000, round(REDIS_REQUESTS * self.scale))
        start = time.perf_counter()
        client = subprocess.run(
            [self.redis_benchmark, "-h", "127.0.0.1", "-p", str(port), "-q", "-n", str(n),
             "-t", "set,get,lpush,lpop", "-d", "100"],
            capture_output=True, text=True, env=client_env, timeout=RUN_TIMEOUT_S)
        run.time_s = time.perf_counter() - start
        with open(f"/proc/{server.pid}/status") as f:
            m = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M)
        run.maxrss_kb = int(m.group(1)) if m else None
        if client.returncode != 0:
            run.error = f"redis-benchmark exit status {client.returncode}: {client.stderr[-500:]}"
            return
        tests = []
        for line in re.split(r"[\r\n]+", client.stdout):
            m = re.match(r"\s*([A-Z_]+): ([\d.]+) requests per second", line)
            if m:
                tests.append(m.group(1))
                run.metrics[f"rps_{m.group(1)}"] = float(m.group(2))
        run.checksum = "tests:" + ",".join(sorted(set(tests)))

    # -- is the preload in? ---------------------------------------------------

    def verify_preload(self, name, lib, workloads):
        """None if `lib` shows up in the maps of the processes we start."""
        checks = []
        binary = next((self.binary(w) for w in workloads if WORKLOADS[w][0] == "bin"), None)
        if binary:
            checks.append(("workload", [binary], {"MBENCH_SHOW_MAPS": "1"}))
        if "py_objects" in workloads:
            checks.append(("python", [self.python, "-c",
                                      "print(open('/proc/self/maps').read())"], {}))
        if not checks:
            checks.append(("cat", ["cat", "/proc/self/maps"], {}))
        for what, argv, env in checks:
            run = self.measure(argv, lib, env)
            if run.error:
                return f"{what} check failed: {run.error}"
            if os.path.realpath(lib) not in mapped_paths(run.stdout):
                return f"{lib} is not in the maps of a {what} started with it preloaded"
        return None


# -- the report ----------------------------------------------------------------

def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def fmt_time(t):
    return "-" if t is None else f"{t:.3f}"


def fmt_mib(kb):
    return "-" if kb is None else f"{kb / 1024:.1f}"


def median_of(runs, attr):
    values = [getattr(r, attr) for r in runs if not r.error and getattr(r, attr) is not None]
    return statistics.median(values) if values else None


def report(suite, args, allocs, workloads, results, notes, errors):
    lines = []
    out = lines.append
    out("Command: `python3 " + " ".join(shlex.quote(a) for a in
                                        [os.path.relpath(sys.argv[0])] + sys.argv[1:]) + "`")
    out("")
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    out(f"{time.strftime('%Y-%m-%d %H:%M:%S')}, {os.uname().release}, {os.cpu_count()} CPUs, "
        f"load average {load}; scale {args.scale:g}, {args.reps} repetition(s), "
        "median of the repetitions")
    out("")
    for a, lib in allocs.items():
        out(f"- {a}: {lib or 'no preload'}")
    out(f"- python: {suite.python} (PYTHONMALLOC=malloc); g++: {suite.gxx or 'none'}")
    if not suite.spawn:
        notes.append("mbench_spawn not found: peak RSS includes the runner's own RSS as a floor")
    for n in notes:
        out(f"- note: {n}")
    out("")

    med_t = {w: {a: median_of(results[w][a], "time_s") for a in allocs} for w in workloads}
    med_r = {w: {a: median_of(results[w][a], "maxrss_kb") for a in allocs} for w in workloads}

    names = list(allocs)
    out("| workload | " + " | ".join(f"{a} s" for a in names) + " | "
        + " | ".join(f"{a} MiB" for a in names) + " |")
    out("|---|" + "--:|" * (2 * len(names)))
    for w in workloads:
        times = [t for t in med_t[w].values() if t is not None]
        best = min(times) if times else None
        cells = [("**" + fmt_time(med_t[w][a]) + "**") if med_t[w][a] == best and best is not None
                 else fmt_time(med_t[w][a]) for a in names]
        cells += [fmt_mib(med_r[w][a]) for a in names]
        out(f"| {w} | " + " | ".join(cells) + " |")

    # Geometric means over the workloads every allocator completed.
    complete = [w for w in workloads
                if all(med_t[w][a] and med_r[w][a] for a in names)]
    geo_t = {a: geomean([med_t[w][a] for w in complete]) for a in names} if complete else {}
    geo_r = {a: geomean([med_r[w][a] for w in complete]) for a in names} if complete else {}
    if complete:
        out("| **geomean** | " + " | ".join(fmt_time(geo_t[a]) for a in names) + " | "
            + " | ".join(fmt_mib(geo_r[a]) for a in names) + " |")
        peers = [a for a in names if a in PEERS]
        best_peer = min(geo_t[a] for a in peers) if peers else None
        cells = [f"{geo_t[a] / best_peer:.2f}x" if best_peer else "-" for a in names]
        cells += [f"{geo_r[a] / geo_r['glibc']:.2f}x" if "glibc" in geo_r else "-" for a in names]
        out("| **ratio** | " + " | ".join(cells) + " |")
        out("")
        out("Ratio row: time geomean / the best peer's time geomean (best of "
            f"{', '.join(peers)}); RSS geomean / glibc's. Fastest per row in bold.")
        if len(complete) < len(workloads):
            out(f"Geomeans over {', '.join(complete)} only (the others lack a result).")
    else:
        out("")
        out("No workload completed under every allocator: no geomeans.")

    if complete and "mmkit" in names and "mmkit-unhardened" in names:
        out("")
        out(f"Hardened free pointers (the default) against MMKIT_HARDENED=0: time geomean "
            f"{geo_t['mmkit'] / geo_t['mmkit-unhardened']:.3f}x.")

    # Extra metrics (fragmentation's RSS after its phase change, redis's rps).
    metric_rows = []
    for w in workloads:
        metric_names = sorted({m for a in names for r in results[w][a] for m in r.metrics})
        for m in metric_names:
            cells = []
            for a in names:
                vals = [r.metrics[m] for r in results[w][a] if m in r.metrics and not r.error]
                cells.append(f"{statistics.median(vals):.0f}" if vals else "-")
            metric_rows.append(f"| {w} | {m} | " + " | ".join(cells) + " |")
    if metric_rows:
        out("")
        out("| workload | metric | " + " | ".join(names) + " |")
        out("|---|---|" + "--:|" * len(names))
        lines.extend(metric_rows)

    # mmkit against the best peer, per workload.
    flags = []
    if "mmkit" in names:
        for w in workloads:
            peer_times = {a: med_t[w][a] for a in names if a in PEERS and med_t[w][a]}
            if med_t[w]["mmkit"] and peer_times:
                best = min(peer_times, key=peer_times.get)
                ratio = med_t[w]["mmkit"] / peer_times[best]
                if ratio > SLOW_FLAG:
                    flags.append(f"{w}: mmkit {ratio:.2f}x the time of {best}")
        out("")
        if flags:
            out(f"**mmkit slower than {SLOW_FLAG}x the best peer:**")
            lines.extend(f"- {f}" for f in flags)
        else:
            out(f"mmkit is within {SLOW_FLAG}x of the best peer on every workload.")

    # How noisy were the repetitions?
    if args.reps > 1:
        spread = []
        for w in workloads:
            for a in names:
                ts = [r.time_s for r in results[w][a] if not r.error and r.time_s]
                if len(ts) > 1:
                    spread.append((max(ts) / min(ts) - 1, w, a))
        if spread:
            s, w, a = max(spread)
            out("")
            out(f"Largest spread between repetitions: {100 * s:.0f}% ({w}, {a}).")

    run_notes = sorted({f"{w}: {n}" for w in workloads for a in names
                        for r in results[w][a] for n in r.notes})
    if run_notes or errors:
        out("")
    for n in run_notes:
        out(f"- note: {n}")
    for e in errors:
        out(f"- **ERROR**: {e}")
    return "\n".join(lines), {"median_time_s": med_t, "median_maxrss_kb": med_r,
                              "geomean_time_s": geo_t, "geomean_maxrss_kb": geo_r,
                              "geomean_workloads": complete, "mmkit_flags": flags}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin-dir", required=True, help="where mbench_* were built")
    p.add_argument("--mmkit", help="libmmkit-malloc.so to preload as the 'mmkit' column")
    p.add_argument("--reps", type=int, help="repetitions (default 3; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="scale 0.1 and one repetition")
    p.add_argument("--scale", type=float, help="work per workload (default 1; 0.1 with --quick)")
    p.add_argument("--only", help="comma-separated workloads: " + ",".join(WORKLOADS))
    p.add_argument("--allocators", help="comma-separated: " + ",".join(ALLOCATORS))
    p.add_argument("--python", help="interpreter for py_objects (default /usr/bin/python3, "
                   "else this one)")
    p.add_argument("--json", help="write every run and the medians here")
    args = p.parse_args()
    args.reps = args.reps or (1 if args.quick else 3)
    args.scale = args.scale or (0.1 if args.quick else 1.0)
    if args.reps < 1 or args.scale <= 0:
        p.error("--reps and --scale must be positive")
    if not args.python:
        args.python = ("/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK)
                       else os.path.realpath(sys.executable))
    for opt, known in (("only", WORKLOADS), ("allocators", ALLOCATORS)):
        value = getattr(args, opt)
        chosen = [x for x in value.split(",") if x] if value else list(known)
        unknown = [x for x in chosen if x not in known]
        if unknown:
            p.error(f"--{opt}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
        setattr(args, opt, chosen)
    return args


def main():
    args = parse_args()
    suite = Suite(args)
    notes, errors = [], []

    allocs = find_allocators(args.mmkit, args.allocators, notes)
    workloads = []
    for w in WORKLOADS:
        if w in args.only:
            reason = suite.skip_reason(w)
            if reason:
                notes.append(f"{w} skipped: {reason}")
            else:
                workloads.append(w)
    if not allocs or not workloads:
        sys.exit("nothing to run: " + "; ".join(notes))

    for a, lib in list(allocs.items()):
        if lib:
            problem = suite.verify_preload(a, lib, workloads)
            if problem:
                errors.append(f"{a}: preload not in effect: {problem}")
                loud(errors[-1] + f" (column {a} dropped)")
                del allocs[a]
            else:
                progress(f"preload check: {a} ({lib}) is mapped")

    names = list(allocs)
    results = {w: {a: [] for a in names} for w in workloads}
    for rep in range(args.reps):
        for i, w in enumerate(workloads):
            k = (rep + i) % len(names)
            for a in names[k:] + names[:k]:
                suite.alloc_env = ALLOC_ENV.get(a, {})
                run = suite.run(w, allocs[a])
                results[w][a].append(run)
                if run.error:
                    errors.append(f"{w} under {a} (repetition {rep + 1}): {run.error}")
                    loud(errors[-1])
                else:
                    progress(f"[{rep + 1}/{args.reps}] {w:18} {a:9} {run.time_s:8.3f} s "
                             f"{run.maxrss_kb / 1024:9.1f} MiB  {run.checksum}")

    # Every allocator's checksum against glibc's (or, without glibc, the first one's).
    for w in workloads:
        ref_alloc = "glibc" if "glibc" in names else names[0]
        ref_sums = {r.checksum for r in results[w][ref_alloc] if not r.error}
        if len(ref_sums) > 1:
            errors.append(f"{w}: {ref_alloc}'s checksums differ between repetitions: {ref_sums}")
            loud(errors[-1])
        if not ref_sums:
            continue
        ref = sorted(ref_sums)[0]
        for a in names:
            for rep, r in enumerate(results[w][a]):
                if not r.error and r.checksum != ref:
                    errors.append(f"{w}: CHECKSUM MISMATCH under {a} (repetition {rep + 1}): "
                                  f"{r.checksum} != {ref_alloc}'s {ref}")
                    loud(errors[-1])

    table, summary = report(suite, args, allocs, workloads, results, notes, errors)
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"argv": sys.argv, "scale": args.scale, "reps": args.reps,
                       "allocators": allocs, "workloads": workloads, "notes": notes,
                       "errors": errors,
                       "runs": {w: {a: [r.to_json() for r in results[w][a]] for a in names}
                                for w in workloads},
                       **summary}, f, indent=1)
    if errors:
        print(f"\n{len(errors)} error(s): see above.", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
