#!/usr/bin/env bash
# Builds the release: dist/edgemesh.js, one binary per target, and dist/sha256sums.txt.
# Binaries need the denort runtime of each target (see scripts/compile.ts).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deno task compile "$@"
cp systemd/edgemesh.service scripts/install.sh dist/
(cd dist && sha256sum edgemesh.js edgemesh-* edgemesh.service install.sh > sha256sums.txt)
echo "dist/sha256sums.txt:"
cat dist/sha256sums.txt
