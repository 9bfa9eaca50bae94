#!/usr/bin/env python3
"""A gRPC interop peer on PyPI's grpcio (the gRPC C core), for testing p2p-grpc.

Three modes (see README.md beside this file for the full contract):

  peer.py server --port=N [--keepalive_min_time_ms=M] [--permit_without_calls=B]
          [--max_ping_strikes=K]
  peer.py client --server_host=HOST --server_port=N --test_case=CASE|all
  peer.py keepalive-client --server_host=HOST --server_port=N
          --keepalive_time_ms=T --seconds=S [--call_interval_ms=I]

The generated `grpc.testing` stubs are found through the environment variable
GRPC_PEER_STUBS (default: `<sys.prefix>/stubs`, i.e. VENV_DIR/stubs when run as
VENV_DIR/bin/python); setup.sh creates them.
"""

import os
import sys


# The C core reads GRPC_VERBOSITY / GRPC_TRACE once, when grpc is imported, so
# they are set before the import. In keepalive-client mode the C core should
# log that it received a GOAWAY with ENHANCE_YOUR_CALM / "too_many_pings": that
# line is logged at ERROR, which is on by default; GRPC_VERBOSITY=INFO and the
# http_keepalive tracer also show the pings themselves. The caller's values win.
if len(sys.argv) > 1 and sys.argv[1] == "keepalive-client":
    os.environ.setdefault("GRPC_VERBOSITY", "INFO")
    os.environ.setdefault("GRPC_TRACE", "http_keepalive")

import argparse  # noqa: E402
import queue  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent import futures  # noqa: E402

import grpc  # noqa: E402


def _load_stubs():
    """Imports the generated grpc.testing modules.

    protoc names the modules after the protos' package, `grpc.testing`, which
    lives inside grpcio's own `grpc` package; the stubs directory's `grpc/` is
    added to that package's search path so that `grpc.testing` resolves there.
    """
    stubs = os.environ.get("GRPC_PEER_STUBS") or os.path.join(sys.prefix, "stubs")
    testing = os.path.join(stubs, "grpc", "testing")
    if not os.path.isfile(os.path.join(testing, "test_pb2_grpc.py")):
        sys.exit(
            f"peer.py: no generated stubs at {testing}; run setup.sh VENV_DIR and "
            "set GRPC_PEER_STUBS=VENV_DIR/stubs"
        )
    grpc.__path__.append(os.path.join(stubs, "grpc"))
    from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc

    return empty_pb2, messages_pb2, test_pb2_grpc


empty_pb2, messages_pb2, test_pb2_grpc = _load_stubs()

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING_BIN = "x-grpc-test-echo-trailing-bin"
ECHO_INITIAL_VALUE = "test_initial_metadata_value"
ECHO_TRAILING_VALUE = b"\xab\xab\xab"
STATUS_MESSAGE = "test status message"
SPECIAL_STATUS_MESSAGE = (
    "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
)

# grpc.StatusCode by its integer code.
CODES = {code.value[0]: code for code in grpc.StatusCode}


def zeros(size):
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=bytes(size))


def parse_bool(text):
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------


class _Responder:
    """What a handler owes the call besides its messages: the echoed metadata,
    the call's compression and the echoed status.

    Response headers are left to the C core, which sends them with the first
    response message (or with the status). Only when the client asked for
    x-grpc-test-echo-initial does the handler send them itself, and then only
    right before its first response, so that headers stay as late as the C
    core makes them.
    """

    def __init__(self, context):
        self.context = context
        self.headers_decided = False
        self.compressing = False
        self.echo_initial = None
        for key, value in context.invocation_metadata() or ():
            if key == ECHO_INITIAL:
                self.echo_initial = value
            elif key == ECHO_TRAILING_BIN:
                context.set_trailing_metadata(((ECHO_TRAILING_BIN, value),))

    def before_response(self, compress=False):
        """Called before each response message (and before the status).

        `compress` only counts before the first one: grpcio takes the call's
        compression from the response headers."""
        if self.headers_decided:
            return
        self.headers_decided = True
        if compress:
            self.context.set_compression(grpc.Compression.Gzip)
            self.compressing = True
        if self.echo_initial is not None:
            self.context.send_initial_metadata(((ECHO_INITIAL, self.echo_initial),))

    def message_compression(self, wanted):
        """Before sending one streamed response: leaves it compressed only when
        `wanted` and the call compresses."""
        self.before_response(compress=wanted)
        if self.compressing and not wanted:
            self.context.disable_next_message_compression()

    def maybe_fail(self, echo_status):
        """The Echo Status feature: ends the call with the requested status.

        A message starting with DETAILS_PREFIX also carries rich error
        details (grpcio-status): a BadRequest violation of field "payload"
        described by the rest of the message, and a RetryInfo of 250 ms, as
        p2p-grpc's interop server sends them."""
        if echo_status is None or echo_status.code == 0:
            return
        self.before_response()
        if echo_status.message.startswith(DETAILS_PREFIX):
            self.context.abort_with_status(
                rich_status(echo_status.code, echo_status.message)
            )
        code = CODES.get(echo_status.code, grpc.StatusCode.UNKNOWN)
        self.context.abort(code, echo_status.message)

    def check_payload(self, response_type, size):
        if response_type != messages_pb2.COMPRESSABLE:
            self.before_response()
            self.context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unsupported response_type {response_type}",
            )
        if size < 0:
            self.before_response()
            self.context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"negative response size {size}"
            )


