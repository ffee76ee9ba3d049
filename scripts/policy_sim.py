#!/usr/bin/env python3
"""Page-replacement quality of OPT, LRU, CLOCK, ARC and Linux's two LRU lists.

Replays a page-access trace against each policy at one or more capacities
(in 4 KiB pages) and counts page faults, split into compulsory ones (the
first touch of a page, which every policy takes) and misses (a page read
back after it was evicted: what would be a swap-in). Each policy's misses
are also given relative to Belady's OPT, the lower bound, which is what
mmkit's reclaim is compared against.

Trace formats (--format; when omitted, the first line that is not blank
decides):

  pages   "R HEXPAGE", "W HEXPAGE" or "X HEXPAGE" (an instruction fetch:
          the page is code) per line, HEXPAGE a page number in hex with an
          optional 0x; blank lines are skipped
  lackey  the output of valgrind --tool=lackey --trace-mem=yes:
          "I  ADDR,SIZE" (instruction fetch) and " L", " S", " M" (load,
          store, modify) lines, ADDR in hex, SIZE in decimal; lines that
          start with "==" are valgrind's own and skipped; an access that
          crosses a page boundary touches every page it covers

gzip-compressed traces are read transparently. Back-to-back accesses to the
same page count once, as a TLB would absorb them (--no-collapse keeps
them). A malformed line stops the run with "FILE:LINE: what is wrong" on
stderr and exit status 2.

Output: per capacity, a Markdown table of faults, compulsory faults, misses
and misses / OPT's misses ("-" where OPT has none and the policy has some);
with --json, one object per capacity and line instead:
  {"capacity_pages": N, "accesses": N, "distinct_pages": N, "policies":
   {"OPT": {"faults": N, "compulsory": N, "misses": N, "ratio_to_opt": X}, ...}}
with ratio_to_opt null where the table has "-". "accesses" counts what was
simulated, after collapsing.
"""
import argparse
import gzip
import heapq
import io
import json
import math
import re
import sys
from array import array
from collections import OrderedDict

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

PAGES_LINE = re.compile(r"([RWX])\s+(?:0[xX])?([0-9a-fA-F]+)")
LACKEY_LINE = re.compile(r"([ILSM])\s+([0-9a-fA-F]+),([0-9]+)")


class TraceError(Exception):
    """A malformed trace line; str() is "FILE:LINE: what is wrong"."""

    def __init__(self, path, lineno, what):
        super().__init__(f"{path}:{lineno}: {what}")


