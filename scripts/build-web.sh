#!/usr/bin/env bash
# build-web.sh: the dashboard (web/) into dist/web/: one bundled, minified
# script (Preact included) and the stylesheet; nothing is fetched at run time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p dist/web
npx esbuild web/main.tsx --bundle --minify --format=esm --target=es2020 \
  --jsx=automatic --jsx-import-source=preact --outfile=dist/web/app.js --log-level=warning
cp web/app.css dist/web/app.css
cp web/index.html dist/web/index.html