DETAILS_PREFIX = "with details: "


def rich_status(code, message):
    """A grpc.Status carrying google.rpc.Status with a BadRequest and a
    RetryInfo in grpc-status-details-bin."""
    from google.protobuf import any_pb2, duration_pb2
    from google.rpc import error_details_pb2, status_pb2
    from grpc_status import rpc_status

    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field="payload", description=message[len(DETAILS_PREFIX):]
            )
        ]
    )
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=250_000_000))
    details = []
    for detail in (bad, retry):
        packed = any_pb2.Any()
        packed.Pack(detail)
        details.append(packed)
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=details))


def run_rich_errors_client(args):
    """Calls UnaryCall asking for a status with details, and prints what
    grpcio-status reads of them: `bad_request: FIELD: DESCRIPTION`,
    `retry_info: SECONDS`, `other: TYPE_URL`."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    channel = grpc.insecure_channel(f"{args.server_host}:{args.server_port}")
    stub = test_pb2_grpc.TestServiceStub(channel)
    request = messages_pb2.SimpleRequest(
        response_status=messages_pb2.EchoStatus(code=3, message=DETAILS_PREFIX + args.text)
    )
    try:
        stub.UnaryCall(request, timeout=10)
        print("no error", flush=True)
        return 1
    except grpc.RpcError as error:
        status = rpc_status.from_call(error)
        if status is None:
            print(f"no details: {describe(error)}", flush=True)
            return 1
        print(f"code: {status.code} message: {status.message}", flush=True)
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                for violation in bad.field_violations:
                    print(f"bad_request: {violation.field}: {violation.description}", flush=True)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                delay = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
                print(f"retry_info: {delay}", flush=True)
            else:
                print(f"other: {detail.type_url}", flush=True)
    finally:
        channel.close()
    return 0


def run_health_client(args):
    """grpcio-health-checking's client against a server: prints `check
    SERVICE: STATUS` for each --check and `watch SERVICE: STATUS` (the first
    update) for each --watch; NOT_FOUND as a status for an unknown one."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = grpc.insecure_channel(f"{args.server_host}:{args.server_port}")
    stub = health_pb2_grpc.HealthStub(channel)
    names = health_pb2.HealthCheckResponse.ServingStatus.Name
    try:
        for service in args.check:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                print(f"check {service!r}: {names(reply.status)}", flush=True)
            except grpc.RpcError as error:
                print(f"check {service!r}: {error.code().name}", flush=True)
        for service in args.watch:
            updates = stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=10)
            first = next(updates)
            print(f"watch {service!r}: {names(first.status)}", flush=True)
            updates.cancel()
    finally:
        channel.close()
    return 0


def run_reflection_client(args):
    """grpcio-reflection's ProtoReflectionDescriptorDatabase (v1alpha)
    against a server: prints `service: NAME` for each service listed, then
    `METHOD: INPUT -> OUTPUT` for each --method resolved through it."""
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    channel = grpc.insecure_channel(f"{args.server_host}:{args.server_port}")
    try:
        database = ProtoReflectionDescriptorDatabase(channel)
        for service in sorted(database.get_services()):
            print(f"service: {service}", flush=True)
        pool = DescriptorPool(database)
        for method in args.method:
            found = pool.FindMethodByName(method)
            print(
                f"{method}: {found.input_type.full_name} -> {found.output_type.full_name}",
                flush=True,
            )
    finally:
        channel.close()
    return 0


def _wants(bool_value_holder, field):
    """The value of an optional BoolValue field (False when absent)."""
    return bool_value_holder.HasField(field) and getattr(bool_value_holder, field).value


def _sleep_us(interval_us):
    if interval_us > 0:
        time.sleep(interval_us / 1e6)


class TestService(test_pb2_grpc.TestServiceServicer):
    """grpc.testing.TestService as the interop descriptions' Server section
    specifies it.

    expect_compressed (CompressedRequest) is not checked: grpcio gives a
    handler neither the request's grpc-encoding header nor the message's
    compressed flag (see README.md)."""

    def EmptyCall(self, request, context):
        responder = _Responder(context)
        responder.before_response()
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        responder = _Responder(context)
        responder.maybe_fail(
            request.response_status if request.HasField("response_status") else None
        )
        responder.check_payload(request.response_type, request.response_size)
        responder.before_response(compress=_wants(request, "response_compressed"))
        return messages_pb2.SimpleResponse(payload=zeros(request.response_size))

    def CacheableUnaryCall(self, request, context):
        responder = _Responder(context)
        responder.headers_decided = True
        metadata = [("cache-control", "max-age=60, public")]
        if responder.echo_initial is not None:
            metadata.append((ECHO_INITIAL, responder.echo_initial))
        context.send_initial_metadata(tuple(metadata))
        body = str(time.time_ns()).encode()
        return messages_pb2.SimpleResponse(
            payload=messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=body)
        )

    def StreamingInputCall(self, request_iterator, context):
        responder = _Responder(context)
        total = 0
        for request in request_iterator:
            total += len(request.payload.body)
        responder.before_response()
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def _respond(self, responder, request):
        """The responses one StreamingOutputCallRequest asks for."""
        responder.maybe_fail(
            request.response_status if request.HasField("response_status") else None
        )
        for params in request.response_parameters:
            responder.check_payload(request.response_type, params.size)
        if not responder.headers_decided:
            # The call compresses when any response of the first request
            # asks for it; the others are then sent uncompressed one by one.
            if any(_wants(p, "compressed") for p in request.response_parameters):
                responder.before_response(compress=True)
        for params in request.response_parameters:
            _sleep_us(params.interval_us)
            responder.message_compression(_wants(params, "compressed"))
            yield messages_pb2.StreamingOutputCallResponse(payload=zeros(params.size))

    def StreamingOutputCall(self, request, context):
        responder = _Responder(context)
        yield from self._respond(responder, request)
        responder.before_response()

    def FullDuplexCall(self, request_iterator, context):
        responder = _Responder(context)
        for request in request_iterator:
            yield from self._respond(responder, request)
        responder.before_response()

    def HalfDuplexCall(self, request_iterator, context):
        responder = _Responder(context)
        requests = list(request_iterator)
        for request in requests:
            yield from self._respond(responder, request)
        responder.before_response()

    def UnimplementedCall(self, request, context):
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "grpc.testing.TestService/UnimplementedCall is not implemented",
        )


def run_server(args):
    options = []
    if args.keepalive_min_time_ms is not None:
        # The ping enforcement policy: a ping sooner than this after the
        # previous one is a strike (C core: GRPC_ARG_HTTP2_MIN_RECV_PING_
        # INTERVAL_WITHOUT_DATA_MS); more than max_ping_strikes strikes before
        # the server next sends headers or data end the connection with
        # GOAWAY ENHANCE_YOUR_CALM "too_many_pings".
        options.append(("grpc.http2.min_ping_interval_without_data_ms", args.keepalive_min_time_ms))
    if args.permit_without_calls is not None:
        # Without it, pings on a connection without calls are allowed only
        # every 2 hours.
        options.append(("grpc.keepalive_permit_without_calls", int(args.permit_without_calls)))
    if args.max_ping_strikes is not None:
        options.append(("grpc.http2.max_ping_strikes", args.max_ping_strikes))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=options)
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    # grpc.testing.UnimplementedService is deliberately not registered: the C
    # core answers calls to it with UNIMPLEMENTED.
    if args.use_tls:
        # TLS with the C core's own stack (BoringSSL); ALPN h2 is its default.
        with open(args.tls_cert_file, "rb") as cert, open(args.tls_key_file, "rb") as key:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        port = server.add_secure_port(f"127.0.0.1:{args.port}", credentials)
    else:
        port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    if port == 0:
        sys.exit(f"peer.py server: cannot listen on 127.0.0.1:{args.port}")
    server.start()

    stop = threading.Event()

    def watch_stdin():
        # The raw descriptor, not sys.stdin: a daemon thread blocked inside a
        # buffered reader makes interpreter shutdown abort.
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        stop.set()

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=watch_stdin, name="stdin-eof", daemon=True).start()
    print(f"listening on {port}", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop(grace=1).wait(5)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter finalization: the stdin thread may still be blocked.
    os._exit(0)


# ---------------------------------------------------------------------------
# A wire tap: reads the compressed flag of every gRPC message
# ---------------------------------------------------------------------------


class _MessageReader:
    """Reads HTTP/2 frames from one direction of a connection and records, for
    every gRPC message in its DATA frames, (stream id, compressed flag,
    length)."""

    PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    def __init__(self, client_side, record):
        self._buf = bytearray()
        self._preface = len(self.PREFACE) if client_side else 0
        self._streams = {}
        self._record = record

    def feed(self, data):
        self._buf += data
        if self._preface:
            if len(self._buf) < self._preface:
                return
            del self._buf[: self._preface]
            self._preface = 0
        while len(self._buf) >= 9:
            length = int.from_bytes(self._buf[0:3], "big")
            if len(self._buf) < 9 + length:
                return
            frame_type, flags = self._buf[3], self._buf[4]
            stream = int.from_bytes(self._buf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(self._buf[9 : 9 + length])
            del self._buf[: 9 + length]
            if frame_type == 0x0:  # DATA
                if flags & 0x8:  # PADDED
                    payload = payload[1 : len(payload) - payload[0]]
                self._data(stream, payload)

    def _data(self, stream, data):
        state = self._streams.setdefault(stream, [bytearray(), 0])
        i = 0
        while i < len(data):
            if state[1]:
                taken = min(state[1], len(data) - i)
                state[1] -= taken
                i += taken
                continue
            need = 5 - len(state[0])
            state[0] += data[i : i + need]
            i += min(need, len(data) - i)
            if len(state[0]) == 5:
                flag, length = state[0][0], int.from_bytes(state[0][1:5], "big")
                self._record(stream, flag, length)
                state[0] = bytearray()
                state[1] = length


class WireTap:
    """A TCP relay on 127.0.0.1 between a client channel and the server that
    notes the compressed flag of each gRPC message in both directions (grpcio
    shows an application neither the flags nor the grpc-encoding headers).
    The bytes pass unchanged; a message is noted before it is forwarded."""

    def __init__(self, host, port):
        self._upstream = (host, port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._messages = {"to_server": [], "to_client": []}
        self._sockets = []
        self._closed = False
        threading.Thread(target=self._accept, name="tap-accept", daemon=True).start()

    def _note(self, direction):
        def record(stream, flag, length):
            with self._lock:
                self._messages[direction].append((stream, flag, length))

        return record

    def _accept(self):
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                downstream.close()
                continue
            for sock in (downstream, upstream):
                # As the C core does: no Nagle delay for small frames.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [downstream, upstream]
            for src, dst, client_side, direction in (
                (downstream, upstream, True, "to_server"),
                (upstream, downstream, False, "to_client"),
            ):
                reader = _MessageReader(client_side, self._note(direction))
                threading.Thread(
                    target=self._pump, args=(src, dst, reader), name="tap-pump", daemon=True
                ).start()

    @staticmethod
    def _pump(src, dst, reader):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                reader.feed(data)
                dst.sendall(data)
        except OSError:
            pass
        for sock, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                sock.shutdown(how)
            except OSError:
                pass

    def take(self, direction):
        """The messages noted in `direction` since the last take, as
        (stream id, compressed flag, length)."""
        with self._lock:
            taken = self._messages[direction]
            self._messages[direction] = []
        return taken

    def close(self):
        self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.close()
            except OSError:
                pass


# ---------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------

CASE_TIMEOUT = 30.0

ALL_CASES = (
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_compressed_streaming",
    "server_compressed_streaming",
)


class CaseFailed(Exception):
    pass


class CaseUnsupported(Exception):
    pass


def check(condition, why):
    if not condition:
        raise CaseFailed(why)


def check_size(what, response, size):
    body = response.payload.body
    check(len(body) == size, f"{what}: payload of {len(body)} bytes, expected {size}")
    check(body == bytes(size), f"{what}: payload is not all zeros")


def describe(error):
    return f"{error.code().name}: {error.details()!r}"


class RequestQueue:
    """A request iterator fed one message at a time; `close()` half-closes."""

    _END = object()

    def __init__(self):
        self._queue = queue.Queue()

    def send(self, message):
        self._queue.put(message)

    def close(self):
        self._queue.put(self._END)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is self._END:
            # Stay ended if grpcio asks again.
            self._queue.put(self._END)
            raise StopIteration
        return item


def output_request(response_size, request_size):
    return messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=response_size)],
        payload=zeros(request_size),
    )


class InteropClient:
    def __init__(self, host, port, tls=None):
        """tls: None for plaintext, else (CA certificate PEM bytes, the
        name to check the server's certificate against, or None)."""
        self.host = host
        self.port = port
        self.target = f"{host}:{port}"
        self.tls = tls
        if tls is None:
            self.channel = grpc.insecure_channel(self.target)
        else:
            ca, override = tls
            options = [("grpc.ssl_target_name_override", override)] if override else []
            credentials = grpc.ssl_channel_credentials(root_certificates=ca)
            self.channel = grpc.secure_channel(self.target, credentials, options=options)
        self.stub = test_pb2_grpc.TestServiceStub(self.channel)
        self.deadline = None

    def close(self):
        self.channel.close()

    def timeout(self):
        """The time left of the running case, for each call's deadline."""
        return max(0.001, self.deadline - time.monotonic())

    def tapped(self):
        """A channel through a new WireTap, and the tap."""
        if self.tls is not None:
            raise CaseUnsupported("the wire tap reads plaintext HTTP/2 only, not TLS")
        tap = WireTap(self.host, self.port)
        channel = grpc.insecure_channel(f"127.0.0.1:{tap.port}")
        return tap, channel, test_pb2_grpc.TestServiceStub(channel)

    # -- the cases ----------------------------------------------------------

    def empty_unary(self):
        response = self.stub.EmptyCall(empty_pb2.Empty(), timeout=self.timeout())
        check(isinstance(response, empty_pb2.Empty), f"EmptyCall returned {type(response)}")

    def large_unary(self):
        request = messages_pb2.SimpleRequest(
            response_type=messages_pb2.COMPRESSABLE,
            response_size=314159,
            payload=zeros(271828),
        )
        response = self.stub.UnaryCall(request, timeout=self.timeout())
        check_size("UnaryCall", response, 314159)

    def client_streaming(self):
        sizes = (27182, 8, 1828, 45904)
        requests = (
            messages_pb2.StreamingInputCallRequest(payload=zeros(size)) for size in sizes
        )
        response = self.stub.StreamingInputCall(requests, timeout=self.timeout())
        check(
            response.aggregated_payload_size == 74922,
            f"aggregated_payload_size {response.aggregated_payload_size}, expected 74922",
        )

    def server_streaming(self):
        sizes = (31415, 9, 2653, 58979)
        request = messages_pb2.StreamingOutputCallRequest(
            response_type=messages_pb2.COMPRESSABLE,
            response_parameters=[messages_pb2.ResponseParameters(size=s) for s in sizes],
        )
        responses = list(self.stub.StreamingOutputCall(request, timeout=self.timeout()))
        check(len(responses) == 4, f"{len(responses)} responses, expected 4")
        for i, (response, size) in enumerate(zip(responses, sizes)):
            check_size(f"response {i}", response, size)

    def ping_pong(self):
        pairs = ((31415, 27182), (9, 8), (2653, 1828), (58979, 45904))
        requests = RequestQueue()
        call = self.stub.FullDuplexCall(requests, timeout=self.timeout())
        try:
            for i, (response_size, request_size) in enumerate(pairs):
                requests.send(output_request(response_size, request_size))
                try:
                    response = next(call)
                except StopIteration:
                    raise CaseFailed(f"the call ended after {i} responses, expected 4")
                check_size(f"response {i}", response, response_size)
            requests.close()
            extra = list(call)
            check(not extra, f"{4 + len(extra)} responses, expected 4")
            check(call.code() == grpc.StatusCode.OK, f"status {call.code()}")
        finally:
            requests.close()
            call.cancel()

    def empty_stream(self):
        call = self.stub.FullDuplexCall(iter(()), timeout=self.timeout())
        responses = list(call)
        check(not responses, f"{len(responses)} responses, expected none")
        check(call.code() == grpc.StatusCode.OK, f"status {call.code()}")

    def custom_metadata(self):
        metadata = ((ECHO_INITIAL, ECHO_INITIAL_VALUE), (ECHO_TRAILING_BIN, ECHO_TRAILING_VALUE))

        def check_echo(what, initial, trailing):
            got_initial = [v for k, v in initial or () if k == ECHO_INITIAL]
            got_trailing = [v for k, v in trailing or () if k == ECHO_TRAILING_BIN]
            check(
                got_initial == [ECHO_INITIAL_VALUE],
                f"{what}: initial metadata {ECHO_INITIAL} = {got_initial!r}, "
                f"expected [{ECHO_INITIAL_VALUE!r}] (all initial: {initial!r})",
            )
            check(
                got_trailing == [ECHO_TRAILING_VALUE],
                f"{what}: trailing metadata {ECHO_TRAILING_BIN} = {got_trailing!r}, "
                f"expected [{ECHO_TRAILING_VALUE!r}] (all trailing: {trailing!r})",
            )

        request = messages_pb2.SimpleRequest(
            response_type=messages_pb2.COMPRESSABLE,
            response_size=314159,
            payload=zeros(271828),
        )
        response, call = self.stub.UnaryCall.with_call(
            request, metadata=metadata, timeout=self.timeout()
        )
        check_size("UnaryCall", response, 314159)
        check_echo("UnaryCall", call.initial_metadata(), call.trailing_metadata())

        call = self.stub.FullDuplexCall(
            iter([output_request(314159, 271828)]), metadata=metadata, timeout=self.timeout()
        )
        responses = list(call)
        check(len(responses) == 1, f"FullDuplexCall: {len(responses)} responses, expected 1")
        check_size("FullDuplexCall", responses[0], 314159)
        check_echo("FullDuplexCall", call.initial_metadata(), call.trailing_metadata())

    def _expect_error(self, what, thunk, code, details=None):
        try:
            thunk()
        except grpc.RpcError as error:
            check(
                error.code() == code,
                f"{what}: ended with {describe(error)}, expected {code.name}",
            )
            if details is not None:
                check(
                    error.details() == details,
                    f"{what}: status message {error.details()!r}, expected {details!r}",
                )
            return error
        raise CaseFailed(f"{what}: succeeded, expected {code.name}")

    def status_code_and_message(self):
        status = messages_pb2.EchoStatus(code=2, message=STATUS_MESSAGE)
        self._expect_error(
            "UnaryCall",
            lambda: self.stub.UnaryCall(
                messages_pb2.SimpleRequest(response_status=status), timeout=self.timeout()
            ),
            grpc.StatusCode.UNKNOWN,
            STATUS_MESSAGE,
        )
        request = messages_pb2.StreamingOutputCallRequest(response_status=status)
        self._expect_error(
            "FullDuplexCall",
            lambda: list(self.stub.FullDuplexCall(iter([request]), timeout=self.timeout())),
            grpc.StatusCode.UNKNOWN,
            STATUS_MESSAGE,
        )

    def special_status_message(self):
        status = messages_pb2.EchoStatus(code=2, message=SPECIAL_STATUS_MESSAGE)
        self._expect_error(
            "UnaryCall",
            lambda: self.stub.UnaryCall(
                messages_pb2.SimpleRequest(response_status=status), timeout=self.timeout()
            ),
            grpc.StatusCode.UNKNOWN,
            SPECIAL_STATUS_MESSAGE,
        )

    def unimplemented_method(self):
        self._expect_error(
            "TestService/UnimplementedCall",
            lambda: self.stub.UnimplementedCall(empty_pb2.Empty(), timeout=self.timeout()),
            grpc.StatusCode.UNIMPLEMENTED,
        )

    def unimplemented_service(self):
        stub = test_pb2_grpc.UnimplementedServiceStub(self.channel)
        self._expect_error(
            "UnimplementedService/UnimplementedCall",
            lambda: stub.UnimplementedCall(empty_pb2.Empty(), timeout=self.timeout()),
            grpc.StatusCode.UNIMPLEMENTED,
        )

    def timeout_on_sleeping_server(self):
        requests = RequestQueue()
        requests.send(
            messages_pb2.StreamingOutputCallRequest(payload=zeros(27182))
        )
        try:
            call = self.stub.FullDuplexCall(requests, timeout=0.001)
            self._expect_error(
                "FullDuplexCall (1 ms timeout)",
                lambda: list(call),
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
        finally:
            requests.close()

    def cancel_after_begin(self):
        # On a connected channel, and after a moment, so that the call's
        # headers have gone out before it is cancelled.
        try:
            grpc.channel_ready_future(self.channel).result(timeout=self.timeout())
        except grpc.FutureTimeoutError:
            raise CaseFailed(f"the channel to {self.target} did not become ready")
        requests = RequestQueue()
        try:
            call = self.stub.StreamingInputCall.future(requests, timeout=self.timeout())
            time.sleep(0.1)
            if not call.cancel():
                raise CaseFailed(
                    "StreamingInputCall: ended before it was cancelled, with "
                    f"{call.code().name}: {call.details()!r}"
                )
            check(call.cancelled(), "StreamingInputCall: not cancelled after cancel()")
            check(
                call.code() == grpc.StatusCode.CANCELLED,
                f"StreamingInputCall: status {call.code()}, expected CANCELLED",
            )
        finally:
            requests.close()

    def cancel_after_first_response(self):
        requests = RequestQueue()
        call = self.stub.FullDuplexCall(requests, timeout=self.timeout())
        try:
            requests.send(output_request(31415, 27182))
            try:
                response = next(call)
            except StopIteration:
                raise CaseFailed("FullDuplexCall: ended without a response")
            check_size("response 0", response, 31415)
            if not call.cancel():
                raise CaseFailed(
                    "FullDuplexCall: ended before it was cancelled, with "
                    f"{call.code().name}: {call.details()!r}"
                )
            check(
                call.code() == grpc.StatusCode.CANCELLED,
                f"FullDuplexCall: status {call.code()}, expected CANCELLED",
            )
        finally:
            requests.close()

    # -- compression (through a WireTap, which shows the message flags) ------

    @staticmethod
    def _flags(tap, direction, what, count):
        messages = tap.take(direction)
        check(
            len(messages) == count,
            f"{what}: the tap saw {len(messages)} messages {direction.replace('_', ' ')}, "
            f"expected {count}",
        )
        return [flag for _, flag, _ in messages]

    def client_compressed_unary(self):
        def request(expect):
            return messages_pb2.SimpleRequest(
                response_type=messages_pb2.COMPRESSABLE,
                response_size=314159,
                payload=zeros(271828),
                expect_compressed=messages_pb2.BoolValue(value=expect),
            )

        tap, channel, stub = self.tapped()
        try:
            self._expect_error(
                "UnaryCall (probe: uncompressed, expect_compressed=true)",
                lambda: stub.UnaryCall(request(True), timeout=self.timeout()),
                grpc.StatusCode.INVALID_ARGUMENT,
            )
            tap.take("to_server")
            for what, expect, compression in (
                ("UnaryCall (compressed, expect_compressed=true)", True, grpc.Compression.Gzip),
                ("UnaryCall (uncompressed, expect_compressed=false)", False, None),
            ):
                try:
                    response = stub.UnaryCall(
                        request(expect), timeout=self.timeout(), compression=compression
                    )
                except grpc.RpcError as error:
                    raise CaseFailed(f"{what}: failed: {describe(error)}")
                check_size(what, response, 314159)
                flags = self._flags(tap, "to_server", what, 1)
                check(flags == [int(expect)], f"{what}: grpcio sent compressed flag {flags[0]}")
        finally:
            channel.close()
            tap.close()

    def server_compressed_unary(self):
        tap, channel, stub = self.tapped()
        try:
            for want in (True, False):
                what = f"UnaryCall (response_compressed={str(want).lower()})"
                request = messages_pb2.SimpleRequest(
                    response_type=messages_pb2.COMPRESSABLE,
                    response_size=314159,
                    payload=zeros(271828),
                    response_compressed=messages_pb2.BoolValue(value=want),
                )
                tap.take("to_client")
                try:
                    response = stub.UnaryCall(request, timeout=self.timeout())
                except grpc.RpcError as error:
                    raise CaseFailed(f"{what}: failed: {describe(error)}")
                check_size(what, response, 314159)
                flags = self._flags(tap, "to_client", what, 1)
                check(
                    flags == [int(want)],
                    f"{what}: the response's compressed flag is {flags[0]}",
                )
        finally:
            channel.close()
            tap.close()

    def client_compressed_streaming(self):
        def request(size, expect):
            return messages_pb2.StreamingInputCallRequest(
                payload=zeros(size), expect_compressed=messages_pb2.BoolValue(value=expect)
            )

        tap, channel, stub = self.tapped()
        try:
            self._expect_error(
                "StreamingInputCall (probe: uncompressed, expect_compressed=true)",
                lambda: stub.StreamingInputCall(
                    iter([request(27182, True)]), timeout=self.timeout()
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
            )
            tap.take("to_server")
            # What grpcio can send: the compressed first message, on a call
            # compressed throughout.
            what = "StreamingInputCall (one compressed message, expect_compressed=true)"
            try:
                response = stub.StreamingInputCall(
                    iter([request(27182, True)]),
                    timeout=self.timeout(),
                    compression=grpc.Compression.Gzip,
                )
            except grpc.RpcError as error:
                raise CaseFailed(f"{what}: failed: {describe(error)}")
            check(
                response.aggregated_payload_size == 27182,
                f"{what}: aggregated_payload_size {response.aggregated_payload_size}, "
                "expected 27182",
            )
            flags = self._flags(tap, "to_server", what, 1)
            check(flags == [1], f"{what}: grpcio sent compressed flag {flags[0]}")
        finally:
            channel.close()
            tap.close()
        raise CaseUnsupported(
            "grpcio's client API compresses every message of a call or none (no write "
            "flags, no disable_next_message_compression on the client side), so the "
            "compressed-then-uncompressed stream cannot be sent; ran the probe "
            "(INVALID_ARGUMENT as required) and a call with the compressed message alone "
            "(accepted, 27182)"
        )

    def server_compressed_streaming(self):
        wanted = ((31415, True), (92653, False))
        request = messages_pb2.StreamingOutputCallRequest(
            response_type=messages_pb2.COMPRESSABLE,
            response_parameters=[
                messages_pb2.ResponseParameters(
                    size=size, compressed=messages_pb2.BoolValue(value=compressed)
                )
                for size, compressed in wanted
            ],
        )
        tap, channel, stub = self.tapped()
        try:
            try:
                responses = list(stub.StreamingOutputCall(request, timeout=self.timeout()))
            except grpc.RpcError as error:
                raise CaseFailed(f"StreamingOutputCall: failed: {describe(error)}")
            check(len(responses) == 2, f"{len(responses)} responses, expected 2")
            for i, (response, (size, _)) in enumerate(zip(responses, wanted)):
                check_size(f"response {i}", response, size)
            flags = self._flags(tap, "to_client", "StreamingOutputCall", 2)
            want = [int(c) for _, c in wanted]
            check(flags == want, f"compressed flags of the responses {flags}, expected {want}")
        finally:
            channel.close()
            tap.close()

    # -- running ---------------------------------------------------------------

    def run(self, name):
        """Runs one case; returns ("PASSED"|"FAILED"|"UNSUPPORTED", reason)."""
        outcome = {}

        def body():
            try:
                getattr(self, name)()
                outcome["result"] = ("PASSED", None)
            except CaseFailed as error:
                outcome["result"] = ("FAILED", str(error))
            except CaseUnsupported as error:
                outcome["result"] = ("UNSUPPORTED", str(error))
            except grpc.RpcError as error:
                outcome["result"] = ("FAILED", f"call failed: {describe(error)}")
            except Exception as error:  # noqa: BLE001 - report, don't crash
                outcome["result"] = ("FAILED", f"{type(error).__name__}: {error}")

        self.deadline = time.monotonic() + CASE_TIMEOUT
        thread = threading.Thread(target=body, name=name, daemon=True)
        thread.start()
        thread.join(CASE_TIMEOUT + 2)
        if thread.is_alive():
            return ("FAILED", f"timed out after {CASE_TIMEOUT:.0f} s")
        return outcome["result"]


def run_client(args):
    tls = None
    if args.use_tls:
        if not args.ca_file:
            print("peer.py client: --use_tls=true needs --ca_file", file=sys.stderr)
            return 2
        with open(args.ca_file, "rb") as ca:
            tls = (ca.read(), args.server_host_override)
    if args.test_case == "all":
        cases = list(ALL_CASES)
    else:
        cases = [c.strip() for c in args.test_case.split(",") if c.strip()]
        unknown = [c for c in cases if c not in ALL_CASES]
        if unknown or not cases:
            print(
                f"peer.py client: unknown test case(s) {', '.join(unknown) or '(none)'}; "
                f"known: {', '.join(ALL_CASES)}, all",
                file=sys.stderr,
            )
            return 2
    client = InteropClient(args.server_host, args.server_port, tls)
    counts = {"PASSED": 0, "FAILED": 0, "UNSUPPORTED": 0}
    try:
        for name in cases:
            result, reason = client.run(name)
            counts[result] += 1
            print(f"{name}: {result}" + (f": {reason}" if reason else ""), flush=True)
    finally:
        client.close()
    print(
        f"{counts['PASSED']} passed, {counts['FAILED']} failed, "
        f"{counts['UNSUPPORTED']} unsupported",
        flush=True,
    )
    return 1 if counts["FAILED"] else 0


# ---------------------------------------------------------------------------
# Keepalive client
# ---------------------------------------------------------------------------


def run_keepalive_client(args):
    options = [
        # A keepalive ping every T ms ...
        ("grpc.keepalive_time_ms", args.keepalive_time_ms),
        # ... also while no call is open ...
        ("grpc.keepalive_permit_without_calls", 1),
        # ... and without the client's own limit of pings between data frames
        # (default 2). The C core also spaces pings by at least 1 s unless it
        # has received a DATA frame since the last ping: the calls below keep
        # data flowing, so pings go out at the keepalive rate.
        ("grpc.http2.max_pings_without_data", 0),
        # Never more than one ping in flight (the default without the
        # multiping experiment; said here so that it does not change).
        ("grpc.http2.max_inflight_pings", 1),
        # No BDP (flow-control) pings: every ping on the wire is a keepalive
        # ping, so the ping rate follows from the keepalive settings alone.
        ("grpc.http2.bdp_probe", 0),
    ]
    channel = grpc.insecure_channel(f"{args.server_host}:{args.server_port}", options=options)
    stub = test_pb2_grpc.TestServiceStub(channel)
    ok = failed = 0
    end = time.monotonic() + args.seconds
    interval = args.call_interval_ms / 1000.0
    errors = {}
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            stub.EmptyCall(empty_pb2.Empty(), timeout=5)
            ok += 1
        except grpc.RpcError as error:
            failed += 1
            key = describe(error)
            errors[key] = errors.get(key, 0) + 1
        pause = interval - (time.monotonic() - started)
        if pause > 0:
            time.sleep(min(pause, max(0.0, end - time.monotonic())))
    channel.close()
    for key, count in sorted(errors.items()):
        print(f"peer.py keepalive-client: {count} x {key}", file=sys.stderr, flush=True)
    print(f"calls ok={ok} failed={failed}", flush=True)
    return 0


# ---------------------------------------------------------------------------


def main(argv):
    parser = argparse.ArgumentParser(prog="peer.py", description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)

    server = modes.add_parser("server", help="serve grpc.testing.TestService on 127.0.0.1")
    server.add_argument("--port", type=int, required=True, help="0 picks a free port")
    server.add_argument("--keepalive_min_time_ms", type=int, default=None)
    server.add_argument("--permit_without_calls", type=parse_bool, default=None)
    server.add_argument("--max_ping_strikes", type=int, default=None)
    server.add_argument("--use_tls", type=parse_bool, default=False)
    server.add_argument("--tls_cert_file", help="PEM certificate chain (with --use_tls)")
    server.add_argument("--tls_key_file", help="PEM private key (with --use_tls)")

    client = modes.add_parser("client", help="run interop test cases against a server")
    client.add_argument("--server_host", default="127.0.0.1")
    client.add_argument("--server_port", type=int, required=True)
    client.add_argument("--test_case", default="all", help="a case, a comma list, or all")
    client.add_argument("--use_tls", type=parse_bool, default=False)
    client.add_argument("--ca_file", help="PEM CA certificates to trust (with --use_tls)")
    client.add_argument("--server_host_override", help="the name the certificate must carry")

    keepalive = modes.add_parser("keepalive-client", help="EmptyCall in a loop with keepalive pings")
    keepalive.add_argument("--server_host", default="127.0.0.1")
    keepalive.add_argument("--server_port", type=int, required=True)
    keepalive.add_argument("--keepalive_time_ms", type=int, required=True)
    keepalive.add_argument("--seconds", type=float, required=True)
    keepalive.add_argument("--call_interval_ms", type=int, default=50)

    rich = modes.add_parser("rich-errors-client", help="read a status with error details")
    rich.add_argument("--server_host", default="127.0.0.1")
    rich.add_argument("--server_port", type=int, required=True)
    rich.add_argument("--text", default="the payload is wrong")

    health = modes.add_parser("health-client", help="grpc.health.v1 Check and Watch")
    health.add_argument("--server_host", default="127.0.0.1")
    health.add_argument("--server_port", type=int, required=True)
    health.add_argument("--check", action="append", default=[])
    health.add_argument("--watch", action="append", default=[])

    reflection = modes.add_parser("reflection-client", help="grpc.reflection.v1alpha client")
    reflection.add_argument("--server_host", default="127.0.0.1")
    reflection.add_argument("--server_port", type=int, required=True)
    reflection.add_argument("--method", action="append", default=[])

    args = parser.parse_args(argv)
    if args.mode == "server":
        if args.use_tls and not (args.tls_cert_file and args.tls_key_file):
            print("peer.py server: --use_tls=true needs --tls_cert_file and --tls_key_file", file=sys.stderr)
            return 2
        return run_server(args)
    if args.mode == "client":
        return run_client(args)
    if args.mode == "rich-errors-client":
        return run_rich_errors_client(args)
    if args.mode == "health-client":
        return run_health_client(args)
    if args.mode == "reflection-client":
        return run_reflection_client(args)
    return run_keepalive_client(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
