#!/usr/bin/env bash
# Regenerates the synthetic traces that compare page-replacement policies
# (scripts/policy_sim.py), sized relative to a capacity in pages. They are
# not stored: they take seconds to make, and the same capacity always gives
# the same traces.
#
#   loop  a cyclic scan over 1.1 x capacity pages, 20 passes: just too big
#         for LRU and CLOCK, which then miss on every access
#   zipf  200 x capacity draws from 4 x capacity pages, theta 0.9
#   scan  a hot set of 3/4 x capacity pages; after every 2 x capacity hot
#         accesses, one pass over capacity pages never seen before, which
#         flushes an LRU; 200 x capacity accesses
#
# A quarter of the accesses are writes: policy_sim.py ignores them, a
# replay in mmkit dirties those pages.
#
# usage: bench/traces/make_synthetic.sh [CAPACITY [OUTDIR]]
#        (defaults: 1024 pages, bench/traces/synthetic/, which git ignores)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
capacity=${1:-1024}
out=${2:-$here/synthetic}
gen() { python3 "$here/../../scripts/gen_trace.py" "$@" --write-ratio 0.25; }

mkdir -p "$out"
gen loop --pages $((capacity * 11 / 10)) --passes 20 -o "$out/loop.pages.gz"
gen zipf --pages $((capacity * 4)) --theta 0.9 --accesses $((capacity * 200)) -o "$out/zipf.pages.gz"
gen scan --hot $((capacity * 3 / 4)) --scan-every $((capacity * 2)) --scan-length "$capacity" \
  --accesses $((capacity * 200)) -o "$out/scan.pages.gz"
echo "wrote $out/{loop,zipf,scan}.pages.gz; compare the policies with e.g."
echo "  python3 scripts/policy_sim.py --capacity $((capacity / 2)),$capacity,$((capacity * 2)) $out/zipf.pages.gz"
