#!/bin/bash
# buildos post-boot smoke test: ssh root@<ip> 'bash -s' < smoketest.sh
# Required checks print PASS or FAIL; exit 0 only when all pass.
fails=0
req() { local name=$1; shift; if "$@" >/dev/null 2>&1; then echo "PASS $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi; }

req "image is buildos" grep -q '^IMAGE=buildos$' /etc/bootd-release
req "root is in RAM (rootfs)" sh -c 'awk "\$2 == \"/\" {print \$3}" /proc/mounts | grep -qE "^(rootfs|tmpfs|ramfs)$"'
# Boot may still be settling when we log in; wait (bounded) for systemd.
for i in $(seq 1 60); do s=$(systemctl is-system-running 2>/dev/null); case "$s" in running|degraded) break ;; esac; sleep 1; done
req "systemd finished booting (state: $s)" test "$s" = running
req "sshd active" systemctl is-active --quiet ssh.service
req "buildos-monitor active" systemctl is-active --quiet buildos-monitor.service
req "monitor report written" test -s /run/buildos/monitor.report
req "network: an interface got a lease" sh -c 'i=$(cat /run/buildos-iface); [ -n "$i" ] && ip -4 -o addr show dev "$i" | grep -q inet'
req "host name set (DHCP or build-xxxxxxxxxx)" sh -c 'h=$(hostname); [ "$h" != buildos ] && [ "$h" != localhost ]'
req "user build with home /build" sh -c 'getent passwd build | cut -d: -f6 | grep -qx /build'
req "/build/tftp is tmpfs nodev,noexec,nosuid" sh -c 'grep -E "^tmpfs /build/tftp tmpfs [^ ]*nosuid[^ ]*" /proc/mounts | grep nodev | grep -q noexec'
req "/build/tftp owned by build" sh -c '[ "$(stat -c %U /build/tftp)" = build ]'
req "/build/machines exists" test -d /build/machines
req "module metadata built at image time" test -s "/lib/modules/$(uname -r)/modules.dep.bin"
echo "smoketest: $fails required check(s) failed"
[ "$fails" -eq 0 ]
