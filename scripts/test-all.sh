#!/usr/bin/env bash
# Every test mmkit has: the layer and format checks, the full suite in a
# release build and in an ASan+UBSan build, the concurrency tests under TSan,
# and each fuzz target for a bounded number of runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

echo "== layer order and formatting =="
python3 scripts/check_layers.py
python3 scripts/check_format.py

echo "== script tests (the replacement-policy simulator) =="
python3 -m unittest discover -s scripts -p 'test_*.py'

echo "== release build, all tests =="
cmake --preset release >/dev/null
cmake --build build/release -j "$jobs"
ctest --preset release -j "$jobs"

echo "== ASan+UBSan build, all tests =="
cmake --preset asan >/dev/null
cmake --build build/asan -j "$jobs" --target mmkit_tests mmkit_concurrency_tests mmsim
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ctest --preset asan -j "$jobs"

echo "== TSan build, concurrency tests =="
cmake --preset tsan >/dev/null
cmake --build build/tsan -j "$jobs" --target mmkit_concurrency_tests
# TSan's shadow layout needs the classic address-space layout on kernels with
# large mmap randomisation; setarch -R turns randomisation off for the run.
TSAN_OPTIONS=halt_on_error=1 setarch "$(uname -m)" -R ctest --preset tsan

echo "== fuzz targets (libFuzzer, bounded) =="
cmake --preset fuzz >/dev/null
cmake --build build/fuzz -j "$jobs"
for f in build/fuzz/tests/fuzz/fuzz_*; do
  name=$(basename "$f")
  corpus=tests/fuzz/corpus/${name#fuzz_}
  mkdir -p "build/fuzz/corpus-$name"
  args=("build/fuzz/corpus-$name")
  [ -d "$corpus" ] && args+=("$corpus")
  "$f" -runs=20000 -max_total_time=60 -rss_limit_mb=4096 "${args[@]}" 2>&1 | tail -n 2
done
echo "all test stages passed"
