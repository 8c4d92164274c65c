#!/usr/bin/env bash
# Installs whatever is missing for sub0 on a Debian 12 machine (as root), then builds.
# Idempotent and quick when everything is there: the README's two commands both start with it.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# Debian packages: the data plane (WireGuard, eBPF, nftables), the lab (iproute2), the MQTT broker
# for tests and benchmarks (Mosquitto and its clients), benchmarks, and the boot image's build
# and boot tools (dpkg-deb, depmod, zstd, objcopy, mkfs.vfat, mtools, sfdisk, mksquashfs; QEMU and OVMF; cpio
# reads the initramfs back in the tests). The image's own inputs are pinned in bootimage/inputs.json.
APT_PACKAGES=(wireguard-go wireguard-tools iproute2 clang llvm libbpf-dev bpftool nftables iperf3 iputils-ping procps kmod util-linux mosquitto mosquitto-clients
  dpkg zstd binutils dosfstools mtools fdisk cpio squashfs-tools qemu-system-x86 ovmf)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { say "missing Debian packages (${missing[*]}): run as root"; exit 1; }
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v node >/dev/null || { say "Node.js 20+ is required (node not found)"; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { say "Node.js 20+ is required (found $(node --version))"; exit 1; }

# npm ci only when the lockfile changed since the last install.
stamp=node_modules/.sub0-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

say "building"
npm run --silent build >/dev/null

# `sub0` on the PATH (the bundle resolves its native parts from this checkout).
if [ "$(id -u)" = 0 ] && [ -d /usr/local/bin ]; then
  ln -sf "$PWD/dist/sub0.js" /usr/local/bin/sub0
fi
