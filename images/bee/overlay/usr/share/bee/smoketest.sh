#!/bin/sh
# bee post-boot smoke test (seed 000's smoketest.sh): run on the booted host,
#   ssh root@<ip> 'sh -s' < smoketest.sh     (bootd does this after boot)
# Required checks print PASS or FAIL; optional ones PASS, WARN or SKIP.
# Exit 0 only when every required check passes.
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; fails=$((fails + 1)); }
warn() { echo "WARN $1${2:+: $2}"; }
skip() { echo "SKIP $1${2:+: $2}"; }
req() { name=$1; shift; if "$@" >/dev/null 2>&1; then pass "$name"; else fail "$name"; fi; }

req "image is bee" grep -q '^IMAGE=bee$' /etc/bootd-release
req "dropbear running" pidof dropbear
phys=0
for dev in /sys/class/net/*; do
  [ -e "$dev/device" ] || continue
  i=${dev##*/}; phys=$((phys + 1))
  req "udhcpc running on $i" test -s "/run/udhcpc.$i.pid" -a -d "/proc/$(cat "/run/udhcpc.$i.pid" 2>/dev/null)"
done
[ "$phys" -gt 0 ] && pass "physical interfaces: $phys" || fail "physical interfaces" "none found"
req "IPv4 address from DHCP" sh -c 'ls /run/bee/lease.* && ip -o addr show | grep -v " lo " | grep -q "inet "'
kver=$(uname -r)
req "module metadata built at image time" test -s "/lib/modules/$kver/modules.dep.bin" -a -s "/lib/modules/$kver/modules.alias.bin"
if grep -q '^virtio' /sys/bus/pci/devices/*/uevent 2>/dev/null || ls /sys/bus/virtio/devices/* >/dev/null 2>&1; then
  req "virtio_net loaded" grep -q '^virtio_net ' /proc/modules
fi
R=/var/log/bee-audit.json
# The audit runs after the network; give it a bounded moment.
n=0; while [ ! -s "$R" ] && [ "$n" -lt 60 ]; do sleep 1; n=$((n + 1)); done
req "audit report exists" test -s "$R"
req "audit report is valid JSON" jq -e '.schema == "bee-audit/1"' "$R"
for c in board cpu memory storage pcie; do
  st=$(jq -r ".collectors.$c.status // \"missing\"" "$R" 2>/dev/null)
  case "$st" in ok) pass "collector $c" ;; *) fail "collector $c" "$st" ;; esac
done
for c in psu gpu; do
  st=$(jq -r ".collectors.$c.status // \"missing\"" "$R" 2>/dev/null)
  case "$st" in ok) pass "collector $c" ;; skipped*) skip "collector $c" "${st#skipped: }" ;; *) fail "collector $c" "$st" ;; esac
done
# NVIDIA (seed 000's smoketest): where the image carries the driver and the
# machine has a GPU, the modules are loaded, nvidia-smi sees every GPU the PCI
# bus lists, the soname links are there and the audit has nvidia-smi's data.
if grep -q '^NVIDIA_DRIVER=' /etc/bootd-release 2>/dev/null; then
  nst=$(cat /run/bee/nvidia.status 2>/dev/null || echo "not run")
  ngpu=$(bee-gpu-pci 2>/dev/null | jq length 2>/dev/null)
  if [ "${ngpu:-0}" -gt 0 ]; then
    req "nvidia module loaded ($nst)" grep -q '^nvidia ' /proc/modules
    nsmi=$(timeout 60 nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
    if [ "$nsmi" -eq "$ngpu" ]; then pass "nvidia-smi sees all $ngpu GPU(s)"; else fail "nvidia-smi sees every GPU" "$nsmi of $ngpu on the PCI bus"; fi
    req "libnvidia-ml.so.1 link" sh -c 'ls /usr/lib/*-linux-gnu/libnvidia-ml.so.1'
    req "audit has GPU enrichment" jq -e '.collectors.gpu.data.gpus | length > 0 and all(.source == "nvidia-smi")' "$R"
  else
    skip "NVIDIA driver" "no NVIDIA GPU on the PCI bus (driver: $nst)"
  fi
fi
# GPU stress only when asked (bee.gpu_stress=<seconds>): bee-gpu-stress prints the line
line=$(bee-gpu-stress)
echo "$line"
case "$line" in FAIL*) fails=$((fails + 1)) ;; esac
rs=$(cat /run/bee/report.status 2>/dev/null || echo "not yet")
case "$rs" in uploaded*) pass "report upload" ;; "not configured") skip "report upload" "no bee.report= on the kernel command line" ;; *) warn "report upload" "$rs" ;; esac
echo "smoketest: $fails required check(s) failed"
[ "$fails" -eq 0 ]
