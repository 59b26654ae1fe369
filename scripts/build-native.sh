#!/usr/bin/env bash
# build-native.sh: compiles src/native/fastudp.c into dist/native/fastudp.node
# (`npm run build` calls it after tsc).
#
# A Node-API addon is ABI-stable across Node versions, so it needs only the
# Node-API headers (the node-api-headers dev dependency, or Node's own) and
# libuv's uv.h (Node's own include dir, else Debian's libuv1-dev), plus gcc.
# Node exports the napi_* and uv_* symbols the module uses; they stay
# undefined here and resolve when Node loads it.
#
# BOOTD_NATIVE=0 skips the build; bootd then uses node:dgram for transfers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=dist/native/fastudp.node
if [ "${BOOTD_NATIVE:-1}" = 0 ]; then
  rm -f "$out"
  echo "[build-native] skipped (BOOTD_NATIVE=0)" >&2
  exit 0
fi
node_inc=$(node -p 'require("path").resolve(process.execPath, "../../include/node")')
napi_inc=node_modules/node-api-headers/include
[ -f "$napi_inc/node_api.h" ] || napi_inc=$node_inc
uv_inc=$node_inc
[ -f "$uv_inc/uv.h" ] || uv_inc=/usr/include
for f in "$napi_inc/node_api.h" "$uv_inc/uv.h"; do
  [ -f "$f" ] || { echo "[build-native] missing $f (npm ci installs node-api-headers; apt-get install libuv1-dev gives uv.h)" >&2; exit 1; }
done
mkdir -p "$(dirname "$out")"
src=src/native/fastudp.c
if [ -f "$out" ] && [ "$out" -nt "$src" ] && [ "$out" -nt "$0" ]; then exit 0; fi
${CC:-gcc} -std=gnu11 -O2 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
  -DNODE_GYP_MODULE_NAME=fastudp -I"$napi_inc" -I"$uv_inc" -o "$out.tmp" "$src"
mv "$out.tmp" "$out"
