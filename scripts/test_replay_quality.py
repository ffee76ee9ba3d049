"""Tests for replay_quality.py: cases, the first-touch adjustments, the
config copies, reading mmsim's report, joining and the table. None of them
runs mmsim; a stand-in script prints the report instead where one is
needed. Run with
  python3 -m unittest discover -s scripts -p 'test_*.py'
"""
import contextlib
import io
import json
import os
import stat
import tempfile
import unittest
from array import array

import policy_sim as ps
import replay_quality as rq


def replay_json(**over):
    report = {"trace": "t", "format": "pages", "accesses": 10, "pgfault": 9, "pgmajfault": 3,
              "pswpin": 5, "pswpout": 7, "oom_killed": False, "verify_errors": 0,
              "vmstat": {"pgreuse": 2, "pgfree": 4}}
    report.update(over)
    return json.dumps(report)


def policy_report(capacity, distinct, misses):
    """policy_sim.simulate()'s shape, with the given misses per policy."""
    return {"capacity_pages": capacity, "accesses": 100, "distinct_pages": distinct,
            "policies": {p: {"faults": m + distinct, "compulsory": distinct, "misses": m,
                             "ratio_to_opt": None} for p, m in misses.items()}}


class CaseTest(unittest.TestCase):
    def test_cases(self):
        self.assertEqual(rq.parse_case("bench/traces/sort.pages.gz@64"),
                         ("sort", "bench/traces/sort.pages.gz", [64]))
        self.assertEqual(rq.parse_case("zipf=/tmp/a/zipf.pages.gz@1024,4M"),
                         ("zipf", "/tmp/a/zipf.pages.gz", [1024, 1024]))
        self.assertEqual(rq.parse_case("x.log@8K"), ("x", "x.log", [2]))
        # The last @ splits, so a path may hold one.
        self.assertEqual(rq.parse_case("a@b/t@3"), ("t", "a@b/t", [3]))

    def test_bad_cases(self):
        for text in ("sort.pages.gz", "@64", "t@", "t@0", "t@-1", "t@12K3", "t@6K", "t@64,",
                     "t@x"):
            with self.subTest(text=text), self.assertRaises(rq.InputError):
                rq.parse_case(text)


class FirstTouchTest(unittest.TestCase):
    PAGES = array("q", [1, 2, 1, 3, 2, 4, 2])
    WRITES = bytearray([0, 1, 0, 0, 1, 0, 0])

    def test_first_touch_writes(self):
        self.assertEqual(rq.first_touch_writes(self.PAGES, self.WRITES),
                         bytearray([1, 1, 0, 1, 1, 1, 0]))

    def test_from_first_write(self):
        # Page 1 is only read (zero page), 3 and 4 too; 2 is written at
        # once. What is left is 2, 2, 2, merged into one access, a write.
        pages, writes = rq.from_first_write(self.PAGES, self.WRITES)
        self.assertEqual(list(pages), [2])
        self.assertEqual(writes, bytearray([1]))

    def test_from_first_write_keeps_reads_after_the_write(self):
        pages, writes = rq.from_first_write(array("q", [5, 6, 5, 6, 5, 6]),
                                            bytearray([0, 1, 1, 0, 0, 0]))
        self.assertEqual(list(pages), [6, 5, 6, 5, 6])
        self.assertEqual(writes, bytearray([1, 1, 0, 0, 0]))

    def test_fetched_pages_stay_fetches_and_are_held_from_the_first(self):
        # Page 7 is code: fetched first, it is not made a write, and counts
        # from its first fetch in as-is mode; page 8 is only read.
        pages = array("q", [7, 8, 7, 8, 7])
        ops = bytearray([rq.FETCH, rq.READ, rq.READ, rq.WRITE, rq.FETCH])
        self.assertEqual(rq.first_touch_writes(pages, ops),
                         bytearray([rq.FETCH, rq.WRITE, rq.READ, rq.WRITE, rq.FETCH]))
        held, held_ops = rq.from_first_write(pages, ops)
        self.assertEqual(list(held), [7, 8, 7])
        self.assertEqual(held_ops, bytearray([rq.FETCH, rq.WRITE, rq.FETCH]))

    def test_dense_ids(self):
        self.assertEqual(rq.dense_ids(array("q", [9, 4, 9, 7])), (array("q", [0, 1, 0, 2]), 3))


