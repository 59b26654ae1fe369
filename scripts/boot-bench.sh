#!/usr/bin/env bash
# boot-bench.sh: ../shared/bench/boot-bench.sh for the five firmware paths of
# docs/lab.md, dnsmasq (+ tftpd-hpa, busybox httpd) and bootd side by side in
# one run, RUNS boots each; prints the median time from QEMU start to the
# guest's marker and the ratio bootd/dnsmasq (below 1: bootd faster).
#   sudo bash scripts/boot-bench.sh            # all modes, RUNS=3
#   MODES="1 4" RUNS=1 sudo bash scripts/boot-bench.sh
#   MODES="6 7 9" ...  # Secure Boot (lab mode 6), UEFI HTTP Boot (7) and arm64 (9), with mode 5 as the same
#                      # firmware's PXE path: the shared bench drives neither, so these go to
#                      # scripts/boot-bench-uefi.mjs (bee, shim/GRUB or iPXE; dnsmasq set up by hand)
#   SERVERS=bootd KEEP=1 VERBOSE=1 ...       # one server only; the bench keeps its run dirs
#   INTERLEAVE=1 ...   # alternate the servers boot by boot (RUNS rounds of one boot each, the first
#                      # server changing every round), so that a drift in the shared machine's speed
#                      # hits both alike (slower: one bench start per boot)
#   BOOTD_ENV="env NAME=value" ...   # prefix for bootd's command line (A/B runs of an environment knob)
#   SERVERS="dnsmasq dnsmasq-b" INTERLEAVE=1 ...   # an A/A run: a name starting with "bootd" runs
#                      # bootd, any other the bench's default (dnsmasq); the ratio is second/first.
#                      # It measures what the harness alone makes of two identical servers.
# The bench runs every server inside its own namespace (e2e-pxe-<pid>).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BENCH=${BENCH:-$PWD/../shared/bench/boot-bench.sh}
RUNS=${RUNS:-3}
MODES=${MODES:-1 2 3 4 5}
uefi=""
for m in $MODES; do
  case $m in 6) uefi="$uefi sb" ;; 7) uefi="$uefi http pxe" ;; 9) uefi="$uefi arm64" ;; esac
done
MODES=$(echo " $MODES " | sed 's/ 6 / /g; s/ 7 / /g; s/ 9 / /g')
OUT=${OUT:-/tmp/bootd-boot-bench}
mkdir -p "$OUT"
[ -f dist/cli/main.js ] || npm run --silent build
# bootd as the bench's SERVER_CMD: no hosts/ (cd into the run dir), every machine is
# unknown and boots (--unknown-hosts boot); the loader follows the bench's BOOT; the
# bench's own boot.ipxe in the TFTP root wins over bootd's generated one; the guest's
# upload lands in {run}/state/uploads/<mac>/ through the write port. With --http-port,
# mode 1's iPXE ROM gets pxelinux.0 plus option 210 = http://{addr}:80/, so PXELINUX
# reads the bench's own config, kernel and initrd over iPXE's HTTP (--pxelinux-http auto).
BOOTD_CMD="cd {run} && exec ${BOOTD_ENV:-} $(command -v node) $PWD/bin/bootd serve --interface {iface} --listen {addr} \
 --dhcp-range {range_start}-{range_end} --unknown-hosts boot --default-loader \$([ -n '{ipxe_boot}' ] && echo ipxe || echo pxelinux) \
 --tftp-root {tftproot} --tftp-port 69 --http-port 80 --report-tftp-port {upload_port} --state {run}/state --no-smoke \
 --dhcp-probe-ms 300 --log-format json"
declare -A ENV=(
  [1]="FIRMWARE=bios BOOT=pxelinux"
  [2]="FIRMWARE=bios BOOT=ipxe IPXE_PROTO=http"
  [3]="FIRMWARE=uefi BOOT=pxelinux"
  [4]="FIRMWARE=uefi NIC_ROM=none BOOT=pxelinux"
  [5]="FIRMWARE=uefi NIC_ROM=none BOOT=ipxe IPXE_PROTO=http"
)
median() { sort -n | awk '{a[NR]=$1} END{if(NR==0){print "-"; exit} printf "%.2f", (NR%2?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2)}'; }
SERVERS=${SERVERS:-dnsmasq bootd}
read -r A B _ <<<"$SERVERS"
printf '%-5s %-44s %10s %10s %7s\n' mode "bench settings" "$A" "${B:--}" ratio | tee "$OUT/summary.txt"
for m in $MODES; do
  if [ "${INTERLEAVE:-0}" = 1 ]; then rounds=$RUNS; per=1; else rounds=1; per=$RUNS; fi
  for server in $SERVERS; do : >"$OUT/mode$m-$server.log"; done
  for round in $(seq 1 "$rounds"); do
    order=$SERVERS
    # interleaved: every other round the other server goes first (ABBA), so that
    # whatever one boot leaves behind (the namespace's teardown) hits both alike
    if [ "$rounds" -gt 1 ] && [ $((round % 2)) = 0 ]; then order=$(echo "$order" | tr ' ' '\n' | tac | tr '\n' ' '); fi
    for server in $order; do
      log="$OUT/mode$m-$server.log"
      one="$OUT/mode$m-$server.round.log"
      # the bench sometimes dies before its first boot (its `busybox | head -1` under
      # pipefail can end on SIGPIPE, rc 141, in a quarter second and often several times
      # in a row): try again, at most 10 times, and say so when a round still has no result
      for attempt in $(seq 1 10); do
        if [[ "$server" == bootd* ]]; then
          env ${ENV[$m]} RUNS="$per" UPLOAD_PORT=1069 SERVER_CMD="$BOOTD_CMD" bash "$BENCH" run >"$one" 2>&1 || true
        else
          env ${ENV[$m]} RUNS="$per" bash "$BENCH" run >"$one" 2>&1 || true
        fi
        grep -q 'result=' "$one" && break
      done
      grep -q 'result=' "$one" || echo "round $round: no result from the bench after $attempt attempts (last output below)" | tee -a "$log" >&2
      cat "$one" >>"$log" && rm -f "$one"
    done
  done
  d=$( (grep -oE 'result=PASS marker=[0-9.]+' "$OUT/mode$m-$A.log" || true) | sed 's/.*marker=//' | median)
  b=-
  [ -n "$B" ] && b=$( (grep -oE 'result=PASS marker=[0-9.]+' "$OUT/mode$m-$B.log" || true) | sed 's/.*marker=//' | median)
  r=$(awk -v a="$b" -v b="$d" 'BEGIN{ if (a=="-"||b=="-"||b==0) print "-"; else printf "x%.2f", a/b }')
  printf '%-5s %-44s %9ss %9ss %7s\n' "$m" "${ENV[$m]}" "$d" "$b" "$r" | tee -a "$OUT/summary.txt"
done
[ -z "$(echo $MODES)" ] || echo "logs: $OUT (boots passed per log: $(grep -c 'result=PASS' "$OUT"/mode*.log | tr '\n' ' '))"
[ -z "$uefi" ] || MODES="$uefi" RUNS="$RUNS" node scripts/boot-bench-uefi.mjs | tee -a "$OUT/summary.txt"
