#!/usr/bin/env python3
"""mmkit's reclaim against OPT, LRU, CLOCK, ARC and Linux's two LRU lists.

For each trace and capacity, replays the trace in mmkit with `mmsim replay
--json --memory CAPACITY` (a memory cgroup whose memory.max is that many
4 KiB pages; the machine needs swap, e.g. configs/small-swap.toml) and
simulates the policies of policy_sim.py on the very same page sequence, then
prints one Markdown table: per policy, the misses (pages read back after
they were evicted) and their ratio to OPT's; for mmkit, reads (pswpin:
every page read from swap, readahead pages included, used or not; plus the
pages read from the stand-in executable beyond each code page's first read,
read-around pages included: pgpgin less pswpin less code_pages) and
major faults (the faults that had to wait for a read, less the first
fetches of code pages, which are first touches) with their ratios to OPT's
misses. A trace with X lines (instruction fetches, from lackey_to_pages.py
without --data-only) has its code replayed as file pages, which reclaim
drops and the executable gives back, as in Linux.
Every policy, mmkit included, also takes one first-touch fault per page,
given once as "first touches"; --totals gives ratios of all faults
(first touches plus misses) instead.

What memory.max counts. mmkit charges a memory cgroup for the user pages
its processes fault in or swap in (readahead pages too, while they sit in
the swap cache) and for nothing else: page tables and the kernel's own
pages are not charged. So --memory N pages holds at most N data pages, the
same capacity as policy_sim's N frames. Memory cgroup reclaim frees at
least a 64th of the limit at a time (Linux's SWAP_CLUSTER_MAX, 32 pages,
from 2048 pages up; docs/reclaim.md), so at these capacities a charge
over the limit evicts one to 16 pages.

First touches (--first-touch). policy_sim gives a page a frame from its
first access. mmkit maps a page that is read before it is ever written to
the shared zero page, which takes no memory and is never swapped, so a
page only ever read costs it nothing and a page read before its first write
takes memory only from that write. The two count alike only if one of them
is adjusted:

  write   (default) each page's first access is made a write in the trace
          mmsim replays, so every page holds a frame from its first touch,
          as in policy_sim; the policies see the trace as it is
  as-is   mmsim replays the trace as it is; the policies see it without the
          accesses mmkit serves from the zero page (those of a page before
          its first write; a page never written drops out)

Either way both sides get one page sequence, written once as a `pages`
trace (back-to-back accesses to one page collapsed, as policy_sim does)
that mmsim replays.

Cases are TRACE@CAPACITY[,CAPACITY...], optionally NAME=TRACE@...; a
capacity is in pages, or in bytes with a K, M or G suffix. The trace is in
policy_sim.py's `pages` or `lackey` format (--format, --data-only as
there). --config is passed to mmsim; --page-cluster N[,N...] replays once
per value, with page_cluster set to it in a copy of the config, one pair
of mmkit columns each ("mmkit pcN"; "mmkit" without --page-cluster).
--lru-gen replays each of those twice: with the classic LRU lists and with
the multi-generational LRU (lru_gen = true; columns labelled " mglru").

Bad input (a malformed case, trace or config, an mmsim that is not there)
stops the script with one message on stderr and exit status 2; a replay
that fails (exit status 1, an OOM kill, a verify error) with exit status 1.

Output: the table, or with --json one object per case and capacity, one a
line:
  {"trace": NAME, "path": PATH, "capacity_pages": N, "first_touch": "write",
   "accesses": N, "first_touches": N, "ratios_of": "misses" (or "faults"),
   "policies": {"OPT": {"misses": N, "ratio_to_opt": X}, ...},
   "mmkit": [{"label": L, "page_cluster": N or null, "pswpin": N,
              "pgmajfault": N, "pswpout": N, "pgfault": N, "pgreuse": N,
              "code_majfault": N, "code_refaults": N, "code_reads": N, "misses": N,
              "major_misses": N, "touch_or_cache_faults": N, "ratio_to_opt": X,
              "majfault_ratio_to_opt": X}, ...]}
with a ratio null where OPT has no misses and the other side has some.
touch_or_cache_faults is pgfault less pgmajfault and pgreuse: first touches
plus swap-ins that found the page in the swap cache; with page_cluster 0
and --first-touch write it should be first_touches or a little more.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from array import array

import policy_sim as ps

POLICIES = ("OPT", "LRU", "CLOCK", "ARC", "LINUX2Q")
POLICY_TITLES = {"OPT": "OPT", "LRU": "LRU", "CLOCK": "CLOCK", "ARC": "ARC",
                 "LINUX2Q": "Linux two-list"}
TRACE_SUFFIXES = (".pages.gz", ".pages", ".gz", ".log")


class InputError(Exception):
    """Bad input: the message is printed as it is, and the exit status is 2."""


class ReplayError(Exception):
    """A replay that did not finish cleanly: exit status 1."""


# --- cases --------------------------------------------------------------------

def parse_capacity(text):
    """A capacity in pages: a plain number, or bytes with K, M or G."""
    text = text.strip()
    try:
        if text[-1:].upper() in "KMG" and text[-1:].isalpha():
            pages = ps.memory_pages(text)
        else:
            pages = int(text)
    except ValueError as err:
        raise InputError(f"capacity {text!r}: {err}") from None
    if pages < 1:
        raise InputError(f"capacity {text!r}: below one page")
    return pages


def trace_name(path):
    base = os.path.basename(path)
    for suffix in TRACE_SUFFIXES:
        if base.endswith(suffix) and len(base) > len(suffix):
            return base[:-len(suffix)]
    return base


def parse_case(text):
    """[NAME=]TRACE@CAP[,CAP...] as (name, path, [capacities in pages])."""
    name = None
    spec = text
    head, sep, rest = text.partition("=")
    if sep and "@" not in head and "/" not in head and head:
        name, spec = head, rest
    path, at, caps = spec.rpartition("@")
    if not at or not path or not caps:
        raise InputError(f"case {text!r}: expected [NAME=]TRACE@CAPACITY[,CAPACITY...]")
    capacities = [parse_capacity(c) for c in caps.split(",")]
    return name or trace_name(path), path, capacities


def parse_page_clusters(text):
    values = []
    for part in text.split(","):
        try:
            value = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: {part!r} is not a number") from None
        if not 0 <= value <= 31:
            raise argparse.ArgumentTypeError(f"{text!r}: page_cluster {value} is not in 0..31")
        values.append(value)
    return values


# --- the page sequence both sides see -----------------------------------------

# An access's op in the arrays below: a read, a write or an instruction
# fetch (the page is code: mmsim replay serves it from the stand-in
# executable's file pages, and reclaim drops it rather than swap it).
READ, WRITE, FETCH = 0, 1, 2
OP_CODES = {"R": READ, "W": WRITE, "X": FETCH}
OP_LETTERS = "RWX"


def load_accesses(path, fmt=None, data_only=False):
    """(pages, ops): the collapsed accesses of a trace, page numbers in an
    array and ops (READ, WRITE, FETCH) in a bytearray."""
    pages, ops = array("q"), bytearray()
    try:
        for page, op in ps.page_ops(path, fmt, data_only, True):
            pages.append(page)
            ops.append(OP_CODES[op])
    except ps.TraceError as err:
        raise InputError(str(err)) from None
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from None
    except EOFError as err:  # a gzip stream cut short
        raise InputError(f"{path}: {err}") from None
    if not pages:
        raise InputError(f"{path}: no accesses")
    return pages, ops


def first_touch_writes(pages, ops):
    """The ops with each page's first access made a write, unless it is a
    fetch: a code page is the executable's from its first touch, and holds
    a frame from then on as it is."""
    out = bytearray(ops)
    seen = set()
    for i, page in enumerate(pages):
        if page not in seen:
            seen.add(page)
            if out[i] != FETCH:
                out[i] = WRITE
    return out


def merge_op(a, b):
    """policy_sim.merge_ops() on op codes."""
    return WRITE if WRITE in (a, b) else FETCH if FETCH in (a, b) else READ


def from_first_write(pages, ops):
    """The accesses that touch a page mmkit holds in memory: each page's from
    its first write on (before it, reads find the zero page), or from its
    first fetch (a code page is read from the executable). Back-to-back
    accesses to one page that dropping the others leaves are merged, as
    policy_sim merges them."""
    held = set()
    out_pages, out_ops = array("q"), bytearray()
    for page, op in zip(pages, ops):
        if page not in held:
            if op == READ:
                continue
            held.add(page)
        if out_pages and out_pages[-1] == page:
            out_ops[-1] = merge_op(out_ops[-1], op)
            continue
        out_pages.append(page)
        out_ops.append(op)
    return out_pages, out_ops


def dense_ids(pages):
    """(trace, distinct) as policy_sim.load_trace() makes them."""
    ids = {}
    trace = array("q")
    for page in pages:
        trace.append(ids.setdefault(page, len(ids)))
    return trace, len(ids)


# --- mmsim ----------------------------------------------------------------------

def config_with_page_cluster(text, value):
    """A machine config's text with page_cluster set to value: the top-level
    key is dropped where it is and set again first, before any table."""
    kept = [line for line in text.splitlines() if not re.match(r"\s*page_cluster\s*=", line)]
    return f"page_cluster = {value}\n" + "\n".join(kept) + "\n"


def config_with_lru_gen(text):
    """A machine config's text with lru_gen = true, set first as above."""
    kept = [line for line in text.splitlines() if not re.match(r"\s*lru_gen\s*=", line)]
    return "lru_gen = true\n" + "\n".join(kept) + "\n"


