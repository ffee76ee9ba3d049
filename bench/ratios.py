#!/usr/bin/env python3
"""Markdown tables of mmkit_bench results and the ratios the targets are set on.

Reads `mmkit_bench --benchmark_format=json` output (a file argument, or stdin)
and prints two tables: every benchmark in registration order (median real
time, its range, median CPU time, the counters), then the ratios, each with
its target and a verdict:

  order0_pcp / peer aligned 4 KiB pair   < 1: mmkit is faster than that peer
  order0_nopcp / order0_pcp              <= 3: the zone-lock path within 3x
  order0_nopcp_nomerge / order0_pcp      the lock path without split/merge
  zone_lock_pair / order0_pcp            zone->lock taken twice: the floor of
                                         any unbound pair
  order0_pcp_64GiB / order0_pcp_1GiB     <= 1.25: order-0 cost flat in RAM
                                         (1.25 is the noise allowance)
  boot/64GiB                             < 1 s
  order0_pcp/repeat / order0_pcp         drift over the run (no target)

and, when the slab benchmarks ran, a third table, each mmkit number against
the FASTEST peer of the same size (the smallest median among glibc,
jemalloc, tcmalloc and mimalloc; named in the row):

  slab/cache_pair/SIZE / peer malloc_pair/SIZE     <= 1.0
  slab/kmalloc_pair/SIZE / peer malloc_pair/SIZE   <= 1.0
  slab/batch/SIZE / peer batch/SIZE                <= 1.2 (per object)
  slab/remote_free / peer remote_free              <= 1.0, on real time even
      with --cpu (UseRealTime): both threads are pinned to their own host CPU
      and spin when the ring is full or empty, so their CPU times say how
      long they ran, not how much work they did
  slab/colour/off / slab/colour/on               > 1: colouring helps (for
      64 slabs, and for 512 slabs when slab/colour/*/512 ran)

and, when the swap I/O benchmarks ran, a fourth: mmkit's swap throughput as
a fraction of raw pwrite/pread of the same kind of file (raw time per page /
mmkit's time per page):

  swap/out against swap/raw_pwrite                >= 0.8
  swap/in against swap/raw_pread                  >= 0.8
  swap/in_readahead against swap/raw_pread        >= 0.8

and, when the page-cache read benchmarks ran, a fifth: mmkit's read
throughput against raw pread of the host file that backs mmkit's (raw time
per iteration / mmkit's; both sides move the same bytes an iteration):

  filemap/pread_cached/4KiB against filemap/raw_pread/4KiB   (context)
  filemap/pread_cached/1MiB against filemap/raw_pread/1MiB   (context)
  filemap/read_cold_seq against filemap/raw_pread_seq        >= 0.8
  filemap/pread_cold_random against filemap/raw_pread_random (context)
  filemap/read_cold_seq against filemap/raw_preadv_frames    (context: the
      page cache's own work, over the very preadv it issues into its frames)
  filemap/raw_preadv_frames against filemap/raw_pread_seq    (context: the
      best read_cold_seq could reach against raw_pread_seq)

and, when the zswap benchmarks ran, a sixth: zswap's store and load rates
against its compressor's raw rate on the same pages (raw time per page /
zswap's):

  zswap/store/C/text against zswap/raw_compress/C/text      >= 0.8
  zswap/store/C/random against zswap/raw_compress/C/random  >= 0.8
  zswap/load/C against zswap/raw_decompress/C               >= 0.8
  (C: lz4 and zstd)

Tables are printed only for the benchmarks that ran (--benchmark_filter).

Medians are taken over the repetitions (run with --benchmark_repetitions=N);
when only aggregates were reported, their median is used. order0_pcp in the
peer ratios pools the runs of page_alloc/order0_pcp and its /repeat twin,
which run before and after the peers. Times are real time; with --cpu, the
benchmark thread's CPU time instead (less disturbed by other load on a shared
host), except for benchmarks registered with UseRealTime (the two-CPU one),
which keep real time. With --min the ratio tables use each benchmark's
fastest repetition instead of the median: on a host shared with other
work, the least-disturbed run of each side (the per-benchmark table still
shows medians).

usage: mmkit_bench --benchmark_format=json ... | python3 bench/ratios.py [--cpu] [--min] [FILE]
"""
import json
import statistics
import sys

TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
PEERS = ["glibc", "jemalloc", "tcmalloc", "mimalloc"]
PCP = "page_alloc/order0_pcp"
PCP_RUNS = [PCP, PCP + "/repeat"]
# Benchmark keys that are not user counters.
NON_COUNTERS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type",
    "repetitions", "repetition_index", "threads", "iterations", "real_time", "cpu_time",
    "time_unit", "aggregate_name", "aggregate_unit", "error_occurred", "error_message",
    "label", "items_per_second", "bytes_per_second",
}


