#!/usr/bin/env bash
# Installs what mmkit needs on Debian (12 or newer) that is not there yet.
set -euo pipefail
pkgs=(cmake ninja-build g++ clang libclang-rt-14-dev clang-format python3 pkg-config
      libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev libtomlplusplus-dev libfmt-dev
      libjemalloc-dev libgoogle-perftools-dev libmimalloc-dev zlib1g-dev liblz4-dev libzstd-dev procps util-linux
      git redis-tools)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