def parse_replay(stdout, capacity_bytes):
    """The counters of one `mmsim replay --json` run; ReplayError when the
    replay did not finish cleanly."""
    try:
        report = json.loads(stdout)
        counters = {key: int(report[key]) for key in
                    ("pswpin", "pswpout", "pgfault", "pgmajfault", "accesses")}
        counters["pgreuse"] = int(report.get("vmstat", {}).get("pgreuse", 0))
        for key in ("code_majfault", "code_refaults", "code_pages"):
            counters[key] = int(report.get(key, 0))
        # Pages read from files: pgpgin counts KiB read, swap-ins included.
        counters["file_pages_read"] = max(
            0, int(report.get("vmstat", {}).get("pgpgin", 0)) // 4 - counters["pswpin"])
        oom_killed, verify_errors = bool(report["oom_killed"]), int(report["verify_errors"])
    except (ValueError, KeyError, TypeError) as err:
        raise ReplayError(f"mmsim replay printed no report it could read ({err}): "
                          f"{stdout[:200]!r}") from None
    if oom_killed:
        raise ReplayError(f"the replay was OOM-killed at --memory {capacity_bytes}: the "
                          "machine needs enough swap (a config with a [[swap]] table, "
                          "e.g. configs/small-swap.toml)")
    if verify_errors:
        raise ReplayError(f"the replay had {verify_errors} verify errors")
    return counters


def run_mmsim(mmsim, trace_path, capacity, config=None):
    """One replay at `capacity` pages; its counters."""
    capacity_bytes = capacity * ps.PAGE_SIZE
    cmd = [mmsim, "replay", trace_path, "--format", "pages", "--json",
           "--memory", str(capacity_bytes)]
    if config:
        cmd += ["--config", config]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as err:
        raise InputError(f"{mmsim}: {err.strerror}") from None
    if done.returncode == 2:
        raise InputError(done.stderr.strip() or f"{' '.join(cmd)}: exit status 2")
    if done.returncode != 0:
        raise ReplayError(f"{' '.join(cmd)}: exit status {done.returncode}: "
                          f"{done.stderr.strip()[:500]}")
    return parse_replay(done.stdout, capacity_bytes)


# --- joining and printing ---------------------------------------------------------

def ratio(value, base):
    if base:
        return round(value / base, 4)
    return 1.0 if value == 0 else None


def join(name, path, mode, report, replays, totals=False):
    """One row: policy_sim's report for a capacity and the replays' counters
    ((label, page_cluster, counters) each). With totals, ratios compare all
    faults (first touches plus misses) instead of misses alone."""
    touches = report["distinct_pages"]
    extra = touches if totals else 0
    opt = report["policies"]["OPT"]["misses"] + extra
    row = {"trace": name, "path": path, "capacity_pages": report["capacity_pages"],
           "first_touch": mode, "accesses": report["accesses"], "first_touches": touches,
           "ratios_of": "faults" if totals else "misses", "policies": {}, "mmkit": []}
    for policy in POLICIES:
        misses = report["policies"][policy]["misses"]
        row["policies"][policy] = {"misses": misses, "ratio_to_opt": ratio(misses + extra, opt)}
    for label, page_cluster, c in replays:
        code_majfault, code_refaults = c.get("code_majfault", 0), c.get("code_refaults", 0)
        # A code page's first fetch reads it from the executable: a first
        # touch, not a miss. Every other page read from the file is a miss,
        # read-around pages included, used or not (code_refaults counts
        # only the faults that waited for one).
        code_reads = max(code_refaults, c.get("file_pages_read", 0) - c.get("code_pages", 0))
        misses = c["pswpin"] + code_reads
        major_misses = c["pgmajfault"] - code_majfault + code_refaults
        row["mmkit"].append({
            "label": label, "page_cluster": page_cluster,
            "pswpin": c["pswpin"], "pgmajfault": c["pgmajfault"],
            "pswpout": c["pswpout"], "pgfault": c["pgfault"], "pgreuse": c["pgreuse"],
            "code_majfault": code_majfault, "code_refaults": code_refaults,
            "code_reads": code_reads, "misses": misses, "major_misses": major_misses,
            # Faults that neither read nor only made a page writable again:
            # first touches, and swap-ins that found the page in the swap
            # cache (readahead, or a page reclaim had not freed yet).
            "touch_or_cache_faults": c["pgfault"] - c["pgmajfault"] - c["pgreuse"],
            "ratio_to_opt": ratio(misses + extra, opt),
            "majfault_ratio_to_opt": ratio(major_misses + extra, opt)})
    return row


def cell(value, r):
    return f"{value} ({'-' if r is None else f'{r:.2f}'})"


def cells(row):
    """The policies' and mmkit's cells of a row: misses, or with totals all
    faults, each with its ratio to OPT's."""
    extra = row["first_touches"] if row["ratios_of"] == "faults" else 0
    out = [cell(row["policies"][p]["misses"] + extra, row["policies"][p]["ratio_to_opt"])
           for p in POLICIES]
    for m in row["mmkit"]:
        out += [cell(m["misses"] + extra, m["ratio_to_opt"]),
                cell(m["major_misses"] + extra, m["majfault_ratio_to_opt"])]
    return out


def format_table(rows):
    labels = [m["label"] for m in rows[0]["mmkit"]] if rows else []
    head = ["trace", "capacity", "first touches"] + [POLICY_TITLES[p] for p in POLICIES]
    for label in labels:
        head += [f"{label} reads", f"{label} major faults"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for row in rows:
        head = [row["trace"], f"{row['capacity_pages']} pages", str(row["first_touches"])]
        lines.append("| " + " | ".join(head + cells(row)) + " |")
    if rows:
        what = ("all faults (first touches plus misses), as are the counts"
                if rows[0]["ratios_of"] == "faults" else "misses (first touches left out)")
        adjust = ("each page's first access made a write in the replayed trace, so mmkit "
                  "gives every page a frame from its first touch, as the policies do"
                  if rows[0]["first_touch"] == "write" else
                  "the policies simulated without the accesses mmkit serves from the zero "
                  "page (a page's before its first write)")
        lines += ["", f"Counts are pages; ratios (in brackets) are of {what} to OPT's. "
                  f"First touches: {adjust}. mmkit reads count every page read from swap "
                  "(pswpin, readahead included) and each code page read again from the "
                  "executable after reclaim dropped it; major faults, the faults that waited "
                  "for such a read."]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------

def mmkit_variants(config, page_clusters, tmpdir, lru_gen=False):
    """(label, page_cluster, config path) for each replay of a case."""
    if not page_clusters and not lru_gen:
        return [("mmkit", None, config)]
    text = ""
    if config:
        try:
            with open(config, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"{config}: {err}") from None
    variants = []
    for value in page_clusters or [None]:
        base = text if value is None else config_with_page_cluster(text, value)
        label = "mmkit" if value is None else f"mmkit pc{value}"
        for mglru in (False, True) if lru_gen else (False,):
            name = f"pc{value}" if value is not None else "default"
            path = os.path.join(tmpdir, f"{name}{'_mglru' if mglru else ''}.toml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(config_with_lru_gen(base) if mglru else base)
            variants.append((label + (" mglru" if mglru else ""), value, path))
    return variants


def evaluate(args, tmpdir):
    """Every row, in the order of the cases and their capacities."""
    cases = [parse_case(text) for text in args.cases]
    variants = mmkit_variants(args.config, args.page_cluster, tmpdir, args.lru_gen)
    if not (os.path.isfile(args.mmsim) and os.access(args.mmsim, os.X_OK)):
        raise InputError(f"{args.mmsim}: not an executable file")
    rows = []
    for index, (name, path, capacities) in enumerate(cases):
        pages, ops = load_accesses(path, args.format, args.data_only)
        if args.first_touch == "write":
            ops = first_touch_writes(pages, ops)
            sim_pages = pages
        else:
            sim_pages, _ = from_first_write(pages, ops)
        replayed = os.path.join(tmpdir, f"case{index}.pages.gz")
        ps.write_pages(replayed, ((page, OP_LETTERS[op]) for page, op in zip(pages, ops)))
        trace, distinct = dense_ids(sim_pages)
        next_use = ps.next_uses(trace, distinct)
        for capacity in capacities:
            report = ps.simulate(trace, distinct, capacity, next_use)
            replays = []
            for label, page_cluster, config in variants:
                counters = run_mmsim(args.mmsim, replayed, capacity, config)
                if counters["accesses"] != len(pages):
                    raise ReplayError(f"{name}: mmsim replayed {counters['accesses']} of "
                                      f"{len(pages)} accesses")
                replays.append((label, page_cluster, counters))
            row = join(name, path, args.first_touch, report, replays, args.totals)
            if args.json:
                print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mmsim", required=True, help="the mmsim binary")
    parser.add_argument("--config", help="machine config for mmsim (it needs swap)")
    parser.add_argument("--page-cluster", metavar="N[,N...]", type=parse_page_clusters,
                        help="replay once per value of page_cluster, set in a copy of --config")
    parser.add_argument("--lru-gen", action="store_true",
                        help="replay with the classic LRU and with the multi-generational LRU")
    parser.add_argument("--first-touch", choices=("write", "as-is"), default="write",
                        help="how the two sides are made to count first touches alike")
    parser.add_argument("--format", choices=("pages", "lackey"),
                        help="trace format (detected from the first line when omitted)")
    parser.add_argument("--data-only", action="store_true",
                        help="lackey: drop instruction fetches (I lines)")
    parser.add_argument("--totals", action="store_true",
                        help="ratios of all faults, first touches included")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    parser.add_argument("cases", nargs="+", metavar="[NAME=]TRACE@CAPACITY[,CAPACITY...]")
    args = parser.parse_args(argv)

    tmpdir = tempfile.mkdtemp(prefix="replay_quality.")
    try:
        rows = evaluate(args, tmpdir)
    except InputError as err:
        print(f"replay_quality: {err}", file=sys.stderr)
        return 2
    except ReplayError as err:
        print(f"replay_quality: {err}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    if not args.json:
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
