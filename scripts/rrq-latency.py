#!/usr/bin/env python3
"""Time from a TFTP read request to the server's first answer (docs/performance.md, session 11).

  python3 scripts/rrq-latency.py FILE N IDLE_MS [ADDR [PORT]]

Sends N read requests for FILE (octet, tsize=0 blksize=1468) to ADDR:PORT
(default 127.0.0.1:69), each from a new port, aborts each answer with
ERROR 8 as EDK2's tsize probe does, waits IDLE_MS between requests, and
prints the median and the 10th and 90th percentiles in ms. Meant for
loopback inside a namespace (scripts/rrq-latency.sh runs bootd and dnsmasq).
"""
import socket
import statistics as st
import sys
import time

if len(sys.argv) < 4:
    sys.exit(__doc__)
name, n, idle = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000
addr = sys.argv[4] if len(sys.argv) > 4 else "127.0.0.1"
port = int(sys.argv[5]) if len(sys.argv) > 5 else 69
rrq = b"\0\1" + name.encode() + b"\0octet\0tsize\0" + b"0\0blksize\0" + b"1468\0"
lat, lost = [], 0
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    s.settimeout(2)
    t = time.perf_counter()
    s.sendto(rrq, (addr, port))
    try:
        _, frm = s.recvfrom(2048)
        lat.append((time.perf_counter() - t) * 1e3)
        s.sendto(b"\0\5\0\x08abort\0", frm)
    except socket.timeout:
        lost += 1
    s.close()
    time.sleep(idle)
if not lat:
    sys.exit(f"{name}: no answer to {n} requests")
lat.sort()
print(f"{name}: {len(lat)} answered, {lost} lost; median {st.median(lat):.3f} ms, "
      f"p10 {lat[len(lat) // 10]:.3f}, p90 {lat[len(lat) * 9 // 10]:.3f}")
