#!/bin/sh
# Builds the grpc-go interop peer OUTDIR/grpcpeer, offline, in GOPATH mode,
# from Debian's packaged Go sources (golang-go, golang-google-grpc-dev,
# golang-google-protobuf-dev). Usage: build.sh OUTDIR
# The Go build cache is kept in OUTDIR/.gocache (override: GRPCPEER_GOCACHE).
set -eu

die() {
    echo "build.sh: error: $*" >&2
    exit 1
}

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: $0 OUTDIR"

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd -P) || die "cannot find the peer's folder"
gocode=${GRPCPEER_GOCODE:-/usr/share/gocode}

command -v go >/dev/null 2>&1 || die "'go' is not on PATH (Debian: apt-get install golang-go)"
for pkg in \
    google.golang.org/grpc \
    google.golang.org/grpc/encoding/gzip \
    google.golang.org/protobuf/encoding/protowire \
    github.com/golang/protobuf/proto \
    golang.org/x/net/http2 \
    google.golang.org/genproto/googleapis/rpc/status; do
    [ -d "$gocode/src/$pkg" ] || die "Go package $pkg is missing from $gocode/src (Debian: apt-get install golang-google-grpc-dev golang-google-protobuf-dev)"
done
grep -q 'Version = "1\.33\.' "$gocode/src/google.golang.org/grpc/version.go" 2>/dev/null ||
    echo "build.sh: warning: grpc-go in $gocode is not 1.33.x; the peer was written against 1.33.3" >&2

mkdir -p -- "$1" || die "cannot create $1"
out=$(CDPATH= cd -- "$1" && pwd -P) || die "cannot enter $1"
cache=${GRPCPEER_GOCACHE:-$out/.gocache}
mkdir -p -- "$cache" || die "cannot create $cache"

gopath=$(mktemp -d "${TMPDIR:-/tmp}/grpcpeer-gopath.XXXXXX") || die "mktemp failed"
trap 'rm -rf -- "$gopath"' EXIT HUP INT TERM
mkdir -p "$gopath/src"
ln -s "$here" "$gopath/src/grpcpeer"

# GOPATH mode, no network, no cgo; GOFLAGS cleared (module flags such as
# -mod are refused in GOPATH mode). Build from the temporary GOPATH so the
# current directory does not matter.
cd "$gopath"
if ! env GO111MODULE=off GOPROXY=off GOFLAGS= GONOSUMDB= GOSUMDB=off \
    GOPATH="$gopath:$gocode" GOCACHE="$cache" CGO_ENABLED=0 \
    go build -o "$out/grpcpeer" grpcpeer; then
    die "go build failed"
fi
echo "built $out/grpcpeer"
