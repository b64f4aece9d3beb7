#!/bin/bash
# Install everything qimg needs to build and test on Debian 12: compilers,
# Meson, the libraries the library links, cmocka for unit tests, clang's
# libFuzzer runtime for fuzzing, and the real qemu-img/qemu-io (plus the
# libvhdi/libvmdk tools) that the interop tests compare against.
#
# Run as root (or with sudo available).  Idempotent: when every package is
# already installed it changes nothing and does not touch the network.
set -euo pipefail

PACKAGES=(
    # build
    gcc clang libclang-rt-14-dev llvm lld meson ninja-build pkg-config
    # libraries
    zlib1g-dev libzstd-dev liburing-dev libjson-c-dev libbz2-dev libisal-dev
    libnbd-dev libcurl4-openssl-dev libssl-dev
    # tests
    libcmocka-dev qemu-utils python3 libvhdi-utils libvmdk-utils
    coreutils diffutils findutils gawk sed grep xxd util-linux strace bzip2 zstd
    # bench
    bc
)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root (or install sudo)" >&2; exit 1; }
    SUDO=(sudo -n)
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
        missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# Fail loudly if anything is still missing.
for p in "${missing[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
        { echo "install-deps: $p failed to install" >&2; exit 1; }
done
echo "install-deps: done"
