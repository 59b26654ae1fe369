#!/usr/bin/env bash
# failover-bench.sh: the proofs of several bootd instances on one segment and one PostgreSQL database
# (issue 22, docs/postgresql.md "Several instances"). As root, after scripts/setup.sh and npm run build.
#
#   scripts/failover-bench.sh storm     # 1,000 clients at once; the leader killed with SIGKILL halfway:
#                                       # every client leased, 0 addresses bound twice, takeover time
#   scripts/failover-bench.sh kill50    # a lease loop; an instance killed with SIGKILL 50 times at random
#                                       # moments (and restarted): 0 acknowledged leases lost
#   scripts/failover-bench.sh outage    # one instance, a storm; the database stopped mid-storm and started
#                                       # again: no ACK without a commit, how long until service is back
#
# Everything runs in namespaces made here (bootd-fo<pid>-{br,s1,s2,c}: a bridge and veth pairs, no link
# to the root namespace, no route out) against a PostgreSQL 15 cluster made here (initdb as postgres into
# a temporary folder, unix socket only, fsync and synchronous_commit on). Removed on exit; only processes
# started here are ended, by PID. CLIENTS, KILLS, PG_WORKDIR (default /dev/shm) tune it.
set -euo pipefail
MODE=${1:-storm}
REPO=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${CLIENTS:-1000}
KILLS=${KILLS:-50}
PG_BIN=/usr/lib/postgresql/15/bin
P="bootd-fo$$"
WORK=$(mktemp -d "${PG_WORKDIR:-/dev/shm}/bootd-failover-XXXXXX")
chmod 755 "$WORK"
PIDS=()

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  [ -d "$WORK/data" ] && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1
  for n in s1 s2 c br; do ip netns del "$P-$n" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- network: a bridge in its own namespace, s1 = .1, s2 = .2, clients = .3, /16
ip netns add "$P-br"
ip -n "$P-br" link add br0 type bridge
ip -n "$P-br" link set br0 up
i=1
for n in s1 s2 c; do
  ip netns add "$P-$n"
  ip link add "v$$$n" type veth peer name eth0 netns "$P-$n"
  ip link set "v$$$n" netns "$P-br"
  ip -n "$P-br" link set "v$$$n" master br0 up
  ip -n "$P-$n" link set lo up
  ip -n "$P-$n" addr add "198.18.0.$i/16" dev eth0
  ip -n "$P-$n" link set eth0 up
  ip -n "$P-$n" route add 255.255.255.255/32 dev eth0
  i=$((i + 1))
done

# --- PostgreSQL: a cluster of our own
mkdir -m 700 "$WORK/data" "$WORK/sock"
chown postgres:postgres "$WORK/data" "$WORK/sock"
runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/data" -U postgres -E UTF8 --no-locale --auth-local=trust --auth-host=reject >/dev/null
pg_start() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/data" -w -t 30 -l "$WORK/data/server.log" -o "-k $WORK/sock -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c max_connections=50" start >/dev/null; }
pg_stop() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/data" -m fast -w -t 30 stop >/dev/null; }
pg_start
runuser -u postgres -- "$PG_BIN/psql" -h "$WORK/sock" -U postgres -qc "CREATE DATABASE bootd" >/dev/null
URL="postgresql:///bootd?host=$WORK/sock&user=postgres"
psql_q() { runuser -u postgres -- "$PG_BIN/psql" -h "$WORK/sock" -U postgres -d bootd -tAqc "$1"; }
mkdir -p "$WORK/root"

# start_bootd s1|s2: in the background, its log in $WORK/<name>.log; waits for "dhcp listening"
start_bootd() {
  local n=$1 addr
  addr="198.18.0.$([ "$n" = s1 ] && echo 1 || echo 2)"
  ip netns exec "$P-$n" node "$REPO/bin/bootd" serve --interface eth0 --listen "$addr" --dhcp-range 198.18.1.0-198.18.15.255 \
    --unknown-hosts lease --force --tftp-root "$WORK/root" --state "$WORK/state-$n" --state-url "$URL" --segment bench \
    --admin-listen off --log-level info --log-format json >>"$WORK/$n.log" 2>&1 &
  eval "PID_$n=$!"
  PIDS+=("$!")
  disown "$!"
  local t=0
  until [ "$(grep -c '"msg":"dhcp listening"' "$WORK/$n.log" 2>/dev/null)" -gt "$(cat "$WORK/$n.starts" 2>/dev/null || echo 0)" ]; do
    sleep 0.05; t=$((t + 1)); [ $t -lt 600 ] || { echo "bootd $n did not start" >&2; tail -5 "$WORK/$n.log" >&2; exit 1; }
  done
  grep -c '"msg":"dhcp listening"' "$WORK/$n.log" >"$WORK/$n.starts"
}
now_ms() { date +%s%3N; }
leader() { psql_q "SELECT split_part(instance, '/', 2) FROM dhcp_leader WHERE segment = 'bench'"; }
# the time (ms since the epoch) of the last "leading the segment" line in a log
led_at() { node -e 'const l=require("fs").readFileSync(process.argv[1],"utf8").split("\n").filter(x=>x.includes("\"dhcp: leading the segment\"")).pop();console.log(l?Date.parse(JSON.parse(l).time):0)' "$1"; }

