#!/usr/bin/env bash
# Sets up the js-libp2p interop peer in OUTDIR: copies package.json,
# package-lock.json and peer.mjs there and runs `npm ci` (npm registry only),
# which also brings Node 22 (the npm package `node`; js-libp2p 3 needs
# Node >= 22). A second run with the same package.json and package-lock.json
# only copies peer.mjs and checks the node binary (well under a second).
#
# Usage: setup.sh OUTDIR
# Then:  OUTDIR/node_modules/.bin/node OUTDIR/peer.mjs server|client|hold ...
#
# stdout gets exactly one line at the end: the version of that node binary
# (v22.x). Everything else (npm's output, progress) goes to stderr.
set -euo pipefail

WANT_NODE_SERIES='v22.'

die() {
    echo "setup.sh: error: $*" >&2
    exit 1
}

[ "$#" -eq 1 ] && [ -n "$1" ] || die "usage: $0 OUTDIR"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for f in package.json package-lock.json peer.mjs; do
    [ -f "$here/$f" ] || die "missing $here/$f"
done

mkdir -p "$1" || die "cannot create $1"
out=$(cd "$1" && pwd) || die "cannot enter $1"

# Concurrent runs for the same OUTDIR wait for each other.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$out/.setup.lock"
    flock 9 || die "cannot lock $out/.setup.lock"
fi

node_bin="$out/node_modules/.bin/node"
node_ok() {
    local v
    v=$("$node_bin" --version 2>/dev/null) || return 1
    case "$v" in "$WANT_NODE_SERIES"*) return 0 ;; *) return 1 ;; esac
}

stamp=$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -d' ' -f1)
stamp="$stamp $(uname -sm)"

# peer.mjs is always refreshed (replaced atomically, a running peer keeps its copy).
copy() {
    cp "$here/$1" "$out/.$1.tmp" && mv -f "$out/.$1.tmp" "$out/$1" || die "cannot copy $1 into $out"
}
copy peer.mjs

if [ -f "$out/.setup-stamp" ] && [ "$(cat "$out/.setup-stamp")" = "$stamp" ] &&
    [ -d "$out/node_modules/libp2p" ] && node_ok; then
    echo "setup.sh: $out is up to date" >&2
else
    command -v npm >/dev/null 2>&1 ||
        die "npm is not on PATH (on Debian/Ubuntu: apt-get install npm); it is needed to install the peer's packages"
    rm -f "$out/.setup-stamp"
    copy package.json
    copy package-lock.json
    echo "setup.sh: npm ci in $out (npm $(npm --version 2>/dev/null || echo '?'))" >&2
    # --ignore-scripts=false: the `node` package installs its binary from a
    # preinstall script (it fetches node-<os>-<arch> from the npm registry).
    (cd "$out" && npm ci --no-audit --no-fund --ignore-scripts=false --engine-strict=false >&2) ||
        die "npm ci failed in $out (see npm's output above)"
    [ -x "$node_bin" ] ||
        die "npm ci finished but $node_bin is missing (did the preinstall script of the npm package 'node' run?)"
    node_ok || die "$node_bin is not Node ${WANT_NODE_SERIES}x: '$("$node_bin" --version 2>&1 || true)'"
    (cd "$out" && "$node_bin" --input-type=module -e "await import('libp2p'); await import('@libp2p/tcp'); await import('@chainsafe/libp2p-noise'); await import('@chainsafe/libp2p-yamux')") ||
        die "the installed packages do not load under $node_bin"
    echo "$stamp" >"$out/.setup-stamp"
    echo "setup.sh: done; run $node_bin $out/peer.mjs" >&2
fi

"$node_bin" --version