class ConfigTest(unittest.TestCase):
    def test_page_cluster_replaced(self):
        text = "cpus = 2\npage_cluster = 3\n[[node]]\nmemory = \"128MiB\"\n"
        self.assertEqual(rq.config_with_page_cluster(text, 0),
                         "page_cluster = 0\ncpus = 2\n[[node]]\nmemory = \"128MiB\"\n")

    def test_page_cluster_added(self):
        self.assertEqual(rq.config_with_page_cluster("", 2), "page_cluster = 2\n\n")

    def test_lru_gen_set_first(self):
        self.assertEqual(rq.config_with_lru_gen("lru_gen = false\ncpus = 2\n"),
                         "lru_gen = true\ncpus = 2\n")

    def test_variants_with_lru_gen(self):
        with tempfile.TemporaryDirectory() as tmp:
            v = rq.mmkit_variants(None, [0, 3], tmp, lru_gen=True)
            self.assertEqual([label for label, _, _ in v],
                             ["mmkit pc0", "mmkit pc0 mglru", "mmkit pc3", "mmkit pc3 mglru"])
            with open(v[1][2], encoding="utf-8") as f:
                self.assertEqual(f.read(), "lru_gen = true\npage_cluster = 0\n\n")

    def test_page_cluster_list(self):
        self.assertEqual(rq.parse_page_clusters("0,3"), [0, 3])
        for text in ("x", "32", "-1", "1,"):
            with self.subTest(text=text), self.assertRaises(Exception):
                rq.parse_page_clusters(text)


class ReplayReportTest(unittest.TestCase):
    def test_counters(self):
        self.assertEqual(rq.parse_replay(replay_json(), 4096),
                         {"pswpin": 5, "pswpout": 7, "pgfault": 9, "pgmajfault": 3,
                          "accesses": 10, "pgreuse": 2, "code_majfault": 0, "code_refaults": 0,
                          "code_pages": 0, "file_pages_read": 0})

    def test_unclean_replays(self):
        for text in (replay_json(oom_killed=True), replay_json(verify_errors=2), "", "{}",
                     "not json", replay_json(pswpin="many")):
            with self.subTest(text=text), self.assertRaises(rq.ReplayError):
                rq.parse_replay(text, 4096)