def load(stream, use_cpu):
    """(context, {run_name: {"times", "real", "cpu": [ns...], "counters": {name: [values]}, "order"}})."""
    data = json.load(stream)
    runs, medians = {}, {}
    for i, b in enumerate(data.get("benchmarks", [])):
        name = b.get("run_name", b["name"])
        real_only = name.endswith("/real_time")
        name = name.removesuffix("/real_time")
        if b.get("error_occurred"):
            runs.setdefault(name, {"times": [], "real": [], "cpu": [], "counters": {},
                                   "order": b.get("family_index", i)})
            runs[name]["error"] = b.get("error_message", "error")
            continue
        unit = TO_NS[b.get("time_unit", "ns")]
        ns = b["cpu_time" if use_cpu and not real_only else "real_time"] * unit
        real_ns, cpu_ns = b["real_time"] * unit, b["cpu_time"] * unit
        counters = {k: v for k, v in b.items() if k not in NON_COUNTERS and isinstance(v, (int, float))}
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") == "median":
                medians[name] = (ns, real_ns, cpu_ns, counters, b.get("family_index", i))
            continue
        r = runs.setdefault(name, {"times": [], "real": [], "cpu": [], "counters": {},
                                   "order": b.get("family_index", i)})
        r["times"].append(ns)
        r["real"].append(real_ns)
        r["cpu"].append(cpu_ns)
        for k, v in counters.items():
            r["counters"].setdefault(k, []).append(v)
    for name, (ns, real_ns, cpu_ns, counters, i) in medians.items():  # aggregates only
        if name not in runs or not runs[name]["times"]:
            runs[name] = {"times": [ns], "real": [real_ns], "cpu": [cpu_ns],
                          "counters": {k: [v] for k, v in counters.items()}, "order": i}
    return data.get("context", {}), runs


def fmt_time(ns):
    if ns is None:
        return "n/a"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


# The statistic of the ratio tables: the median, or the minimum (--min).
STAT = statistics.median


def median(runs, *names):
    times = [t for n in names if n in runs for t in runs[n]["times"]]
    return STAT(times) if times else None


def ratio_row(label, num, den, target, ok):
    if num is None or den is None or den == 0:
        return f"| {label} | n/a | {target} | missing |"
    r = num / den
    verdict = "" if ok is None else ("met" if ok(r) else "**missed**")
    return f"| {label} | {r:.3g} ({fmt_time(num)} / {fmt_time(den)}) | {target} | {verdict} |"


KMALLOC_SIZES = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192]
BATCH_SIZES = [16, 64, 256, 1024]


def fastest_peer(runs, what, value=None):
    """(peer, value) of the peer with the smallest `value(runs, name)` for peer/<lib>/<what>."""
    value = value or median
    best = None
    for peer in PEERS:
        v = value(runs, f"peer/{peer}/{what}")
        if v is not None and (best is None or v < best[1]):
            best = (peer, v)
    return best or (None, None)


def counter_median(runs, name, counter):
    values = runs.get(name, {}).get("counters", {}).get(counter)
    return statistics.median(values) if values else None


def slab_ratios(runs):
    print("\n| slab ratio (ours / fastest peer) | value (ours / theirs) | target | verdict |")
    print("|---|---:|---|---|")
    at_most = lambda limit: (lambda r: r <= limit)
    for size in KMALLOC_SIZES:
        peer, theirs = fastest_peer(runs, f"malloc_pair/{size}")
        for kind in ("cache_pair", "kmalloc_pair"):
            name = f"slab/{kind}/{size}"
            if name in runs:
                print(ratio_row(f"{kind}/{size} / {peer} malloc_pair/{size}", median(runs, name),
                                theirs, "<= 1.0", at_most(1.0)))
    for size in BATCH_SIZES:
        name = f"slab/batch/{size}"
        if name in runs:
            peer, theirs = fastest_peer(runs, f"batch/{size}")
            print(ratio_row(f"batch/{size} / {peer} batch/{size} (per object)", median(runs, name),
                            theirs, "<= 1.2", at_most(1.2)))
    if "slab/remote_free" in runs:
        real = lambda rs, n: STAT(rs[n]["real"]) if rs.get(n, {}).get("real") else None
        peer, theirs = fastest_peer(runs, "remote_free", real)
        print(ratio_row(f"remote_free / {peer} remote_free (real time)", real(runs, "slab/remote_free"),
                        theirs, "<= 1.0", at_most(1.0)))
    for suffix in ("", "/512"):
        off, on = f"slab/colour/off{suffix}", f"slab/colour/on{suffix}"
        if off in runs or on in runs:
            slabs = counter_median(runs, on, "slabs") or counter_median(runs, off, "slabs")
            sets = counter_median(runs, on, "l1_sets")
            what = f"{slabs:.0f} slabs" if slabs else "slabs"
            if sets:
                what += f", L1 sets {counter_median(runs, off, 'l1_sets') or 0:.0f} -> {sets:.0f}"
            row = ratio_row(f"colour/off{suffix} / colour/on{suffix} (per access; {what})",
                            median(runs, off), median(runs, on), "> 1: colouring helps", None)
            r_off, r_on = median(runs, off), median(runs, on)
            if r_off is not None and r_on:
                row = row.rstrip("|").rstrip() + (" helps |" if r_off / r_on > 1.05 else
                                                  " no measurable effect |")
            print(row)


