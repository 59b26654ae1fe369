#!/usr/bin/env bash
# fuzz.sh: the long run of the fuzz harness (issue 19): 1,000,000 structure-aware
# mutated DHCP packets and 1,000,000 TFTP packets (requests, and bad packets into
# live transfers) at bootd inside a bootd- test namespace, then real clients
# (udhcpc, tftp-hpa) must be served. Prints the FUZZ REPORT line: packets sent
# and counted by bootd, crashes, RSS before and after, bootd's counters.
# CI runs the same test with 20,000 of each (test/fuzz/fuzz.test.ts).
#
#   sudo bash scripts/fuzz.sh              # 1,000,000 of each, seed 19
#   PACKETS=200000 SEED=7 bash scripts/fuzz.sh
#
# Needs root (namespaces). At the fuzzer's pace (2,000 packets/s per protocol)
# a million takes about 9 minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
npm run build >/dev/null
BOOTD_FUZZ_PACKETS="${PACKETS:-1000000}" BOOTD_FUZZ_SEED="${SEED:-19}" \
  npx vitest run test/fuzz --testTimeout=3600000 --reporter=default 2>&1 | tee /tmp/bootd-fuzz.log | grep -E 'FUZZ REPORT|Tests|FAIL|✓|×'
