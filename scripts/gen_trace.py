#!/usr/bin/env python3
"""Synthetic page-access traces in policy_sim.py's `pages` format.

Each kind stresses replacement in its own way, so policy_sim.py can show
where a policy departs from OPT:

  loop    a cyclic scan over --pages N pages, --passes times; with N just
          above the capacity, LRU and CLOCK miss on every access after the
          first pass while OPT keeps most of the loop resident
  zipf    --accesses draws from N pages with probability proportional to
          1/rank^theta (--theta, 0.9 by default): a skewed, stationary
          working set
  scan    a hot set of --hot H pages accessed uniformly, interrupted after
          every --scan-every K hot accesses by one sequential pass over
          --scan-length S pages never seen before; a scan-resistant policy
          keeps the hot set; --accesses counts every line, scans included
  random  --accesses uniform draws from N pages

Pages are numbered from 0 (the scan kind's fresh pages follow the hot set).
Every access is a write with probability --write-ratio. The output is the
same for the same arguments and --seed; the writes come from their own
generator, so the page sequence does not depend on --write-ratio. An
output name ending in .gz is gzipped (with no timestamp, so reruns produce
identical files).
"""
import argparse
import itertools
import random
import sys

from policy_sim import write_pages


def loop_pages(args, rng):
    for _ in range(args.passes):
        yield from range(args.pages)


def zipf_pages(args, rng):
    weights = (1 / rank**args.theta for rank in range(1, args.pages + 1))
    return rng.choices(range(args.pages), cum_weights=list(itertools.accumulate(weights)),
                       k=args.accesses)


def scan_pages(args, rng):
    def rounds():
        fresh = args.hot
        while True:
            for _ in range(args.scan_every):
                yield rng.randrange(args.hot)
            yield from range(fresh, fresh + args.scan_length)
            fresh += args.scan_length

    return itertools.islice(rounds(), args.accesses)


def random_pages(args, rng):
    return (rng.randrange(args.pages) for _ in range(args.accesses))


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def ratio(text):
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    common.add_argument("--write-ratio", type=ratio, default=0.0,
                        help="probability that an access is a write (default 0)")
    common.add_argument("-o", "--output", help="output file (default stdout); .gz to gzip it")
    kinds = parser.add_subparsers(dest="kind", required=True)

    def kind(name, summary, generate):
        sub = kinds.add_parser(name, parents=[common], help=summary, description=summary)
        sub.set_defaults(generate=generate)
        return sub

    loop = kind("loop", "a cyclic scan over N pages", loop_pages)
    loop.add_argument("--pages", type=positive, required=True, help="pages in the loop")
    loop.add_argument("--passes", type=positive, default=10,
                      help="times round the loop (default 10)")

    zipf = kind("zipf", "Zipf-distributed draws from N pages", zipf_pages)
    zipf.add_argument("--pages", type=positive, required=True, help="pages to draw from")
    zipf.add_argument("--theta", type=float, default=0.9, help="skew; 0 is uniform (default 0.9)")
    zipf.add_argument("--accesses", type=positive, required=True, help="accesses to write")

    scan = kind("scan", "a hot set interrupted by one-time scans of fresh pages", scan_pages)
    scan.add_argument("--hot", type=positive, required=True, help="pages in the hot set")
    scan.add_argument("--scan-every", type=positive, required=True,
                      help="hot accesses between two scans")
    scan.add_argument("--scan-length", type=positive, required=True,
                      help="fresh pages each scan touches once")
    scan.add_argument("--accesses", type=positive, required=True,
                      help="accesses to write, scans included")

    uniform = kind("random", "uniform draws from N pages", random_pages)
    uniform.add_argument("--pages", type=positive, required=True, help="pages to draw from")
    uniform.add_argument("--accesses", type=positive, required=True, help="accesses to write")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    pages = args.generate(args, random.Random(args.seed))
    writes = random.Random(f"{args.seed}:writes")
    write_pages(args.output, ((page, writes.random() < args.write_ratio) for page in pages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