acks_check() {
  # every ACK the clients got: is the address in lease4 for that MAC (the latest ACK of each address)?
  node -e '
    const fs = require("fs");
    const latest = new Map();
    for (const l of fs.readFileSync(process.argv[1], "utf8").split("\n")) { const m = /^ack (\S+) (\S+)/.exec(l); if (m) latest.set(m[2], m[1]); }
    const db = new Map(fs.readFileSync(process.argv[2], "utf8").trim().split("\n").filter(Boolean).map((l) => { const [ip, mac, st] = l.split("|"); return [ip, { mac, st }]; }));
    let lost = 0; const ex = [];
    for (const [ip, mac] of latest) { const r = db.get(ip); if (!r || r.mac !== mac || r.st !== "0") { lost++; if (ex.length < 5) ex.push(`${ip} ${mac} -> ${r ? r.mac + " state " + r.st : "absent"}`); } }
    const macs = new Map(); for (const [ip, r] of db) if (r.st === "0") macs.set(r.mac, (macs.get(r.mac) ?? 0) + 1);
    console.log(JSON.stringify({ ackedAddresses: latest.size, lost, rows: db.size, macsWithTwoAddresses: [...macs.values()].filter((n) => n > 1).length, examples: ex }));
  ' "$1" <(psql_q "SELECT host(address) || '|' || hwaddr || '|' || state FROM lease4")
}

case "$MODE" in
storm)
  start_bootd s1
  start_bootd s2
  echo "leader: $(leader)"
  ip netns exec "$P-c" node "$REPO/scripts/dhcp-acks.mjs" --clients "$CLIENTS" --seconds 60 --rto 1 --tries 4 --kill-at $((CLIENTS / 2)) --kill-pid "$PID_s1" >"$WORK/acks" 2>"$WORK/summary" || true
  killed=$(sed -n 's/^killed [0-9]* at \([0-9]*\) .*/\1/p' "$WORK/summary")
  echo "killed s1 (the leader) with SIGKILL after $((CLIENTS / 2)) of $CLIENTS ACKs"
  took=$(($(led_at "$WORK/s2.log") - killed))
  echo "s2 led $took ms after the SIGKILL; leader now: $(leader)"
  echo "clients: $(tail -1 "$WORK/summary")"
  echo "acks vs lease4: $(acks_check "$WORK/acks")"
  echo "ACKs by server: $(awk '/^ack/ {print $4}' "$WORK/acks" | sort | uniq -c | tr '\n' ' ')"
  ;;
kill50)
  start_bootd s1
  start_bootd s2
  ip netns exec "$P-c" node "$REPO/scripts/dhcp-acks.mjs" --clients 200 --cycles 0 --rate 100 --seconds $((KILLS * 2 + 20)) --rto 0.5 --tries 4 >"$WORK/acks" 2>"$WORK/summary" &
  LOAD=$!
  PIDS+=("$LOAD")
  takeovers=()
  for k in $(seq 1 "$KILLS"); do
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + (r % 1500) / 1000 }')"
    l=$(leader)
    victim=$([ "$l" = 198.18.0.1 ] && echo s1 || echo s2)
    other=$([ "$victim" = s1 ] && echo s2 || echo s1)
    killed=$(now_ms)
    eval "kill -9 \$PID_$victim"
    for _ in $(seq 1 200); do [ "$(led_at "$WORK/$other.log")" -gt "$killed" ] && break; sleep 0.025; done
    takeovers+=($(($(led_at "$WORK/$other.log") - killed)))
    start_bootd "$victim"
  done
  wait "$LOAD" || true
  echo "kills: $KILLS; takeover ms: $(printf '%s\n' "${takeovers[@]}" | sort -n | awk '{a[NR]=$1} END {print "min " a[1] ", median " a[int((NR+1)/2)] ", max " a[NR]}')"
  echo "clients: $(tail -1 "$WORK/summary")"
  echo "acks vs lease4: $(acks_check "$WORK/acks")"
  ;;
outage)
  start_bootd s1
  ip netns exec "$P-c" node "$REPO/scripts/dhcp-acks.mjs" --clients "$CLIENTS" --rate 200 --seconds 90 --rto 1 --tries 4 >"$WORK/acks" 2>"$WORK/summary" &
  LOAD=$!
  PIDS+=("$LOAD")
  for _ in $(seq 1 3000); do [ "$(grep -c '^ack' "$WORK/acks" || true)" -ge $((CLIENTS / 3)) ] && break; sleep 0.005; done
  stopped=$(now_ms)
  pg_stop
  at_stop=$(grep -c '^ack' "$WORK/acks" || true)
  sleep 5
  during=$(( $(grep -c '^ack' "$WORK/acks" || true) - at_stop ))
  pg_start
  started=$(now_ms)
  for _ in $(seq 1 600); do [ "$(grep -c '^ack' "$WORK/acks" || true)" -gt $((at_stop + during)) ] && break; sleep 0.02; done
  echo "database stopped at $at_stop ACKs for 5 s; ACKs while it was down (sent before the stop took effect or none): $during"
  echo "first ACK $(( $(now_ms) - started )) ms after the database was back (led again $(( $(led_at "$WORK/s1.log") - started )) ms after)"
  wait "$LOAD" || true
  echo "clients: $(tail -1 "$WORK/summary")"
  echo "acks vs lease4: $(acks_check "$WORK/acks")"
  ;;
*) echo "usage: $0 storm|kill50|outage" >&2; exit 2 ;;
esac
