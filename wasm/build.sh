#!/bin/sh
# Builds the uno client for browsers into OUT (default wasm/dist):
# uno.wasm (the Go client, GOOS=js GOARCH=wasm), wasm_exec.js (Go's
# loader), uno.js (the ES module), uno-worker.js (the Web Worker uno.js
# runs the client in), uno.d.ts (uno.js's types), uno-sqlite.mjs and, in
# sqlite3/, SQLite's official WebAssembly build (@sqlite.org/sqlite-wasm:
# its ES module and sqlite3.wasm), which uno.wasm stores its data with, and in
# automerge/ the files of @automerge/automerge (its ES modules and
# automerge.wasm) that a page downloads the first time it uses a doc
# field. It prints their sizes raw and gzipped: the core download (what
# every page loads) and the Automerge addition. Run from anywhere, after
# npm ci --prefix wasm. UNO_WASM_LDFLAGS replaces the linker flags
# (default: -s -w, no symbols); set it empty to keep the function names a
# CPU profile shows.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/wasm/dist}
am=$root/wasm/node_modules/@automerge/automerge
sq=$root/wasm/node_modules/@sqlite.org/sqlite-wasm
if [ ! -f "$am/dist/automerge.wasm" ] || [ ! -f "$sq/dist/sqlite3.wasm" ]; then
	echo "@automerge/automerge or @sqlite.org/sqlite-wasm is missing: run npm ci --prefix wasm" >&2
	exit 1
fi
mkdir -p "$out"
cd "$root"
GOOS=js GOARCH=wasm go build -trimpath -ldflags="${UNO_WASM_LDFLAGS--s -w}" -o "$out/uno.wasm" ./wasm/cmd/uno-wasm
cp "$(go env GOROOT)/lib/wasm/wasm_exec.js" "$out/wasm_exec.js"
cp wasm/js/uno.js wasm/js/uno-worker.js wasm/js/uno.d.ts wasm/js/uno-sqlite.mjs "$out/"
rm -rf "$out/sqlite3"
mkdir -p "$out/sqlite3"
cp "$sq/dist/index.mjs" "$sq/dist/sqlite3.wasm" "$out/sqlite3/"

# The browser entry of @automerge/automerge ("slim": the WebAssembly is
# fetched, not inlined as base64) and the modules it imports, laid out as
# in the package; uno.js's useAutomerge loads entrypoints/slim.js and
# initialises it with automerge.wasm.
rm -rf "$out/automerge"
mkdir -p "$out/automerge/entrypoints" "$out/automerge/generated" "$out/automerge/wasm_bindgen_output/web"
cp "$am"/dist/mjs/*.js "$out/automerge/"
cp "$am/dist/mjs/entrypoints/slim.js" "$out/automerge/entrypoints/"
cp "$am/dist/mjs/generated/release-info.js" "$out/automerge/generated/"
cp "$am/dist/mjs/wasm_bindgen_output/web/automerge_wasm.js" "$out/automerge/wasm_bindgen_output/web/"
cp "$am/dist/automerge.wasm" "$am/LICENSE" "$out/automerge/"

# sizes LABEL FILE...: one line per file and a total, raw and gzipped.
sizes() {
	label=$1
	shift
	total=0
	totalgz=0
	for f in "$@"; do
		raw=$(wc -c <"$out/$f")
		gz=$(gzip -9 -c "$out/$f" | wc -c)
		total=$((total + raw))
		totalgz=$((totalgz + gz))
		printf '  %-52s %10d bytes raw %10d gzipped\n' "$f" "$raw" "$gz"
	done
	printf '%-54s %10d bytes raw %10d gzipped\n' "$label" "$total" "$totalgz"
}
echo "core, what every page downloads:"
sizes "core download" uno.wasm wasm_exec.js uno.js uno-worker.js uno-sqlite.mjs sqlite3/index.mjs sqlite3/sqlite3.wasm
printf '%-54s %10d bytes raw (types, not downloaded)\n' uno.d.ts "$(wc -c <"$out/uno.d.ts")"
echo "Automerge, downloaded the first time a doc field is used:"
# shellcheck disable=SC2046 # file names have no spaces
sizes "Automerge addition (automerge/)" $(cd "$out" && find automerge -type f -name '*.js' -o -type f -name '*.wasm' | sort)
