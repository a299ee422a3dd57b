#!/usr/bin/env bash
# Installs the Debian packages the build and tests need (DPDK 22.11, libclang for bindgen,
# pkg-config), unless they are already installed. Needs root (or sudo) only when it installs.
set -euo pipefail

wanted=(dpdk dpdk-dev libdpdk-dev libclang-dev clang pkg-config)
need=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
[ ${#need[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${need[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq -o DPkg::Lock::Timeout=300
$sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${need[@]}" >/dev/null
echo "install-deps: DPDK $(pkg-config --modversion libdpdk)" >&2
