"""Tests for policy_sim.py, gen_trace.py and lackey_to_pages.py.

The fault counts asserted here were worked out by hand, step by step, in
the comments next to them; OPT is also checked against an exhaustive search
over every eviction choice. Run with
  python3 -m unittest discover -s scripts -p 'test_*.py'
"""
import functools
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import unittest

import gen_trace
import lackey_to_pages
import policy_sim as ps

SCRIPTS = os.path.dirname(os.path.abspath(__file__))

# Silberschatz's textbook reference string; no page repeats back to back,
# so collapsing leaves it as it is. Six distinct pages.
TEXTBOOK = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1]


def fewest_faults(trace, capacity):
    """The true optimum: every choice of victim at every fault, memoised."""

    @functools.lru_cache(maxsize=None)
    def best(i, resident):
        if i == len(trace):
            return 0
        page = trace[i]
        if page in resident:
            return best(i + 1, resident)
        if len(resident) < capacity:
            return 1 + best(i + 1, resident | {page})
        return 1 + min(best(i + 1, resident - {victim} | {page}) for victim in resident)

    return best(0, frozenset())


def opt(trace, capacity):
    return ps.opt_faults(trace, capacity, ps.next_uses(trace, max(trace) + 1))


class OptTest(unittest.TestCase):
    def test_textbook_trace(self):
        # Three frames; "2@8" means page 2 is next used at index 8.
        #   7 0 1       3 compulsory faults          {7 0 1}
        #   2 (i=3)     7@17 0@4 1@13: evict 7       {2 0 1}
        #   0           hit
        #   3 (i=5)     2@8 0@6 1@13: evict 1        {2 0 3}
        #   0           hit
        #   4 (i=7)     2@8 0@10 3@9: evict 0        {2 4 3}
        #   2 3         hits
        #   0 (i=10)    2@12 4 never 3@11: evict 4   {2 0 3}
        #   3 2         hits
        #   1 (i=13)    2@14 0@15 3 never: evict 3   {2 0 1}
        #   2 0 1       hits
        #   7 (i=17)    2 never 0@18 1@19: evict 2   {7 0 1}
        #   0 1         hits
        # 9 faults: 6 compulsory, 3 misses (0, 1, 7 read back).
        self.assertEqual(opt(TEXTBOOK, 3), 9)

    def test_matches_exhaustive_search(self):
        rng = random.Random(7)
        for _ in range(60):
            trace = [rng.randrange(5) for _ in range(12)]
            for capacity in (1, 2, 3):
                self.assertEqual(opt(trace, capacity), fewest_faults(trace, capacity), trace)

    def test_long_trace_through_heap_rebuilds(self):
        # A loop of c + 1 pages in c frames, as worked out for c = 3 in
        # test_loop_one_page_larger_than_memory: compulsory faults at 0..c,
        # then a miss at every multiple of c from 2c on (each miss evicts
        # the page needed c accesses later, which is the next miss). With
        # c = 4 and 3000 accesses: 5 + (748 multiples of 4 in 8..2996) = 753.
        # The hits push the lazy heap far past its rebuild threshold.
        trace = list(range(5)) * 600
        self.assertEqual(opt(trace, 4), 753)


