#!/usr/bin/env bash
# Sets up the Python (grpcio) interop peer: a virtualenv at VENV_DIR with
# grpcio==1.85.* and grpcio-tools==1.85.*, and the grpc.testing stubs generated
# from interop/proto into VENV_DIR/stubs. Safe to run again: what is already
# in place is kept, so a second run takes about a second.
#
# Usage: setup.sh VENV_DIR
# Then:  GRPC_PEER_STUBS=VENV_DIR/stubs VENV_DIR/bin/python peer.py ...
set -euo pipefail

GRPCIO_PIN='grpcio==1.85.*'
TOOLS_PIN='grpcio-tools==1.85.*'
# Rich error details (google.rpc.Status and its detail messages, from
# googleapis-common-protos, which it depends on).
STATUS_PIN='grpcio-status==1.85.*'
# The health checking client (grpc.health.v1).
HEALTH_PIN='grpcio-health-checking==1.85.*'
# The server reflection client (ProtoReflectionDescriptorDatabase).
REFLECTION_PIN='grpcio-reflection==1.85.*'
WANT_SERIES='1.85.'

die() {
    echo "setup.sh: error: $*" >&2
    exit 1
}

[ "$#" -eq 1 ] && [ -n "$1" ] || die "usage: $0 VENV_DIR"
venv=$1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# interop/peers/python -> interop/proto
proto_root=$(cd "$here/../../proto" 2>/dev/null && pwd) ||
    die "cannot find the protos: $here/../../proto does not exist"
protos=(grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto)
for proto in "${protos[@]}"; do
    [ -f "$proto_root/$proto" ] || die "missing proto file $proto_root/$proto"
done

# 1. The virtualenv.
if [ ! -x "$venv/bin/python" ]; then
    command -v python3 >/dev/null 2>&1 || die "python3 is not on PATH"
    echo "setup.sh: creating virtualenv $venv" >&2
    python3 -m venv "$venv" ||
        die "python3 -m venv $venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
fi
venv=$(cd "$venv" && pwd) || die "cannot enter $venv"
py="$venv/bin/python"
[ -x "$py" ] || die "$py is missing after creating the virtualenv"

# 2. grpcio, grpcio-tools, grpcio-status and grpcio-health-checking, pinned
#    to the 1.85 series.
installed_ok() {
    "$py" - "$WANT_SERIES" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
series = sys.argv[1]
import grpc, grpc_tools.protoc, grpc_status.rpc_status, grpc_health.v1.health_pb2_grpc  # noqa: F401
import grpc_reflection.v1alpha.proto_reflection_descriptor_database  # noqa: F401
from google.rpc import error_details_pb2  # noqa: F401
ok = all(version(name).startswith(series) for name in ("grpcio", "grpcio-tools", "grpcio-status", "grpcio-health-checking", "grpcio-reflection"))
sys.exit(0 if ok else 1)
EOF
}
if ! installed_ok; then
    echo "setup.sh: installing $GRPCIO_PIN $TOOLS_PIN into $venv" >&2
    "$py" -m pip install --disable-pip-version-check --no-input --quiet \
        "$GRPCIO_PIN" "$TOOLS_PIN" "$STATUS_PIN" "$HEALTH_PIN" "$REFLECTION_PIN" ||
        die "pip could not install $GRPCIO_PIN, $TOOLS_PIN, $STATUS_PIN and $HEALTH_PIN into $venv (see pip's output above)"
    installed_ok || die "after pip install, grpcio/grpcio-tools/grpcio-status/grpcio-health-checking 1.85.* still do not import in $venv"
fi

# 3. The stubs, regenerated only when the protos or grpcio-tools changed.
stubs="$venv/stubs"
stamp_of() {
    {
        "$py" -c 'from importlib.metadata import version; print(version("grpcio-tools"), version("grpcio"))'
        (cd "$proto_root" && cat "${protos[@]}")
    } | sha256sum | cut -d' ' -f1
}
stamp=$(stamp_of) || die "cannot compute the stubs' stamp"
if [ -f "$stubs/.stamp" ] && [ "$(cat "$stubs/.stamp")" = "$stamp" ] &&
    [ -f "$stubs/grpc/testing/test_pb2_grpc.py" ]; then
    echo "setup.sh: $venv is up to date" >&2
    exit 0
fi
echo "setup.sh: generating stubs into $stubs" >&2
tmp=$(mktemp -d "${venv%/}/.stubs.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
(cd "$proto_root" && "$py" -m grpc_tools.protoc -I. \
    --python_out="$tmp" --grpc_python_out="$tmp" "${protos[@]}") ||
    die "grpc_tools.protoc failed on $proto_root"
[ -f "$tmp/grpc/testing/test_pb2_grpc.py" ] || die "protoc produced no grpc/testing/test_pb2_grpc.py"
echo "$stamp" >"$tmp/.stamp"
rm -rf "$stubs"
mv "$tmp" "$stubs"
trap - EXIT
echo "setup.sh: done; run peer.py with GRPC_PEER_STUBS=$stubs" >&2
