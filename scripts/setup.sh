#!/usr/bin/env bash
# setup.sh: make this machine ready to build, run and test bootd (Debian 12, as root).
# Idempotent: installs only what is missing. Called by the README's commands and by .ci/run.
#
#   bash scripts/setup.sh            # Debian packages + Node.js + npm ci + build
#   SETUP_SKIP_APT=1 bash scripts/setup.sh   # only npm ci + build (no root needed)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Every Debian package the tests and the demo use. Client packages only: no
# server package (tftpd-hpa, dnsmasq, isc-dhcp-server) is installed, because
# those start services in the root namespace.
APT_PACKAGES=(
  iproute2        # ip netns, veth, bridge: every network test runs in its own namespaces
  ethtool         # turn off tx checksum offload on veths behind the impairing relay
  procps          # ps/pkill for diagnostics in test logs
  iputils-ping    # reachability check when a test network comes up
  gcc libc6-dev   # builds test/tools/impair-relay.c (the lossy-link forwarder) and the fastudp addon
  libuv1-dev      # uv.h for the fastudp addon when Node ships no headers of its own
  tftp-hpa        # real TFTP clients for interop tests ...
  atftp
  curl
  busybox         # busybox tftp, and udhcpc as a DHCP client
  isc-dhcp-client # dhclient (run with its own no-op script: it never touches the host's config)
  dhcpcd-base     # dhcpcd binary only; the dhcpcd5 package would start a client service on the host
  dnsmasq-base    # dnsmasq as a DHCP relay in the relay test (the dnsmasq package would start a service)
  pxelinux        # BIOS boot loader placed by `bootd setup` (firmware-path tests)
  syslinux-common # ldlinux.c32 / ldlinux.e64
  syslinux-efi    # x64 UEFI boot loader
  ipxe            # undionly.kpxe, snponly.efi
  ca-certificates
  # The image builder (bootd images build; test/images/real-build.test.ts):
  debootstrap     # buildos root (minbase)
  cpio            # packs initrds (newc)
  kmod            # depmod at image-build time; modinfo in the NVIDIA payload test
  make            # the NVIDIA kernel modules, built at image-build time against the image's kernel (gcc above)
  jq              # bee's collectors run under test with the image's own tools (test/images/bee-gpu.test.ts)
  openssl         # signs the NVIDIA modules with a machine owner key (recipe nvidia: sign:) and checks the signature in tests
  zstd xz-utils   # initrd compression
  openssh-client  # ssh-keygen for bootd's own key pair (smoke-test login)
  git             # recipe_commit in manifest.json
  # The netboot lab (bootd lab; test/lab/netboot.test.ts):
  qemu-system-x86 # the VMs (-boot n)
  ipxe-qemu       # QEMU's NIC option ROMs: iPXE for SeaBIOS and OVMF
  ovmf            # UEFI firmware (OVMF_CODE_4M.fd, OVMF_VARS_4M.fd; .secboot and .ms for Secure Boot)
  qemu-system-arm # the arm64 lab mode: qemu-system-aarch64 -M virt (TCG)
  qemu-efi-aarch64 # its UEFI firmware (AAVMF)
  mtools          # the UEFI HTTP Boot disk of the signed chain (src/bootconfig/efi-disk.ts: mformat, mcopy)
  # The shipped service (test/packaging/systemd-unit.test.ts: systemd-analyze verify; nothing is started):
  systemd
  # The admin listener's tests: a real Prometheus and promtool (test/admin/prometheus.test.ts starts its
  # own; the package's service is kept from starting, see below) and a real browser for the dashboard
  prometheus
  chromium
  # leases in PostgreSQL (--state-url): the tests initdb clusters of their own, as user postgres, on a
  # unix socket in a temporary folder (test/helpers/postgres.ts); the package's own cluster is created
  # by its install but, like every service here, not started
  postgresql-15
)

log() { printf '[setup] %s\n' "$*" >&2; }

missing=()
if [ "${SETUP_SKIP_APT:-0}" != 1 ]; then
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { log "need root to install: ${missing[*]}"; exit 1; }
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # packages such as prometheus start their service on install; a policy-rc.d that says "no" (exit
    # 101, Debian's policy interface) keeps every service from starting, so none is left running and
    # we never have to stop one. Only ours is removed afterwards; an existing one is left alone.
    policy=/usr/sbin/policy-rc.d
    ours=0
    if [ ! -e "$policy" ]; then
      ours=1
      printf '#!/bin/sh\n# bootd setup.sh: no service starts during this install\nexit 101\n' >"$policy"
      chmod 755 "$policy"
      trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ "$ours" = 1 ]; then rm -f "$policy"; trap - EXIT; fi
  fi
fi

# The Secure Boot chain (bootd setup places shimx64.efi and grubx64.efi): Debian's signed shim and
# netboot GRUB. Unpacked from their .debs into $SIGNED_DIR, not installed: shim-signed's postinst runs
# grub-install on a UEFI machine with /boot/efi/EFI/debian, and a boot server's own boot loader is not
# ours to touch. An installed shim-signed / grub-efi-amd64-signed is used as it is (src/bootconfig/bootloaders.ts).
SIGNED_DIR=/usr/local/lib/bootd/signed
SIGNED_PACKAGES=(shim-signed grub-efi-amd64-signed)
# arm64's (issue 25) come through apt with arm64 as its only architecture and package lists of their own
# (the same as the image builder's AptSource): the host's dpkg configuration is not changed.
SIGNED_ARM64=(shim-signed grub-efi-arm64-signed)
ARM64_LISTS=/var/cache/bootd/apt-lists-arm64
ARM64_APT=(-o APT::Architecture=arm64 -o APT::Architectures=arm64 -o Dir::State::Lists=$ARM64_LISTS -o Debug::NoLocking=1)
unpack_signed() { # <apt options...> -- <package> <tag>
  local opts=() p tag want_v tmp
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift; p=$1; tag=$2
  want_v=$(apt-cache "${opts[@]}" policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -z "$want_v" ] || [ "$want_v" = "(none)" ]; then apt-get "${opts[@]}" update -qq; want_v=$(apt-cache "${opts[@]}" policy "$p" | awk '/Candidate:/ {print $2}'); fi
  if [ "$(cat "$SIGNED_DIR/$tag.version" 2>/dev/null)" != "$want_v" ]; then
    log "unpacking $tag $want_v into $SIGNED_DIR (not installed: see setup.sh)"
    tmp=$(mktemp -d)
    chmod 755 "$tmp"
    (cd "$tmp" && apt-get "${opts[@]}" -o APT::Sandbox::User=root download -qq "$p=$want_v" 2>/dev/null)
    mkdir -p "$SIGNED_DIR"
    dpkg-deb -x "$tmp"/"$p"_*.deb "$SIGNED_DIR"
    echo "$want_v" >"$SIGNED_DIR/$tag.version"
    rm -rf "$tmp"
  fi
}
if [ "${SETUP_SKIP_APT:-0}" != 1 ] && [ "$(id -u)" = 0 ]; then
  for p in "${SIGNED_PACKAGES[@]}"; do unpack_signed -- "$p" "$p"; done
  mkdir -p "$ARM64_LISTS/partial"
  for p in "${SIGNED_ARM64[@]}"; do unpack_signed "${ARM64_APT[@]}" -- "$p" "$p-arm64"; done
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then log "Node.js >= 18.19 is required (found $(node --version))"; exit 1; fi

# npm ci only when the lock file changed since the last install
stamp=node_modules/.bootd-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi
log "build"
npm run --silent build
log "ready"
