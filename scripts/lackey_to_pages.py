#!/usr/bin/env python3
"""Converts a valgrind lackey log into a `pages` trace for policy_sim.py.

A lackey log (valgrind --tool=lackey --trace-mem=yes) has one line per
instruction fetch and data access, so a few seconds of a program make
hundreds of megabytes. As a `pages` trace, with back-to-back accesses to
one page collapsed and gzipped, it is small enough to keep in the
repository (bench/traces/). The conversion keeps what policy_sim.py would
read from the log itself with the same options, so simulating either gives
the same numbers; a collapsed access is a write if any access it stands for
was, else a fetch (X) if any was. Instruction fetches are X lines, which
`mmsim replay` serves from a stand-in executable's file pages (code), and
which policy_sim.py counts as reads.
"""
import argparse
import sys

from policy_sim import TraceError, page_ops, write_pages


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-only", action="store_true",
                        help="drop instruction fetches (I lines)")
    parser.add_argument("--no-collapse", action="store_true",
                        help="keep back-to-back accesses to one page")
    parser.add_argument("log", help="lackey log, optionally gzipped")
    parser.add_argument("out", help="pages trace to write; gzipped when it ends in .gz")
    args = parser.parse_args(argv)
    try:
        accesses = page_ops(args.log, "lackey", args.data_only, not args.no_collapse)
        write_pages(args.out, accesses)
    except TraceError as err:
        print(err, file=sys.stderr)
        return 2
    except (OSError, EOFError) as err:
        print(f"{args.log}: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
