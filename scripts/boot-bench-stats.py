#!/usr/bin/env python3
"""Statistics over scripts/boot-bench.sh results (docs/performance.md, issue 5).

  python3 scripts/boot-bench-stats.py [--pair A B] OUT [OUT...]
      Interleaved runs (INTERLEAVE=1): pairs each round's dnsmasq boot with its
      bootd boot, pooled over every OUT given, and prints per mode the medians,
      the median of the per-round ratios bootd/dnsmasq with a bootstrap 90 %
      interval, how many rounds bootd won, and the phase medians. --pair names
      the two servers instead (SERVERS="dnsmasq dnsmasq-b": an A/A run; the
      ratio is B/A).

  python3 scripts/boot-bench-stats.py --captures RUN_DIR [RUN_DIR...]
      Run directories kept with KEEP=1: the server's share of each boot from
      its capture (for every server packet that answers a client packet, the
      delay), and for the largest lock-step TFTP transfer the median server
      answer (ACK in, DATA out) and guest turnaround (DATA out, ACK in).

Only the standard library and tshark.
"""
import random
import re
import statistics as st
import subprocess
import sys
from collections import Counter
from pathlib import Path

SERVER_IP = "10.213.77.1"  # the bench's server address
PHASES = ["offer", "ack", "nbp", "kernel", "initrd", "linux_dhcp", "marker"]


def boots(out: Path, mode: str, server: str) -> list:
    """The bench's result lines, in order; None for a failed boot."""
    f = out / f"mode{mode}-{server}.log"
    if not f.exists():
        return []
    rows = []
    for line in f.read_text().splitlines():
        if not line.startswith("run="):
            continue  # each result appears twice: once with a time stamp, once bare
        kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
        if kv.get("result") != "PASS":
            rows.append(None)
            continue
        rows.append({k: float(v) for k, v in kv.items() if k != "run" and re.fullmatch(r"[0-9.]+", v)})
    return rows


def bootstrap(values: list, rounds: int = 5000) -> tuple:
    rng = random.Random(1)
    meds = sorted(st.median(rng.choices(values, k=len(values))) for _ in range(rounds))
    return meds[int(0.05 * rounds)], meds[int(0.95 * rounds) - 1]


def paired(outs: list, first: str = "dnsmasq", second: str = "bootd") -> None:
    for mode in "12345":
        pairs = []
        for out in outs:
            pairs += [(d, b) for d, b in zip(boots(out, mode, first), boots(out, mode, second)) if d and b]
        if not pairs:
            continue
        ratios = [b["marker"] / d["marker"] for d, b in pairs]
        lo, hi = bootstrap(ratios)
        dm, bm = st.median(d["marker"] for d, _ in pairs), st.median(b["marker"] for _, b in pairs)
        print(f"mode {mode}: {len(pairs)} rounds, marker medians {first} {dm:.2f} s, {second} {bm:.2f} s; "
              f"per-round ratio median x{st.median(ratios):.3f} (90 % interval {lo:.3f}-{hi:.3f}), "
              f"{second} faster in {sum(r < 1 for r in ratios)}/{len(ratios)}")
        steps = []
        for a, z in zip(PHASES, PHASES[1:]):
            both = [(d[z] - d[a], b[z] - b[a]) for d, b in pairs if a in d and z in d and a in b and z in b]
            if both:
                steps.append(f"{a}->{z} {st.median(x for x, _ in both):.2f}/{st.median(y for _, y in both):.2f}")
        print(f"   phases, {first}/{second} medians (s): " + ", ".join(steps))
        diffs = []
        for a, z in zip(["qemu"] + PHASES, PHASES):
            ds = [(b[z] - b.get(a, 0.0)) - (d[z] - d.get(a, 0.0)) for d, b in pairs
                  if z in d and z in b and (a == "qemu" or (a in d and a in b))]
            if ds:
                diffs.append(f"{a}->{z} {st.median(ds):+.3f}")
        print(f"   paired {second} - {first}, medians (s): " + ", ".join(diffs))


def tshark(pcap: Path, fields: list, display: str) -> list:
    cmd = ["tshark", "-r", str(pcap), "-Y", display, "-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    return [l.split("|") for l in subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()]


def share(pcap: Path) -> Counter:
    """Seconds the server took to answer, per protocol."""
    rows = tshark(pcap, ["frame.time_epoch", "ip.src", "udp.srcport", "ip.dst", "udp.dstport", "dhcp.id",
                         "tcp.srcport", "tcp.dstport", "tcp.len", "tftp.opcode"], "udp || tcp")
    waiting, total = {}, Counter()
    for t, src, sp, dst, dp, xid, tsp, tdp, tlen, op in rows:
        if op == "2":
            break  # the guest's upload (WRQ) comes after the marker
        if xid:
            key, proto = ("dhcp", xid), "dhcp"
        elif tsp:
            if src != SERVER_IP and tlen in ("", "0"):
                continue  # a bare TCP ACK asks for nothing
            key, proto = ("tcp", f"{dst}:{tdp}" if src == SERVER_IP else f"{src}:{tsp}"), "http"
        elif sp and not {sp, dp} & {"546", "547", "5353"}:  # DHCPv6, mDNS: not the server's
            key, proto = ("udp", f"{dst}:{dp}" if src == SERVER_IP else f"{src}:{sp}"), "tftp"
        else:
            continue
        if src == SERVER_IP:
            if key in waiting:
                total[proto] += float(t) - waiting.pop(key)
        else:
            waiting[key] = float(t)
    return total


def lockstep(pcap: Path) -> str:
    rows = tshark(pcap, ["frame.time_epoch", "udp.srcport", "udp.dstport", "tftp.opcode", "tftp.block"], "tftp")
    by_client = Counter(r[1] for r in rows if r[3] == "4")
    if not by_client:
        return "no TFTP read"
    cport = by_client.most_common(1)[0][0]
    data_at, ack_at, server, guest = {}, {}, [], []
    for t, sp, dp, op, block in rows:
        if op == "3" and dp == cport:
            b = int(block)
            if b in ack_at:
                server.append(float(t) - ack_at.pop(b))
            data_at[b] = float(t)
        elif op == "4" and sp == cport:
            b = int(block)
            if b in data_at:
                guest.append(float(t) - data_at.pop(b))
            ack_at[(b + 1) & 0xFFFF] = float(t)
    if not server or not guest:
        return "no lock-step transfer"
    return (f"largest transfer {len(server)} blocks: server answer median {st.median(server) * 1e6:.1f} us "
            f"(sum {sum(server):.3f} s), guest turnaround median {st.median(guest) * 1e6:.1f} us (sum {sum(guest):.3f} s)")


def captures(dirs: list) -> None:
    for d in dirs:
        server = "bootd" if (d / "state").is_dir() else "dnsmasq"
        total = share(d / "capture.pcapng")
        parts = ", ".join(f"{p} {total[p] * 1000:.1f} ms" for p in sorted(total))
        print(f"{d.name} {server}: server share {sum(total.values()) * 1000:.1f} ms ({parts}); {lockstep(d / 'capture.pcapng')}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    if args[0] == "--captures":
        captures([Path(a) for a in args[1:]])
    elif args[0] == "--pair":
        paired([Path(a) for a in args[3:]], args[1], args[2])
    else:
        paired([Path(a) for a in args])
