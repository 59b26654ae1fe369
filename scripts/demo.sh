#!/usr/bin/env bash
# demo.sh: the netboot lab. bootd netboots a QEMU VM (SeaBIOS, QEMU's iPXE
# ROM, PXELINUX) into the bee audit image inside a network namespace of its
# own, and prints the host's timeline: DHCP, every file served, kernel
# started, userland up, audit report received. Builds bee first if needed.
# Needs root (namespaces, taps). Nothing leaves the namespace.
#   LAB_ARGS="--mode 4" bash scripts/demo.sh    # another firmware path (1-5)
#   LAB_ARGS="--vms 3 --mode 2" npm run demo
#   DEMO_STAY=1 npm run demo                     # keep the VM running until Ctrl-C
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (network namespaces, taps)" >&2; exit 1; }
[ -f dist/cli/main.js ] || npm run --silent build
STATE=${BOOTD_STATE:-/var/lib/bootd}
once=--once
[ "${DEMO_STAY:-0}" = 1 ] && once=
# shellcheck disable=SC2086
exec node bin/bootd lab --mode 1 --image bee $once --state "$STATE" ${LAB_ARGS:-}