class PoliciesTest(unittest.TestCase):
    def test_loop_one_page_larger_than_memory(self):
        # Pages 0..3 three times round, three frames.
        # OPT: 0 1 2 3 fault (3 evicts 2, used last of 0@4 1@5 2@6);
        # 0 1 hit; 2 faults (i=6), evicting 1 (0@8 1@9 3@7); 3 0 hit;
        # 1 faults (i=9), evicting 0 (never used again); 2 3 hit.
        # 6 faults, 2 misses.
        # The others: each page is the oldest resident when it comes back
        # (ARC: a page never reaches T2, and L1 holds c pages, so the LRU
        # end of T1 goes without a ghost; LINUX2Q and CLOCK: no page is
        # touched while resident), so all 12 accesses fault.
        trace = [0, 1, 2, 3] * 3
        self.assertEqual(opt(trace, 3), 6)
        for faults in (ps.lru_faults, ps.clock_faults, ps.arc_faults, ps.linux2q_faults):
            self.assertEqual(faults(trace, 3), 12, faults.__name__)

        capacity, passes = 10, 5
        trace = list(range(capacity + 1)) * passes  # 55 accesses
        # LRU misses on every access after the first pass: 44; OPT at 20,
        # 30, 40 and 50 (every multiple of c from 2c on, as above): 4.
        self.assertEqual(ps.lru_faults(trace, capacity) - (capacity + 1), 44)
        self.assertEqual(opt(trace, capacity) - (capacity + 1), 4)

    def test_lru_textbook_trace(self):
        # The textbook's answer for three frames: 12 faults.
        self.assertEqual(ps.lru_faults(TEXTBOOK, 3), 12)

    def test_clock_textbook_trace(self):
        # Frames f0 f1 f2, * a set reference bit, ^ the hand.
        #   7 0 1    ^[7 0 1]
        #   2        evict 7          [2 ^0 1]
        #   0        hit              [2 ^0* 1]
        #   3        clear 0, evict 1 ^[2 0 3]
        #   0        hit              ^[2 0* 3]
        #   4        evict 2          [4 ^0* 3]
        #   2        clear 0, evict 3 ^[4 0 2]
        #   3        evict 4          [3 ^0 2]
        #   0 3 2    hits             [3* ^0* 2*]
        #   1        clear all three, evict 0      [3 1 ^2]
        #   2        hit              [3 1 ^2*]
        #   0        clear 2, evict 3 [0 ^1 2]
        #   1        hit              [0 ^1* 2]
        #   7        clear 1, evict 2 ^[0 1 7]
        #   0 1      hits
        # 11 faults: 7 0 1 2 3 4 2 3 1 0 7.
        self.assertEqual(ps.clock_faults(TEXTBOOK, 3), 11)

    def test_arc_hand_worked(self):
        # c = 2; lists LRU..MRU; faults counted with F.
        #   1 2      F F  T1=[1 2]
        #   3        F    IV, |L1| = c and B1 empty: drop 1 outright; T1=[2 3]
        #   1 2      F F  the same: drop 2, then 3; T1=[1 2]
        #   1             hit: T1=[2] T2=[1]
        #   4        F    IV, |L1| < c, directory = c: REPLACE, |T1| > p = 0:
        #                 2 to B1; T1=[4]
        #   3        F    IV, |L1| = c: drop 2 from B1, REPLACE: 4 to B1; T1=[3]
        #   4        F    II: p = 1, REPLACE (|T1| = p): 1 to B2; T2=[4]
        #   1        F    III: p = 0, REPLACE: 3 to B1; T1=[] T2=[4 1] B1=[3]
        #   5        F    IV: REPLACE (T1 empty): 4 to B2; T1=[5] B2=[4]
        #   4        F    III: p = 0, REPLACE: 5 to B1; T2=[1 4] B1=[3 5]
        #   3        F    II: p = 1, REPLACE (T1 empty): 1 to B2; T2=[4 3] B1=[5] B2=[1]
        #   2        F    IV, directory = 2c: drop 1 from B2, REPLACE: 4 to B2;
        #                 T1=[2] T2=[3] B2=[4]
        #   6        F    IV, |L1| = c: drop 5 from B1, REPLACE (|T1| = p):
        #                 3 to B2; T1=[2 6] T2=[] B2=[4 3]
        #   2             hit: T1=[6] T2=[2]
        #   7        F    IV, directory = 2c: drop 4 from B2, REPLACE: 2 to B2;
        #                 T1=[6 7] B2=[3 2]
        #   6 7 6         hits: T2=[7 6]
        #   3        F    III: p = 0, REPLACE (T1 empty): 7 to B2; T2=[6 3]
        # 16 faults.
        trace = [1, 2, 3, 1, 2, 1, 4, 3, 4, 1, 5, 4, 3, 2, 6, 2, 7, 6, 7, 6, 3]
        self.assertEqual(ps.arc_faults(trace, 2), 16)

    def test_linux2q_hand_worked(self):
        # Three pages, so inactive_ratio is 1 (the lists stay balanced when
        # inactive >= active). Lists tail..head, * the referenced bit.
        #   1 2 3    F F F  I=[1 2 3]
        #   1 2      hits   I=[1* 2* 3]
        #   4        F      activate 1, 2 (A=[1 2], I=[3]); inactive is low:
        #                   deactivate 1 (I=[3 1] A=[2]); evict 3; I=[1 4]
        #   3        F      evict 1 (its bit was cleared); I=[4 3]
        #   1        F      evict 4; I=[3 1]
        #   2        hit    A=[2*]
        #   4        F      evict 3; I=[1 4]
        #   1 4      hits   I=[1* 4*]
        #   5        F      activate 1 (A=[2* 1]); inactive is low: deactivate
        #                   2 though referenced, clearing its bit (I=[4* 2]);
        #                   activate 4 (A=[1 4]); low again: deactivate 1
        #                   (I=[2 1] A=[4]); evict 2; I=[1 5]
        #   2        F      evict 1; I=[5 2]
        # 9 faults (LRU takes 10 on this trace).
        trace = [1, 2, 3, 1, 2, 4, 3, 1, 2, 4, 1, 4, 5, 2]
        self.assertEqual(ps.linux2q_faults(trace, 3), 9)

    def test_inactive_is_low(self):
        gib = 1 << 18  # pages
        self.assertTrue(ps.inactive_is_low(100, 101))  # below 1 GiB the ratio is 1
        self.assertFalse(ps.inactive_is_low(100, 100))
        # 1 GiB in all: ratio int_sqrt(10) = 3.
        self.assertFalse(ps.inactive_is_low(gib // 4, gib - gib // 4))
        self.assertTrue(ps.inactive_is_low(gib // 4 - 1, gib - gib // 4 + 1))
        # 10 GiB: ratio int_sqrt(100) = 10, so low below 1/11 inactive.
        total = 10 * gib
        self.assertTrue(ps.inactive_is_low(total // 11, total - total // 11))
        self.assertFalse(ps.inactive_is_low(total // 11 + 1, total - total // 11 - 1))

    def test_report(self):
        # 1 2 1 3 2 in two frames: OPT evicts 1 (never used again) for 3 and
        # misses nothing; LRU evicts 2 for 3 and reads it back once.
        trace = [0, 1, 0, 2, 1]
        report = ps.simulate(trace, 3, 2, ps.next_uses(trace, 3))
        self.assertEqual(report["accesses"], 5)
        self.assertEqual(report["distinct_pages"], 3)
        self.assertEqual(report["policies"]["OPT"],
                         {"faults": 3, "compulsory": 3, "misses": 0, "ratio_to_opt": 1.0})
        self.assertEqual(report["policies"]["LRU"],
                         {"faults": 4, "compulsory": 3, "misses": 1, "ratio_to_opt": None})
        trace = [5 if p == 7 else p for p in TEXTBOOK]  # dense ids 0..5
        report = ps.simulate(trace, 6, 3, ps.next_uses(trace, 6))
        self.assertEqual(report["policies"]["LRU"]["ratio_to_opt"], 2.0)  # 6 misses to 3


class TraceFileTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def write(self, name, text, compress=False):
        path = os.path.join(self.dir.name, name)
        with (gzip.open(path, "wt") if compress else open(path, "w")) as f:
            f.write(text)
        return path

    def accesses(self, path, **options):
        return list(ps.page_accesses(path, **options))

    def test_pages_format(self):
        path = self.write("t", "R 1a\nW 0x1B\n\nr 1c\nR 1c\n")
        self.assertRaisesRegex(ps.TraceError, r"^.*/t:4: expected 'R HEXPAGE'", self.accesses, path)
        path = self.write("t", "R 1a\nW 0x1B\n\nR 1A\nR 1a\n")
        self.assertEqual(self.accesses(path), [(0x1A, False), (0x1B, True), (0x1A, False)])
        self.assertEqual(len(self.accesses(path, collapse=False)), 4)

    def test_lackey_format(self):
        path = self.write("t.log", (
            "==1== Lackey, an example Valgrind tool\n"
            "I  04000ffe,4\n"        # crosses into page 0x4001
            " L 1fff000ff8,8\n"
            " S 1fff000ff0,8\n"      # same page: collapsed into a write
            " M 0804a000,4\n"
            "I  04001000,2\n"
            "==1== \n"))
        self.assertEqual(self.accesses(path), [
            (0x4000, False), (0x4001, False), (0x1FFF000, True), (0x804A, True), (0x4001, False)])
        self.assertEqual(self.accesses(path, data_only=True), [(0x1FFF000, True), (0x804A, True)])
        self.assertEqual(len(self.accesses(path, collapse=False)), 6)

    def test_gzip_and_detection(self):
        lackey = self.write("t.gz", "==1== x\n L 3000,8\n", compress=True)
        pages = self.write("p.gz", "W 3\n", compress=True)
        self.assertEqual(self.accesses(lackey), [(3, False)])
        self.assertEqual(self.accesses(pages), [(3, True)])
        self.assertRaisesRegex(ps.TraceError, r"t.gz:1: expected 'R HEXPAGE'",
                               self.accesses, lackey, fmt="pages")

    def test_load_trace_numbers_pages_densely(self):
        path = self.write("t", "R 7f00\nR 10\nR 7f00\nR 7f00\nR 3\n")
        trace, distinct = ps.load_trace(path)
        self.assertEqual((list(trace), distinct), ([0, 1, 0, 2], 3))

    def test_lackey_to_pages_keeps_the_trace(self):
        log = self.write("t.log", "I  04000ffe,4\n S 1fff000ff0,8\n L 1fff000ff8,8\n M 4001000,4\n")
        out = os.path.join(self.dir.name, "t.pages.gz")
        self.assertEqual(lackey_to_pages.main([log, out]), 0)
        self.assertEqual(self.accesses(out), self.accesses(log))
        with gzip.open(out, "rt") as f:
            self.assertEqual(f.read(), "X 4000\nX 4001\nW 1fff000\nW 4001\n")
        self.assertEqual(list(ps.page_ops(out)), list(ps.page_ops(log)))

    def test_fetches_are_x_ops_and_reads_to_the_policies(self):
        path = self.write("t", "X 4000\nR 4000\nX 4001\nW 4001\nX 4001\nR 9\n")
        # A fetch merged with a read stays a fetch; with a write it is a write.
        self.assertEqual(list(ps.page_ops(path)), [(0x4000, "X"), (0x4001, "W"), (9, "R")])
        self.assertEqual(self.accesses(path), [(0x4000, False), (0x4001, True), (9, False)])
        # --data-only drops the fetches of a pages trace as of a lackey log.
        self.assertEqual(list(ps.page_ops(path, data_only=True)),
                         [(0x4000, "R"), (0x4001, "W"), (9, "R")])
        self.assertEqual(ps.merge_ops("R", "X"), "X")
        self.assertEqual(ps.merge_ops("X", "W"), "W")
        self.assertEqual(ps.merge_ops("R", "R"), "R")


class CommandLineTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def run_sim(self, *args):
        return subprocess.run([sys.executable, os.path.join(SCRIPTS, "policy_sim.py"), *args],
                              capture_output=True, text=True)

    def write(self, text):
        path = os.path.join(self.dir.name, "trace")
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_parse_error(self, text, lineno, *args):
        path = self.write(text)
        result = self.run_sim("--capacity", "2", *args, path)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, "")
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertTrue(result.stderr.startswith(f"{path}:{lineno}: "), result.stderr)

    def test_malformed_lines(self):
        self.assert_parse_error("R 1\nW 2\nR zz\n", 3)
        self.assert_parse_error("R 1\n L 1000,8\n", 2)
        self.assert_parse_error("==1== hello\nI  0400,4\n L 1000\n", 3)
        self.assert_parse_error(" L 1000,0\n", 1)
        self.assert_parse_error("hello\n", 1)
        self.assert_parse_error("I  0400,4\n", 1, "--format", "pages")

    def test_missing_file(self):
        result = self.run_sim("--capacity", "2", os.path.join(self.dir.name, "none"))
        self.assertEqual(result.returncode, 2)

    def test_json_and_memory_sizes(self):
        path = self.write("".join(f"R {p:x}\n" for p in TEXTBOOK))
        result = self.run_sim("--memory", "12K,16k", "--json", path)
        self.assertEqual(result.returncode, 0, result.stderr)
        reports = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual([r["capacity_pages"] for r in reports], [3, 4])
        self.assertEqual(reports[0]["accesses"], 20)
        self.assertEqual(reports[0]["distinct_pages"], 6)
        self.assertEqual(list(reports[0]["policies"]), ["OPT", "LRU", "CLOCK", "ARC", "LINUX2Q"])
        self.assertEqual(reports[0]["policies"]["OPT"]["faults"], 9)
        self.assertEqual(self.run_sim("--memory", "10K", path).returncode, 2)  # not whole pages
        self.assertEqual(self.run_sim("--capacity", "0", path).returncode, 2)

    def test_table(self):
        path = self.write("".join(f"R {p:x}\n" for p in TEXTBOOK))
        result = self.run_sim("--capacity", "3", path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("capacity 3 pages (12 KiB), 20 accesses, 6 distinct pages", result.stdout)
        self.assertIn("| LRU     |       12 |          6 |        6 |        2.000 |",
                      result.stdout)


class GenTraceTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def generate(self, *args):
        """(the trace's bytes, its accesses); each call writes a new file."""
        path = os.path.join(self.dir.name, f"t{len(os.listdir(self.dir.name))}.gz")
        self.assertEqual(gen_trace.main([*args, "-o", path]), 0)
        with gzip.open(path, "rb") as f:
            data = f.read()
        return data, list(ps.page_accesses(path, collapse=False))

    def test_deterministic(self):
        zipf = ("zipf", "--pages", "50", "--accesses", "500")
        first, _ = self.generate(*zipf, "--seed", "3")
        again, _ = self.generate(*zipf, "--seed", "3")
        other, _ = self.generate(*zipf, "--seed", "4")
        self.assertEqual(first, again)
        self.assertNotEqual(first, other)

    def test_write_ratio_leaves_pages_alone(self):
        _, reads = self.generate("random", "--pages", "20", "--accesses", "300")
        _, mixed = self.generate("random", "--pages", "20", "--accesses", "300",
                                 "--write-ratio", "0.5")
        self.assertEqual([p for p, _ in reads], [p for p, _ in mixed])
        self.assertFalse(any(w for _, w in reads))
        self.assertTrue(90 < sum(w for _, w in mixed) < 210)

    def test_shapes(self):
        _, loop = self.generate("loop", "--pages", "3", "--passes", "2")
        self.assertEqual([p for p, _ in loop], [0, 1, 2, 0, 1, 2])
        _, scan = self.generate("scan", "--hot", "3", "--scan-every", "4", "--scan-length", "2",
                                "--accesses", "13")
        pages = [p for p, _ in scan]
        self.assertTrue(all(p < 3 for p in pages[0:4] + pages[6:10] + pages[12:]))
        self.assertEqual(pages[4:6] + pages[10:12], [3, 4, 5, 6])
        self.assertEqual(len(pages), 13)
        _, zipf = self.generate("zipf", "--pages", "100", "--accesses", "2000")
        counts = [sum(1 for p, _ in zipf if p == rank) for rank in (0, 99)]
        self.assertGreater(counts[0], 10 * counts[1])  # 100^0.9 = 63 times likelier


if __name__ == "__main__":
    unittest.main()
