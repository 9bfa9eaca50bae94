#!/usr/bin/env bash
# Instructions the server spends on N unary calls under h2load, counted by
# callgrind (repeatable whatever else the machine does). Run it for two N
# and divide the difference by the difference of N: that is the per-call
# figure of benches/README.md (findings 7 and 11).
#
#   benches/scripts/callgrind-per-call.sh BIN STACK EXEC N
#   BIN:   target/release/deps/compare-* (cargo bench -p p2p-grpc-bench --bench compare --no-run)
#   STACK: p2p or tonic;  EXEC: smol1, tokio-ct, ...;  N: calls (20000, 40000)
#
# Prints h2load's summary on stderr and the server's total instructions on
# stdout. Needs valgrind and h2load (nghttp2-client).
set -euo pipefail
bin=$1 stack=$2 exec=$3 calls=$4
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# The request body: a 64-byte Payload, framed (flag 0, length 66).
python3 -c "import struct,sys; m=b'\x0a\x40'+b'\x5a'*64; sys.stdout.buffer.write(b'\x00'+struct.pack('>I',len(m))+m)" > "$dir/body64"
coproc SERVER { valgrind --tool=callgrind --callgrind-out-file="$dir/out" "$bin" --serve-child "$stack" "$exec" 2>/dev/null; }
read -r line <&"${SERVER[0]}"
addr=${line#LISTENING }
h2load -n "$calls" -c 4 -m 32 -d "$dir/body64" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://$addr/bench.Bench/Unary" | grep -E 'requests:|status codes' >&2
# The server ends when its stdin closes.
exec {SERVER[1]}>&-
wait "$SERVER_PID" || true
awk '/^(summary|totals):/ {print $2; exit}' "$dir/out"