def open_text(path):
    """The file's lines, gunzipped when it starts with the gzip magic."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    # latin-1 decodes any byte, so binary junk reaches the parser and is
    # reported with its line number instead of as a UnicodeDecodeError.
    if gzipped:
        return gzip.open(path, "rt", encoding="latin-1")
    return open(path, encoding="latin-1")


def detect_format(line):
    if line.startswith("==") or LACKEY_LINE.fullmatch(line):
        return "lackey"
    if PAGES_LINE.fullmatch(line):
        return "pages"
    return None


def raw_ops(path, fmt=None, data_only=False):
    """Yields (page, op) for every page each access of the trace touches, op
    "R" (a read), "W" (a write) or "X" (an instruction fetch); data_only
    drops the fetches."""
    with open_text(path) as lines:
        for lineno, line in enumerate(lines, 1):
            line = line.strip()
            if not line:
                continue
            if fmt is None:
                fmt = detect_format(line)
                if fmt is None:
                    raise TraceError(path, lineno,
                                     f"neither a pages nor a lackey line: {line[:60]!r}")
            if fmt == "pages":
                m = PAGES_LINE.fullmatch(line)
                if not m:
                    raise TraceError(path, lineno, "expected 'R HEXPAGE', 'W HEXPAGE' or "
                                     f"'X HEXPAGE', got {line[:60]!r}")
                if m.group(1) == "X" and data_only:
                    continue
                yield int(m.group(2), 16), m.group(1)
                continue
            if line.startswith("=="):
                continue
            m = LACKEY_LINE.fullmatch(line)
            if not m:
                raise TraceError(path, lineno,
                                 f"expected a lackey 'I|L|S|M ADDR,SIZE' line, got {line[:60]!r}")
            kind, addr, size = m.group(1), int(m.group(2), 16), int(m.group(3))
            if size == 0:
                raise TraceError(path, lineno, "access of size 0")
            if kind == "I" and data_only:
                continue
            # M (modify) is a load and a store to one address.
            op = "X" if kind == "I" else "W" if kind in "SM" else "R"
            for page in range(addr >> PAGE_SHIFT, ((addr + size - 1) >> PAGE_SHIFT) + 1):
                yield page, op


def raw_accesses(path, fmt=None, data_only=False):
    """Yields (page, is_write) for every page each access of the trace touches."""
    for page, op in raw_ops(path, fmt, data_only):
        yield page, op == "W"


def merge_ops(a, b):
    """The op of two back-to-back accesses to one page taken as one: a write
    if either was, else a fetch if either was, else a read."""
    return "W" if "W" in (a, b) else "X" if "X" in (a, b) else "R"


def page_ops(path, fmt=None, data_only=False, collapse=True):
    """raw_ops(), with back-to-back accesses to one page merged (merge_ops)
    unless collapse is false."""
    ops = raw_ops(path, fmt, data_only)
    if not collapse:
        yield from ops
        return
    last_page, last_op = None, "R"
    for page, op in ops:
        if page == last_page:
            last_op = merge_ops(last_op, op)
            continue
        if last_page is not None:
            yield last_page, last_op
        last_page, last_op = page, op
    if last_page is not None:
        yield last_page, last_op


def page_accesses(path, fmt=None, data_only=False, collapse=True):
    """page_ops() as (page, is_write): a merged access is a write if any of
    its parts was."""
    for page, op in page_ops(path, fmt, data_only, collapse):
        yield page, op == "W"


def load_trace(path, fmt=None, data_only=False, collapse=True):
    """(trace, distinct): the pages as dense ids 0..distinct-1, numbered in
    order of first touch, in an array; the policies need nothing else."""
    ids = {}
    trace = array("q")
    for page, _ in page_accesses(path, fmt, data_only, collapse):
        trace.append(ids.setdefault(page, len(ids)))
    return trace, len(ids)


def write_pages(path, accesses):
    """Writes (page, op) pairs as a `pages` trace to path (stdout when None),
    gzipped when path ends in .gz. op is "R", "W" or "X", or a write flag
    (False or 0 a read, True or 1 a write)."""
    def letter(op):
        return op if isinstance(op, str) else "W" if op else "R"
    lines = (f"{letter(op)} {page:x}\n" for page, op in accesses)
    if path is None:
        sys.stdout.writelines(lines)
        return
    if path.endswith(".gz"):
        # mtime=0 leaves the timestamp out, so rewriting a trace gives the same bytes.
        out = io.TextIOWrapper(gzip.GzipFile(path, "wb", mtime=0), encoding="ascii")
    else:
        out = open(path, "w", encoding="ascii")
    with out:
        out.writelines(lines)


def next_uses(trace, distinct):
    """next_use[i]: the index of the next access to trace[i]'s page, or
    len(trace) when there is none; one backward pass."""
    never = len(trace)
    next_use = array("q", [never]) * len(trace)
    upcoming = [never] * distinct
    for i in range(len(trace) - 1, -1, -1):
        page = trace[i]
        next_use[i] = upcoming[page]
        upcoming[page] = i
    return next_use


def opt_faults(trace, capacity, next_use):
    """Belady's OPT: evict the resident page whose next use is farthest away.

    The heap holds (-next use, page) and is never searched: a hit pushes a
    fresh entry, and an entry whose next use is no longer its page's (or
    whose page was evicted) is stale and skipped when it surfaces. A page's
    successive next uses are distinct indices, so a stale entry can never
    look current. The heap is rebuilt from the resident set when stale
    entries make it large, which keeps memory at O(capacity).
    """
    resident = {}  # page -> index of its next use
    heap = []
    faults = 0
    for i, page in enumerate(trace):
        if page not in resident:
            faults += 1
            if len(resident) == capacity:
                while True:
                    neg_use, victim = heapq.heappop(heap)
                    if resident.get(victim) == -neg_use:
                        break
                del resident[victim]
        resident[page] = next_use[i]
        heapq.heappush(heap, (-next_use[i], page))
        if len(heap) > 2 * capacity + 1024:
            heap = [(-use, p) for p, use in resident.items()]
            heapq.heapify(heap)
    return faults


def lru_faults(trace, capacity):
    resident = OrderedDict()  # least recently used first
    faults = 0
    for page in trace:
        if page in resident:
            resident.move_to_end(page)
            continue
        faults += 1
        if len(resident) == capacity:
            resident.popitem(last=False)
        resident[page] = None
    return faults


def clock_faults(trace, capacity):
    """Second chance: the hand clears set reference bits until it finds a
    clear one and evicts that page. A loaded page starts with its bit
    clear, so only a reference after the fault earns it a second chance
    (the same rule as LINUX2Q's)."""
    frames = []  # the page in each frame
    frame_of = {}
    referenced = bytearray(capacity)
    hand = 0
    faults = 0
    for page in trace:
        frame = frame_of.get(page)
        if frame is not None:
            referenced[frame] = 1
            continue
        faults += 1
        if len(frames) < capacity:
            frame_of[page] = len(frames)
            frames.append(page)
            continue
        while referenced[hand]:
            referenced[hand] = 0
            hand = (hand + 1) % capacity
        del frame_of[frames[hand]]
        frames[hand] = page
        frame_of[page] = hand
        hand = (hand + 1) % capacity
    return faults


def arc_faults(trace, capacity):
    """ARC (Megiddo and Modha, FAST 2003, Figure 4). T1 and T2 are resident
    (seen once recently, seen at least twice); B1 and B2 are their ghosts,
    page ids only. p is the target size of T1, moved towards the list whose
    ghost was hit. The paper's deltas are |B2|/|B1| and |B1|/|B2|; they are
    floored here so p stays an integer and REPLACE's |T1| = p test means
    what it says."""
    t1, t2, b1, b2 = OrderedDict(), OrderedDict(), OrderedDict(), OrderedDict()  # LRU first
    p = 0
    faults = 0

    def replace(hit_in_b2):
        if t1 and (len(t1) > p or (hit_in_b2 and len(t1) == p)):
            victim, _ = t1.popitem(last=False)
            b1[victim] = None
        else:
            victim, _ = t2.popitem(last=False)
            b2[victim] = None

    for page in trace:
        if page in t1:  # case I: a hit
            del t1[page]
            t2[page] = None
            continue
        if page in t2:
            t2.move_to_end(page)
            continue
        faults += 1
        if page in b1:  # case II
            p = min(capacity, p + max(1, len(b2) // len(b1)))
            replace(False)
            del b1[page]
            t2[page] = None
        elif page in b2:  # case III
            p = max(0, p - max(1, len(b1) // len(b2)))
            replace(True)
            del b2[page]
            t2[page] = None
        else:  # case IV
            l1 = len(t1) + len(b1)
            total = l1 + len(t2) + len(b2)
            if l1 == capacity:
                if len(t1) < capacity:
                    b1.popitem(last=False)
                    replace(False)
                else:
                    t1.popitem(last=False)
            elif total >= capacity:
                if total == 2 * capacity:
                    b2.popitem(last=False)
                replace(False)
            t1[page] = None
    return faults


def inactive_is_low(inactive, active):
    """mm/vmscan.c's inactive_is_low(): the ratio grows with the square root
    of the lists' total size in GiB and is 1 below 1 GiB."""
    gigabytes = (inactive + active) >> (30 - PAGE_SHIFT)
    inactive_ratio = math.isqrt(10 * gigabytes) if gigabytes else 1
    return inactive * inactive_ratio < active


def linux2q_faults(trace, capacity):
    """The anonymous-page LRU of mm/vmscan.c (before MGLRU), one page at a time.

    A faulted page enters the inactive list's head with its referenced bit
    clear (new anon pages go to the inactive list since Linux 5.9). The bit
    stands for the page-table ACCESSED bit, set by every later access. To
    free a page, reclaim first refills the inactive list while
    inactive_is_low(), moving pages from the active tail to the inactive
    head with their bits cleared, then looks at the inactive tail: a page
    with its bit set is activated (moved to the active head, bit cleared),
    one without is evicted.

    Simplifications. Every page leaves the active tail whatever its bit:
    shrink_active_list() deactivates referenced anon pages too (only
    referenced executable file pages stay active), but it keeps their
    PG_referenced, which one bit cannot. Since 5.9 page_check_references()
    treats anon pages as file pages and uses two bits: the fault leaves the
    pte young, so the first scan to find a new page young only sets
    PG_referenced and rotates it, and the page is activated if the next
    scan finds it young again. Here one use after the fault is enough to be
    activated at the first scan. Scans go one page at a time instead of in
    SWAP_CLUSTER_MAX batches, and refaults are not activated by the
    workingset's refault distance.
    """
    inactive, active = OrderedDict(), OrderedDict()  # tail (scanned next) first
    referenced = set()
    faults = 0
    for page in trace:
        if page in inactive or page in active:
            referenced.add(page)
            continue
        faults += 1
        if len(inactive) + len(active) == capacity:
            while True:
                while inactive_is_low(len(inactive), len(active)):
                    moved, _ = active.popitem(last=False)
                    referenced.discard(moved)
                    inactive[moved] = None
                candidate, _ = inactive.popitem(last=False)
                if candidate not in referenced:
                    break
                referenced.discard(candidate)
                active[candidate] = None
        inactive[page] = None
    return faults


def simulate(trace, distinct, capacity, next_use):
    """The report for one capacity: faults, compulsory faults and misses per
    policy. Every policy faults on each page's first touch, so compulsory is
    the number of distinct pages for all of them."""
    faults = {
        "OPT": opt_faults(trace, capacity, next_use),
        "LRU": lru_faults(trace, capacity),
        "CLOCK": clock_faults(trace, capacity),
        "ARC": arc_faults(trace, capacity),
        "LINUX2Q": linux2q_faults(trace, capacity),
    }
    opt_misses = faults["OPT"] - distinct
    policies = {}
    for name, count in faults.items():
        misses = count - distinct
        if opt_misses:
            ratio = round(misses / opt_misses, 4)
        else:
            ratio = 1.0 if misses == 0 else None  # no misses to compare against
        policies[name] = {"faults": count, "compulsory": distinct,
                          "misses": misses, "ratio_to_opt": ratio}
    return {"capacity_pages": capacity, "accesses": len(trace),
            "distinct_pages": distinct, "policies": policies}


def human_bytes(n):
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} B"


def format_table(report):
    capacity = report["capacity_pages"]
    lines = [
        f"capacity {capacity} pages ({human_bytes(capacity * PAGE_SIZE)}), "
        f"{report['accesses']} accesses, {report['distinct_pages']} distinct pages",
        "",
        "| policy  |   faults | compulsory |   misses | misses / OPT |",
        "|---------|---------:|-----------:|---------:|-------------:|",
    ]
    for name, row in report["policies"].items():
        ratio = "-" if row["ratio_to_opt"] is None else f"{row['ratio_to_opt']:.3f}"
        lines.append(f"| {name:<7} | {row['faults']:>8} | {row['compulsory']:>10} | "
                     f"{row['misses']:>8} | {ratio:>12} |")
    return "\n".join(lines)


def parse_list(text, parse_one):
    try:
        values = [parse_one(part.strip()) for part in text.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: a capacity below one page")
    return values


def memory_pages(text):
    """SIZE in bytes with an optional K, M or G (binary) suffix, as pages."""
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    size = int(text[:-1] if scale > 1 else text) * scale
    if size % PAGE_SIZE:
        raise ValueError(f"{text} is not a multiple of 4 KiB")
    return size // PAGE_SIZE


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--capacity", metavar="N[,N...]", type=lambda s: parse_list(s, int),
                      help="resident pages, or several separated by commas")
    size.add_argument("--memory", metavar="SIZE[,SIZE...]",
                      type=lambda s: parse_list(s, memory_pages),
                      help="resident memory in bytes with a K, M or G suffix, or several")
    parser.add_argument("--format", choices=("pages", "lackey"),
                        help="trace format (detected from the first line when omitted)")
    parser.add_argument("--data-only", action="store_true",
                        help="lackey: drop instruction fetches (I lines)")
    parser.add_argument("--no-collapse", action="store_true",
                        help="count back-to-back accesses to one page separately")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per capacity, one per line")
    parser.add_argument("trace", help="trace file, optionally gzipped")
    args = parser.parse_args(argv)

    try:
        trace, distinct = load_trace(args.trace, args.format, args.data_only, not args.no_collapse)
    except TraceError as err:
        print(err, file=sys.stderr)
        return 2
    except (OSError, EOFError) as err:  # unreadable, or a broken gzip stream
        print(f"{args.trace}: {err}", file=sys.stderr)
        return 2
    next_use = next_uses(trace, distinct)
    reports = [simulate(trace, distinct, c, next_use) for c in args.capacity or args.memory]
    if args.json:
        for report in reports:
            print(json.dumps(report))
    else:
        print("\n\n".join(format_table(r) for r in reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