class JoinTest(unittest.TestCase):
    REPORT = policy_report(64, 100, {"OPT": 50, "LRU": 100, "CLOCK": 110, "ARC": 90,
                                     "LINUX2Q": 120})
    COUNTERS = {"pswpin": 80, "pgmajfault": 40, "pswpout": 90, "pgfault": 200, "pgreuse": 50,
                "accesses": 100}

    def test_misses(self):
        row = rq.join("t", "t.pages.gz", "write", self.REPORT,
                      [("mmkit pc3", 3, self.COUNTERS)])
        self.assertEqual(row["policies"]["OPT"], {"misses": 50, "ratio_to_opt": 1.0})
        self.assertEqual(row["policies"]["LINUX2Q"], {"misses": 120, "ratio_to_opt": 2.4})
        (m,) = row["mmkit"]
        self.assertEqual((m["label"], m["page_cluster"], m["pswpin"], m["pgmajfault"]),
                         ("mmkit pc3", 3, 80, 40))
        self.assertEqual((m["ratio_to_opt"], m["majfault_ratio_to_opt"]), (1.6, 0.8))
        self.assertEqual(m["touch_or_cache_faults"], 110)
        self.assertEqual((row["first_touches"], row["ratios_of"]), (100, "misses"))

    def test_code_pages(self):
        # 30 major faults were code pages read from the executable, 10 of
        # them pages read before: 80 + 10 misses, 40 - 30 + 10 major ones.
        counters = dict(self.COUNTERS, code_majfault=30, code_refaults=10)
        row = rq.join("t", "t.pages.gz", "write", self.REPORT, [("mmkit", None, counters)])
        (m,) = row["mmkit"]
        self.assertEqual((m["misses"], m["major_misses"], m["pswpin"]), (90, 20, 80))
        self.assertEqual((m["ratio_to_opt"], m["majfault_ratio_to_opt"]), (1.8, 0.4))

    def test_read_around_pages_count(self):
        # 50 pages read from the executable for 20 distinct code pages: 30
        # reads beyond the first ones, though only 10 faults waited for one.
        counters = dict(self.COUNTERS, code_majfault=30, code_refaults=10, code_pages=20,
                        file_pages_read=50)
        row = rq.join("t", "t.pages.gz", "write", self.REPORT, [("mmkit", None, counters)])
        (m,) = row["mmkit"]
        self.assertEqual((m["code_reads"], m["misses"], m["major_misses"]), (30, 110, 20))

    def test_totals(self):
        # OPT: 100 + 50 faults; LRU 200; mmkit 100 + 80.
        row = rq.join("t", "t.pages.gz", "write", self.REPORT, [("mmkit", None, self.COUNTERS)],
                      totals=True)
        self.assertEqual(row["policies"]["LRU"]["ratio_to_opt"], round(200 / 150, 4))
        self.assertEqual(row["mmkit"][0]["ratio_to_opt"], 1.2)
        self.assertEqual(row["ratios_of"], "faults")
        # The table shows faults too: OPT 150, LRU 200, mmkit 180 and 140.
        self.assertEqual(rq.format_table([row]).splitlines()[2],
                         "| t | 64 pages | 100 | 150 (1.00) | 200 (1.33) | 210 (1.40) | "
                         "190 (1.27) | 220 (1.47) | 180 (1.20) | 140 (0.93) |")

    def test_opt_without_misses(self):
        report = policy_report(64, 10, {p: 0 for p in rq.POLICIES})
        report["policies"]["LRU"]["misses"] = 4
        row = rq.join("t", "t", "write", report, [("mmkit", None, self.COUNTERS)])
        self.assertEqual(row["policies"]["OPT"]["ratio_to_opt"], 1.0)
        self.assertIsNone(row["policies"]["LRU"]["ratio_to_opt"])
        self.assertIsNone(row["mmkit"][0]["ratio_to_opt"])

    def test_table(self):
        row = rq.join("sort", "s", "write", self.REPORT, [("mmkit pc0", 0, self.COUNTERS),
                                                         ("mmkit pc3", 3, self.COUNTERS)])
        lines = rq.format_table([row]).splitlines()
        self.assertEqual(lines[0], "| trace | capacity | first touches | OPT | LRU | CLOCK | ARC | "
                         "Linux two-list | mmkit pc0 reads | mmkit pc0 major faults | "
                         "mmkit pc3 reads | mmkit pc3 major faults |")
        self.assertEqual(lines[1].count("|"), 13)
        self.assertEqual(lines[2], "| sort | 64 pages | 100 | 50 (1.00) | 100 (2.00) | "
                         "110 (2.20) | 90 (1.80) | 120 (2.40) | 80 (1.60) | 40 (0.80) | "
                         "80 (1.60) | 40 (0.80) |")
        self.assertIn("ratios (in brackets) are of misses", lines[4])


