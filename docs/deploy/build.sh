#!/bin/sh
# build.sh OUT: builds uno as one static binary (no cgo, no ELF
# interpreter, no shared libraries) at OUT, and checks that it is static.
# Run it from anywhere inside the repository; the Dockerfile's build stage
# runs this same script.
#
# Environment: GOOS/GOARCH as go build takes them; UNO_BUILDVCS (default
# auto) is go build's -buildvcs: "false" where the source has no .git
# (a container build context), so `uno version` then reports no revision.
set -eu
if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: docs/deploy/build.sh OUT (the path of the binary to write)" >&2
	exit 2
fi
out=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
cd "$root"
CGO_ENABLED=0 go build -trimpath -buildvcs="${UNO_BUILDVCS:-auto}" \
	-ldflags '-s -w -buildid=' -o "$out" ./cmd/uno

# Static: built without cgo, and no program interpreter (the dynamic
# loader) in the ELF headers.
if ! go version -m "$out" | grep -q 'CGO_ENABLED=0'; then
	echo "build.sh: $out was not built with CGO_ENABLED=0" >&2
	exit 1
fi
if command -v readelf >/dev/null 2>&1; then
	if readelf -l "$out" | grep -q 'program interpreter'; then
		echo "build.sh: $out is dynamically linked (it has an ELF interpreter)" >&2
		exit 1
	fi
elif command -v file >/dev/null 2>&1; then
	if file "$out" | grep -q 'dynamically linked'; then
		echo "build.sh: $out is dynamically linked" >&2
		exit 1
	fi
fi
echo "build.sh: built $out (static, $(wc -c <"$out") bytes)"
