#!/bin/sh
# Builds the uno client for browsers into OUT (default wasm/dist):
# uno.wasm (the Go client, GOOS=js GOARCH=wasm), wasm_exec.js (Go's
# loader), uno.js (the ES module) and uno.d.ts (its types), and prints
# their sizes raw and gzipped. Run from anywhere. UNO_WASM_LDFLAGS replaces
# the linker flags (default: -s -w, no symbols); set it empty to keep the
# function names a CPU profile shows.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/wasm/dist}
mkdir -p "$out"
cd "$root"
GOOS=js GOARCH=wasm go build -trimpath -ldflags="${UNO_WASM_LDFLAGS--s -w}" -o "$out/uno.wasm" ./wasm/cmd/uno-wasm
cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" "$out/wasm_exec.js"
cp wasm/js/uno.js wasm/js/uno.d.ts "$out/"
total=0
totalgz=0
for f in uno.wasm wasm_exec.js uno.js uno.d.ts; do
	raw=$(wc -c <"$out/$f")
	gz=$(gzip -9 -c "$out/$f" | wc -c)
	total=$((total + raw))
	totalgz=$((totalgz + gz))
	printf '%-14s %10d bytes raw %10d gzipped\n' "$f" "$raw" "$gz"
done
printf '%-14s %10d bytes raw %10d gzipped\n' total "$total" "$totalgz"
