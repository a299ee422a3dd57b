#!/usr/bin/env bash
# Installs the Debian packages the build and tests need (DPDK 22.11, libclang for bindgen,
# pkg-config), unless they are already there. Needs root (or sudo) only when it installs.
set -euo pipefail

need=()
pkg-config --exists libdpdk 2>/dev/null || need+=(dpdk dpdk-dev libdpdk-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev clang)
command -v dpdk-testpmd >/dev/null || need+=(dpdk)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
# De-duplicate, keep order.
mapfile -t need < <(printf '%s\n' "${need[@]}" | awk '!seen[$0]++')
echo "install-deps: installing ${need[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq -o DPkg::Lock::Timeout=300
$sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${need[@]}" >/dev/null
pkg-config --modversion libdpdk >&2