def swap_ratios(runs):
    print("\n| swap throughput (mmkit / raw) | value (raw time / mmkit time, per page) | target | verdict |")
    print("|---|---:|---|---|")
    at_least = lambda r: r >= 0.8
    for ours, raw in (("swap/out", "swap/raw_pwrite"), ("swap/in", "swap/raw_pread"),
                      ("swap/in_readahead", "swap/raw_pread")):
        if ours in runs or raw in runs:
            print(ratio_row(f"{ours} / {raw}", median(runs, raw), median(runs, ours), ">= 0.8",
                            at_least))


# (mmkit, raw, bytes an iteration, target, test) of the page-cache read table.
FILEMAP_PAIRS = [
    ("filemap/pread_cached/4KiB", "filemap/raw_pread/4KiB", 4 << 10, "(context)", None),
    ("filemap/pread_cached/1MiB", "filemap/raw_pread/1MiB", 1 << 20, "(context)", None),
    ("filemap/read_cold_seq", "filemap/raw_pread_seq", 64 << 20, ">= 0.8", lambda r: r >= 0.8),
    ("filemap/pread_cold_random", "filemap/raw_pread_random", 4 << 10, "(context)", None),
    ("filemap/read_cold_seq", "filemap/raw_preadv_frames", 64 << 20, "(context)", None),
    ("filemap/raw_preadv_frames", "filemap/raw_pread_seq", 64 << 20, "(context: ceiling)", None),
]


def zswap_ratios(runs):
    print("\n| zswap (store/load / raw compressor) | raw | zswap | ratio (raw time / zswap time) "
          "| target | verdict |")
    print("|---|---:|---:|---:|---|---|")
    at_least = lambda r: r >= 0.8
    for comp in ("lz4", "zstd"):
        pairs = [(f"zswap/store/{comp}/{k}", f"zswap/raw_compress/{comp}/{k}") for k in ("text", "random")]
        pairs.append((f"zswap/load/{comp}", f"zswap/raw_decompress/{comp}"))
        for ours, raw in pairs:
            if ours not in runs and raw not in runs:
                continue
            t_ours, t_raw = median(runs, ours), median(runs, raw)
            if t_ours is None or t_raw is None or t_ours == 0:
                print(f"| {ours} / {raw} | {fmt_time(t_raw)} | {fmt_time(t_ours)} | n/a | >= 0.8 | missing |")
                continue
            r = t_raw / t_ours
            print(f"| {ours} / {raw} | {fmt_rate(PAGE, t_raw)} ({fmt_time(t_raw)}) | "
                  f"{fmt_rate(PAGE, t_ours)} ({fmt_time(t_ours)}) | {r:.3g} | >= 0.8 | "
                  f"{'met' if at_least(r) else '**missed**'} |")


PAGE = 4096


def fmt_rate(nbytes, ns):
    if ns is None or ns == 0:
        return "n/a"
    rate = nbytes / (ns / 1e9)
    for unit, scale in (("GiB/s", 1 << 30), ("MiB/s", 1 << 20)):
        if rate >= scale:
            return f"{rate / scale:.3g} {unit}"
    return f"{rate / 1024:.3g} KiB/s"


def filemap_ratios(runs):
    print("\n| page-cache read (mmkit / raw) | raw | mmkit | ratio mmkit / raw (raw time / mmkit time) "
          "| target | verdict |")
    print("|---|---:|---:|---:|---|---|")
    for ours, raw, nbytes, target, ok in FILEMAP_PAIRS:
        if ours not in runs and raw not in runs:
            continue
        t_ours, t_raw = median(runs, ours), median(runs, raw)
        if t_ours is None or t_raw is None or t_ours == 0:
            print(f"| {ours} / {raw} | {fmt_time(t_raw)} | {fmt_time(t_ours)} | n/a | {target} | missing |")
            continue
        r = t_raw / t_ours
        verdict = "" if ok is None else ("met" if ok(r) else "**missed**")
        print(f"| {ours} / {raw} | {fmt_rate(nbytes, t_raw)} ({fmt_time(t_raw)}) | "
              f"{fmt_rate(nbytes, t_ours)} ({fmt_time(t_ours)}) | {r:.3g} | {target} | {verdict} |")


