#!/usr/bin/env bash
# Records what nvidia-smi prints on a machine with NVIDIA GPUs and their
# driver, as fixtures for bee's gpu collector (test/fixtures/nvidia-smi/,
# README there): the collector's own query (the field list is read from
# images/bee/overlay/usr/sbin/bee-gpu), -L, and -q -x. Read-only on the GPUs.
#   bash scripts/record-gpu-fixtures.sh [DIR]     (default $OUT, else test/fixtures/nvidia-smi)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dir=${1:-${OUT:-test/fixtures/nvidia-smi}}
mkdir -p "$dir"
command -v nvidia-smi >/dev/null || { echo "no nvidia-smi on this machine" >&2; exit 1; }
query=$(sed -n 's/^GPU_QUERY=//p' images/bee/overlay/usr/sbin/bee-gpu)
slug=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1 | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/-$//')
n=$(nvidia-smi -L | grep -c '^GPU ' || true)
nvidia-smi --query-gpu="$query" --format=csv,nounits > "$dir/recorded-$slug-x$n.csv"
nvidia-smi -L > "$dir/recorded-$slug-x$n-L.txt"
nvidia-smi -q -x > "$dir/recorded-$slug-x$n-q.xml"
{ echo "# recorded $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -r)"; nvidia-smi --version 2>/dev/null || true; lspci -nn -d 10de: 2>/dev/null || true; } > "$dir/recorded-$slug-x$n.about"
ls -la "$dir"