class MainTest(unittest.TestCase):
    """The whole script against a stand-in for mmsim."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.trace = os.path.join(self.dir.name, "t.pages")
        with open(self.trace, "w", encoding="ascii") as f:
            f.write("R 1\nR 2\nR 3\nR 1\nR 2\nR 3\n")

    def fake_mmsim(self, body):
        path = os.path.join(self.dir.name, "mmsim")
        with open(path, "w", encoding="ascii") as f:
            f.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
        return path

    def run_main(self, argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = rq.main(argv)
        return status, out.getvalue(), err.getvalue()

    def test_row(self):
        # Two frames, pages 1 2 3 1 2 3. OPT: 3 evicts 2 (next used after
        # 1), 1 hits, 2 misses and evicts 1 (never used again), 2 and 3
        # hit: one miss. LRU evicts the page needed next: three misses.
        mmsim = self.fake_mmsim(f"echo '{replay_json(accesses=6, pswpin=2, pgmajfault=2)}'")
        status, out, err = self.run_main(["--mmsim", mmsim, "--json", f"{self.trace}@2"])
        self.assertEqual((status, err), (0, ""))
        row = json.loads(out)
        self.assertEqual((row["trace"], row["capacity_pages"], row["first_touches"]), ("t", 2, 3))
        self.assertEqual(row["policies"]["OPT"]["misses"], 1)
        self.assertEqual(row["policies"]["LRU"]["misses"], 3)
        self.assertEqual(row["mmkit"][0]["ratio_to_opt"], 2.0)

    def test_replayed_trace_and_arguments(self):
        # The stand-in copies its arguments and the trace it is given.
        log = os.path.join(self.dir.name, "args")
        copy = os.path.join(self.dir.name, "replayed.gz")
        mmsim = self.fake_mmsim(f"echo \"$@\" > {log}; cp \"$2\" {copy}; "
                                f"echo '{replay_json(accesses=6)}'")
        status, _, err = self.run_main(["--mmsim", mmsim, "--page-cluster", "0",
                                        f"{self.trace}@2"])
        self.assertEqual((status, err), (0, ""))
        with open(log, encoding="ascii") as f:
            args = f.read().split()
        self.assertEqual(args[2:7], ["--format", "pages", "--json", "--memory", "8192"])
        self.assertEqual(args[7], "--config")
        self.assertEqual(list(ps.page_accesses(copy)),
                         [(1, True), (2, True), (3, True), (1, False), (2, False), (3, False)])

    def test_bad_input_exits_2(self):
        mmsim = self.fake_mmsim(f"echo '{replay_json(accesses=6)}'")
        bad = os.path.join(self.dir.name, "bad.pages")
        with open(bad, "w", encoding="ascii") as f:
            f.write("R 1\nF 2\n")
        for argv, message in (
                (["--mmsim", mmsim, f"{self.trace}"], "expected [NAME=]TRACE@CAPACITY"),
                (["--mmsim", mmsim, f"{self.dir.name}/none@2"], "No such file"),
                (["--mmsim", mmsim, f"{bad}@2"], "bad.pages:2:"),
                (["--mmsim", os.path.join(self.dir.name, "nope"), f"{self.trace}@2"],
                 "not an executable file"),
                (["--mmsim", self.fake_mmsim("echo 'x.toml:3: bad key' >&2; exit 2"),
                  f"{self.trace}@2"], "x.toml:3: bad key")):
            with self.subTest(argv=argv):
                status, out, err = self.run_main(argv)
                self.assertEqual((status, out), (2, ""))
                self.assertIn(message, err)
                self.assertEqual(err.count("\n"), 1)

    def test_failed_replay_exits_1(self):
        for body in ("exit 1", f"echo '{replay_json(accesses=6, oom_killed=True)}'",
                     f"echo '{replay_json(accesses=5)}'"):
            with self.subTest(body=body):
                status, out, err = self.run_main(["--mmsim", self.fake_mmsim(body),
                                                  f"{self.trace}@2"])
                self.assertEqual((status, out), (1, ""))
                self.assertTrue(err.startswith("replay_quality: "))


if __name__ == "__main__":
    unittest.main()