def main():
    global STAT
    args = sys.argv[1:]
    use_cpu = "--cpu" in args
    if "--min" in args:
        STAT = min
    args = [a for a in args if a not in ("--cpu", "--min")]
    stream = open(args[0]) if args else sys.stdin
    context, runs = load(stream, use_cpu)

    loadavg = context.get("load_avg") or []
    load_s = f", load average {' '.join(f'{x:.2f}' for x in loadavg)} at start" if loadavg else ""
    print(f"Host: {context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz{load_s}, "
          f"{context.get('date', '')}; times are medians of "
          f"{'thread CPU time (real time where marked real_time)' if use_cpu else 'real time'}"
          f"{'; ratios use the fastest repetition' if STAT is min else ''}.\n")
    print("| benchmark | real (median) | real min .. max | CPU (median) | runs | counters (median) |")
    print("|---|---:|---:|---:|---:|---|")
    for name, r in sorted(runs.items(), key=lambda kv: kv[1]["order"]):
        if "error" in r and not r["times"]:
            print(f"| {name} | error: {r['error']} | | | 0 | |")
            continue
        real, cpu = r["real"], r["cpu"]
        counters = ", ".join(f"{k}={statistics.median(v):.4g}" for k, v in sorted(r["counters"].items()))
        print(f"| {name} | {fmt_time(statistics.median(real))} | {fmt_time(min(real))} .. "
              f"{fmt_time(max(real))} | {fmt_time(statistics.median(cpu))} | {len(real)} | {counters} |")

    if any(n.startswith(("page_alloc/", "boot/")) or n.endswith(("_aligned_4k", "mmap_4k"))
           for n in runs):
        page_ratios(runs)
    if any(n.startswith("slab/") for n in runs):
        slab_ratios(runs)
    if any(n.startswith("swap/") for n in runs):
        swap_ratios(runs)
    if any(n.startswith("filemap/") for n in runs):
        filemap_ratios(runs)
    if any(n.startswith("zswap/") for n in runs):
        zswap_ratios(runs)


def page_ratios(runs):
    pcp = median(runs, *PCP_RUNS)
    print("\n| ratio | value (ours / theirs) | target | verdict |")
    print("|---|---:|---|---|")
    for peer in PEERS:
        print(ratio_row(f"order0_pcp / {peer}_aligned_4k", pcp, median(runs, f"peer/{peer}_aligned_4k"),
                        "< 1", lambda r: r < 1))
    print(ratio_row("order0_pcp / mmap_4k", pcp, median(runs, "peer/mmap_4k"), "(context)", None))
    print(ratio_row("order0_nopcp / order0_pcp", median(runs, "page_alloc/order0_nopcp"), pcp,
                    "<= 3", lambda r: r <= 3))
    print(ratio_row("order0_nopcp_nomerge / order0_pcp (lock path, no split/merge)",
                    median(runs, "page_alloc/order0_nopcp_nomerge"), pcp, "(context)", None))
    print(ratio_row("zone_lock_pair / order0_pcp (two lock round trips alone)",
                    median(runs, "page_alloc/zone_lock_pair"), pcp, "(context)", None))
    print(ratio_row("order0_pcp_64GiB / order0_pcp_1GiB", median(runs, "page_alloc/order0_pcp_64GiB"),
                    median(runs, "page_alloc/order0_pcp_1GiB"), "<= 1.25 (flat)", lambda r: r <= 1.25))
    print(ratio_row("order0_pcp/repeat / order0_pcp (drift)", median(runs, PCP_RUNS[1]),
                    median(runs, PCP_RUNS[0]), "(noise)", None))
    print(ratio_row("two_cpu_remote_free / order0_pcp", median(runs, "page_alloc/two_cpu_remote_free"),
                    pcp, "(context)", None))
    print(ratio_row("boot/64GiB / boot/1GiB", median(runs, "boot/64GiB"), median(runs, "boot/1GiB"),
                    "(context)", None))
    for gib in (1, 16, 64):
        name = f"boot/{gib}GiB"
        t = median(runs, name)
        rss = runs.get(name, {}).get("counters", {}).get("rss_MiB")
        rss_s = f", rss +{statistics.median(rss):.1f} MiB" if rss else ""
        target, ok = ("< 1 s", t is not None and t < 1e9) if gib == 64 else ("(context)", None)
        verdict = "missing" if t is None else "" if ok is None else ("met" if ok else "**missed**")
        print(f"| {name} boot + destroy | {fmt_time(t)}{rss_s} | {target} | {verdict} |")


if __name__ == "__main__":
    main()
