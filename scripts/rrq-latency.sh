#!/usr/bin/env bash
# rrq-latency.sh: a read request's time to its first answer, bootd then dnsmasq, on
# loopback inside a fresh bootd- namespace (no link anywhere); as root.
#   sudo bash scripts/rrq-latency.sh                  # N=40 requests 100 ms apart
#   N=300 IDLE=0 sudo bash scripts/rrq-latency.sh     # back to back
#   FILE=/path/to/file ...                            # what is requested (default: the boot bench's kernel)
# docs/performance.md (session 11) has the figures this gave.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${N:-40}; IDLE=${IDLE:-100}
FILE=${FILE:-/var/tmp/bootd-boot-bench/kernel/vmlinuz}
[ -f "$FILE" ] || { echo "no $FILE (run scripts/boot-bench.sh once, or set FILE)" >&2; exit 1; }
[ -f dist/cli/main.js ] || npm run --silent build
NS=bootd-rrq-$$-$RANDOM
ROOT=$(mktemp -d /tmp/bootd-rrq.XXXXXX)
cp "$FILE" "$ROOT/file"
SP=""
cleanup() { if [ -n "$SP" ]; then kill "$SP" 2>/dev/null || true; wait "$SP" 2>/dev/null || true; fi; ip netns del "$NS" 2>/dev/null || true; rm -rf "$ROOT" "$ROOT.bootd.log"; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
wait_udp69() { for _ in $(seq 1 100); do ip netns exec "$NS" ss -Huln | grep -q ':69 ' && return 0; sleep 0.1; done; echo "server did not bind udp/69" >&2; return 1; }
ip netns exec "$NS" node bin/bootd serve --tftp-root "$ROOT" --tftp-port 69 --listen 127.0.0.1 --log-level warn >"$ROOT.bootd.log" 2>&1 &
SP=$!; wait_udp69; sleep 1   # the listener binds before the warm-up is over
echo -n "bootd:   "; ip netns exec "$NS" python3 scripts/rrq-latency.py file "$N" "$IDLE"
kill "$SP"; wait "$SP" 2>/dev/null || true
ip netns exec "$NS" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --user=root --enable-tftp --tftp-root="$ROOT" \
  --listen-address=127.0.0.1 --bind-interfaces --log-facility=/dev/null --pid-file= >/dev/null 2>&1 &
SP=$!; wait_udp69
echo -n "dnsmasq: "; ip netns exec "$NS" python3 scripts/rrq-latency.py file "$N" "$IDLE"
