#!/usr/bin/env bash
# demo.sh: bootd serving a sample TFTP root on 127.0.0.1, fetched by real clients.
# (The QEMU netboot lab replaces this demo when the lab issue lands.)
# Only loopback is used: no DHCP runs, nothing is sent beyond this machine.
#   DEMO_ONCE=1 bash scripts/demo.sh    # fetch, show the log lines, stop
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PORT=${DEMO_PORT:-6969}
STATE=${BOOTD_STATE:-$PWD/state}
ROOT=$STATE/demo-root
mkdir -p "$ROOT"
cp -r boot/sample-root/. "$ROOT/"
[ -f "$ROOT/initrd.img" ] || head -c $((16 * 1024 * 1024)) /dev/urandom >"$ROOT/initrd.img"

LOG=$STATE/demo-bootd.log
node bin/bootd serve --tftp-root "$ROOT" --listen 127.0.0.1 --tftp-port "$PORT" --log-format json 2>"$LOG" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q '"tftp listening"' "$LOG" && break; kill -0 $PID || { cat "$LOG"; exit 1; }; sleep 0.1; done

echo "bootd is serving $ROOT on 127.0.0.1:$PORT (pid $PID)"
OUT=$(mktemp -d)
curl -sS -o "$OUT/hello.txt" "tftp://127.0.0.1:$PORT/hello.txt" && cat "$OUT/hello.txt"
curl -sS --tftp-blksize 1468 -o "$OUT/initrd.img" "tftp://127.0.0.1:$PORT/initrd.img"
atftp --option "blksize 1468" --option "windowsize 16" -g -r initrd.img -l "$OUT/initrd-w16.img" 127.0.0.1 "$PORT" >/dev/null 2>&1
cmp "$OUT/initrd.img" "$ROOT/initrd.img" && cmp "$OUT/initrd-w16.img" "$ROOT/initrd.img" && echo "initrd.img (16 MiB) fetched intact by curl (lock-step) and atftp (windowsize 16)"
curl -sS -o /dev/null "tftp://127.0.0.1:$PORT/pxelinux.cfg/0A000001" 2>/dev/null || echo "missing config name answered with ERROR 1, as PXELINUX expects"
rm -rf "$OUT"
echo "--- bootd's transfer log:"
grep -E '"msg":"tftp (transfer|request refused)"' "$LOG" | node -e '
  const lines = require("fs").readFileSync(0, "utf8").trim().split("\n");
  for (const l of lines) { const r = JSON.parse(l);
    const what = r.outcome === "refused" ? `ERROR ${r.code} (${r.reason})` : `${r.bytes} bytes, blksize ${r.blksize}, windowsize ${r.windowsize}, ${r.durationMs} ms`;
    console.log(`${r.outcome.padEnd(9)} ${String(r.file).padEnd(24)} ${what}`); }'
if [ "${DEMO_ONCE:-0}" = 1 ]; then exit 0; fi
echo "--- still serving; try: curl tftp://127.0.0.1:$PORT/hello.txt   (Ctrl-C stops bootd)"
wait $PID
