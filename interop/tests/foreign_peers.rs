//! Interop with gRPC stacks nobody here wrote, both ways, through the
//! project's own `interop_server` and `interop_client` binaries:
//!
//! - **grpc-go 1.33.3**, Debian's `golang-google-grpc-dev`, in a small Go
//!   peer of ours (`interop/peers/go`) built offline in GOPATH mode;
//! - **the C core**, PyPI's `grpcio` 1.85, in a Python peer
//!   (`interop/peers/python`) set up in a virtualenv.
//!
//! Every standard case runs in both directions; the few that a peer cannot
//! take part in are listed with the reason, and asserted, so the test
//! notices when that changes. A peer that cannot be built or installed
//! fails the test: `.ci/install-peers` installs what they need.
//!
//! The tables the README's interop matrix is filled from are printed
//! (`cargo test -p p2p-grpc-interop --test foreign_peers -- --nocapture`).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use p2p_grpc::Channel;
use p2p_grpc_interop::client::ALL_CASES;
use p2p_grpc_interop::grpc::testing::test_service_client::TestServiceClient;
use p2p_grpc_interop::grpc::testing::Empty;

/// How long one client run (every case) may take.
const CLIENT_LIMIT: Duration = Duration::from_secs(240);

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

fn work_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("foreign-peers")
        .join(name)
}

/// Runs a setup script, failing the test with its output if it fails.
fn setup(script: &Path, out: &Path) {
    let output = Command::new("bash")
        .arg(script)
        .arg(out)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", script.display()));
    assert!(
        output.status.success(),
        "{} failed (run .ci/install-peers to install the peers' packages):\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The grpc-go peer, built once per test run.
fn go_peer() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let out = work_dir("go");
        setup(&peers_dir().join("go/build.sh"), &out);
        out.join("grpcpeer")
    })
}

/// The C-core (grpcio) peer's virtualenv, set up once per test run.
fn python_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let venv = work_dir("python");
        setup(&peers_dir().join("python/setup.sh"), &venv);
        venv
    })
}

fn python_peer(mode: &str) -> Command {
    let venv = python_venv();
    let mut command = Command::new(venv.join("bin/python"));
    command
        .env("GRPC_PEER_STUBS", venv.join("stubs"))
        .arg(peers_dir().join("python/peer.py"))
        .arg(mode);
    command
}

/// A server process, killed when dropped. Its stdin stays open: the peers
/// exit when it closes, so none outlives the test.
struct Served {
    child: Child,
    port: u16,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Everything the server wrote to stderr so far.
    fn stderr(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }
}

/// Starts a server and waits for its `listening on ...PORT` line.
fn serve(mut command: Command) -> Served {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(at) = line.find("listening on ") {
                    let port = line[at..].rsplit([':', ' ']).next().unwrap_or("");
                    break port.trim().parse::<u16>().expect("a port number");
                }
            }
            _ => {
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("{command:?} exited before listening:\n{err}");
            }
        }
    };
    // Keep draining both pipes so the server never blocks on them.
    std::thread::spawn(move || for _ in lines {});
    let (tx, stderr) = std::sync::mpsc::channel();
    let err = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Served {
        child,
        port,
        stderr,
    }
}

fn our_server() -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_interop_server"));
    command.arg("--port=0");
    serve(command)
}

fn go_server(extra: &[&str]) -> Served {
    let mut command = Command::new(go_peer());
    command.args(["server", "--port=0"]).args(extra);
    serve(command)
}

fn python_server() -> Served {
    let mut command = python_peer("server");
    command.arg("--port=0");
    serve(command)
}

/// What a client printed for one case: `PASSED`, `FAILED: why`,
/// `UNSUPPORTED: why` (ours says `NOT FULLY SUPPORTED: why`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed(String),
    Unsupported(String),
}

/// Runs a client to its end (killed after [`CLIENT_LIMIT`]) and reads the
/// outcome of each case from its output.
fn run_client(mut command: Command) -> BTreeMap<String, Outcome> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stdout).read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    while child.try_wait().expect("waiting for the client").is_none() {
        if started.elapsed() > CLIENT_LIMIT {
            let _ = child.kill();
            panic!("{command:?} did not finish within {CLIENT_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stdout = reader.join().expect("reader thread");
    let mut outcomes = BTreeMap::new();
    for line in stdout.lines() {
        let Some((case, rest)) = line.split_once(": ") else {
            continue;
        };
        if !ALL_CASES.contains(&case) {
            continue;
        }
        let outcome = if rest == "PASSED" {
            Outcome::Passed
        } else if let Some(why) = rest.strip_prefix("FAILED: ") {
            Outcome::Failed(why.to_owned())
        } else if let Some(why) = rest
            .strip_prefix("UNSUPPORTED: ")
            .or_else(|| rest.strip_prefix("NOT FULLY SUPPORTED: "))
        {
            Outcome::Unsupported(why.to_owned())
        } else {
            Outcome::Failed(format!("unreadable outcome {rest:?}"))
        };
        outcomes.insert(case.to_owned(), outcome);
    }
    outcomes
}

fn our_client(server: &Served) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_interop_client"));
    command.args([
        "--server_host=127.0.0.1",
        &format!("--server_port={}", server.port),
        "--test_case=all",
    ]);
    command
}

fn go_client(server: &Served) -> Command {
    let mut command = Command::new(go_peer());
    command.args([
        "client",
        "--server_host=127.0.0.1",
        &format!("--server_port={}", server.port),
        "--test_case=all",
    ]);
    command
}

fn python_client(server: &Served) -> Command {
    let mut command = python_peer("client");
    command.args([
        "--server_host=127.0.0.1",
        &format!("--server_port={}", server.port),
        "--test_case=all",
    ]);
    command
}

/// Expected: every case passes, except `exceptions` (case, what the
/// outcome's text contains, and whether it is a failure or unsupported).
fn expect_all(direction: &str, outcomes: &BTreeMap<String, Outcome>, exceptions: &[Exception]) {
    println!("{direction}:");
    for case in ALL_CASES {
        println!("  {case}: {:?}", outcomes.get(*case));
    }
    for case in ALL_CASES {
        let got = outcomes.get(*case);
        match exceptions.iter().find(|e| e.case == *case) {
            None => assert_eq!(got, Some(&Outcome::Passed), "{direction}: {case}"),
            Some(exception) => {
                let matches = match (got, exception.unsupported) {
                    (Some(Outcome::Failed(why)), false) => why.contains(exception.text),
                    (Some(Outcome::Unsupported(why)), true) => why.contains(exception.text),
                    _ => false,
                };
                assert!(
                    matches,
                    "{direction}: {case}: expected {exception:?} ({}), got {got:?}",
                    exception.why
                );
            }
        }
    }
}

/// A case a peer cannot pass, and why.
#[derive(Debug)]
struct Exception {
    case: &'static str,
    unsupported: bool,
    text: &'static str,
    why: &'static str,
}

#[test]
fn our_client_against_grpc_go() {
    let server = go_server(&[]);
    expect_all(
        "p2p-grpc client -> grpc-go server",
        &run_client(our_client(&server)),
        &[],
    );
}

#[test]
fn grpc_go_client_against_our_server() {
    let server = our_server();
    expect_all(
        "grpc-go client -> p2p-grpc server",
        &run_client(go_client(&server)),
        &[],
    );
}

/// A grpcio server cannot see whether a request arrived compressed, so it
/// accepts the plain probe the compression cases send first.
const GRPCIO_SERVER_CANNOT_CHECK_COMPRESSION: &str =
    "a grpcio handler sees neither a message's compressed flag nor grpc-encoding";

/// What our client cannot pass against a grpcio server.
const GRPCIO_SERVER_EXCEPTIONS: [Exception; 2] = [
    Exception {
        case: "client_compressed_unary",
        unsupported: false,
        text: "probe",
        why: GRPCIO_SERVER_CANNOT_CHECK_COMPRESSION,
    },
    Exception {
        case: "client_compressed_streaming",
        unsupported: false,
        text: "probe",
        why: GRPCIO_SERVER_CANNOT_CHECK_COMPRESSION,
    },
];

#[test]
fn our_client_against_the_c_core() {
    let server = python_server();
    expect_all(
        "p2p-grpc client -> C core (grpcio) server",
        &run_client(our_client(&server)),
        &GRPCIO_SERVER_EXCEPTIONS,
    );
}

#[test]
fn the_c_core_client_against_our_server() {
    let server = our_server();
    expect_all(
        "C core (grpcio) client -> p2p-grpc server",
        &run_client(python_client(&server)),
        &[Exception {
            case: "client_compressed_streaming",
            unsupported: true,
            text: "",
            why: "grpcio compresses a whole call or none of it: no message-by-message switch",
        }],
    );
}

#[test]
fn our_client_backs_off_when_grpc_go_says_too_many_pings() {
    // grpc-go's default policy: one PING per 5 minutes, none without calls.
    let server = go_server(&[]);
    common::run(async {
        let channel = Channel::builder()
            .keepalive(Duration::from_millis(100), Duration::from_secs(5))
            .keepalive_while_idle(true)
            .keepalive_floor_for_tests(Duration::ZERO)
            .connect_tcp(server.addr())
            .await
            .unwrap();
        while channel.keepalive_interval() != Some(Duration::from_millis(200)) {
            common::runtime().sleep(Duration::from_millis(10)).await;
        }
        // Calls go on over a fresh connection; only one racing the GOAWAY
        // may see it.
        let client = TestServiceClient::new(channel.clone());
        let mut failed = 0;
        for _ in 0..5 {
            if let Err(status) = client.empty_call(Empty {}).await {
                assert_eq!(status.code(), p2p_grpc::Code::Unavailable, "{status:?}");
                failed += 1;
            }
        }
        assert!(failed <= 1, "{failed} calls failed after the GOAWAY");
    });
    let log = server.stderr();
    assert!(
        log.contains("too many pings"),
        "grpc-go did not log the GOAWAY:\n{log}"
    );
}

#[test]
fn the_c_core_reads_our_too_many_pings_goaway() {
    // One call, then silence: the C core pings every 100 ms (at most once a
    // second without data), and our server's default policy counts every
    // ping without a call running as a strike.
    let server = our_server();
    let mut command = python_peer("keepalive-client");
    command.args([
        "--server_host=127.0.0.1",
        &format!("--server_port={}", server.port),
        "--keepalive_time_ms=100",
        "--seconds=6",
        "--call_interval_ms=100000",
    ]);
    let output = command.output().expect("the keepalive client runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "Received a GOAWAY with error code ENHANCE_YOUR_CALM and debug data equal to \"too_many_pings\""
        ),
        "the C core saw no too_many_pings GOAWAY:\n{stderr}"
    );
}

// -- TLS ---------------------------------------------------------------------
//
// The same cases over TLS, with the test certificates `interop_server` and
// `interop_client` ship (`interop/certs/`, issued for `*.test.google.fr`):
// each side checks the other's ALPN `h2` and the server's certificate
// against gRPC's override name, `foo.test.google.fr`.

fn cert_file(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("certs")
        .join(name)
        .display()
        .to_string()
}

const OVERRIDE: &str = "--server_host_override=foo.test.google.fr";

fn tls_server_flags() -> [String; 3] {
    [
        "--use_tls=true".to_owned(),
        format!("--tls_cert_file={}", cert_file("server1.pem")),
        format!("--tls_key_file={}", cert_file("server1.key")),
    ]
}

fn tls_client_flags() -> [String; 3] {
    [
        "--use_tls=true".to_owned(),
        format!("--ca_file={}", cert_file("ca.pem")),
        OVERRIDE.to_owned(),
    ]
}

fn our_tls_server() -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_interop_server"));
    command.args(["--port=0", "--use_tls=true"]);
    serve(command)
}

fn our_tls_client(server: &Served) -> Command {
    let mut command = our_client(server);
    command.args(["--use_tls=true", "--use_test_ca=true", OVERRIDE]);
    command
}

#[test]
fn our_client_against_grpc_go_over_tls() {
    let flags = tls_server_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = go_server(&flags);
    expect_all(
        "p2p-grpc client -> grpc-go server, TLS",
        &run_client(our_tls_client(&server)),
        &[],
    );
}

#[test]
fn grpc_go_client_against_our_server_over_tls() {
    let server = our_tls_server();
    let mut client = go_client(&server);
    client.args(tls_client_flags());
    expect_all(
        "grpc-go client -> p2p-grpc server, TLS",
        &run_client(client),
        &[],
    );
}

#[test]
fn our_client_against_the_c_core_over_tls() {
    let mut command = python_peer("server");
    command.arg("--port=0").args(tls_server_flags());
    let server = serve(command);
    expect_all(
        "p2p-grpc client -> C core (grpcio) server, TLS",
        &run_client(our_tls_client(&server)),
        &GRPCIO_SERVER_EXCEPTIONS,
    );
}

/// The grpcio client checks compressed flags through a plaintext wire tap,
/// which cannot read TLS.
const TAP_NEEDS_PLAINTEXT: &str = "the wire tap reads plaintext HTTP/2 only";

#[test]
fn the_c_core_client_against_our_server_over_tls() {
    let server = our_tls_server();
    let mut client = python_client(&server);
    client.args(tls_client_flags());
    let tapped = |case| Exception {
        case,
        unsupported: true,
        text: TAP_NEEDS_PLAINTEXT,
        why: TAP_NEEDS_PLAINTEXT,
    };
    expect_all(
        "C core (grpcio) client -> p2p-grpc server, TLS",
        &run_client(client),
        &[
            tapped("client_compressed_unary"),
            tapped("server_compressed_unary"),
            tapped("client_compressed_streaming"),
            tapped("server_compressed_streaming"),
        ],
    );
}

/// Runs one of the Python peer's client modes against `server` with
/// `args`; returns what it printed, failing the test if it failed.
fn python_mode(mode: &str, server: &Served, args: &[&str]) -> String {
    let mut command = python_peer(mode);
    command
        .arg("--server_host=127.0.0.1")
        .arg(format!("--server_port={}", server.port))
        .args(args);
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("the {mode} runs: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{mode}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

// -- Rich error details --------------------------------------------------------
//
// `google.rpc.Status` in `grpc-status-details-bin`, with a `BadRequest` and a
// `RetryInfo`, both ways with the C core's grpcio-status: an echoed status
// whose message starts with "with details: " carries them, on our server
// and on the Python peer's.

#[test]
fn the_c_core_reads_the_error_details_we_send() {
    let server = our_server();
    let stdout = python_mode(
        "rich-errors-client",
        &server,
        &["--text=name must not be empty"],
    );
    assert!(
        stdout.contains("code: 3 message: with details: name must not be empty"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bad_request: payload: name must not be empty"),
        "{stdout}"
    );
    assert!(stdout.contains("retry_info: 0.25"), "{stdout}");
}

#[test]
fn we_read_the_error_details_the_c_core_sends() {
    use p2p_grpc_interop::grpc::testing::{EchoStatus, SimpleRequest};
    let server = python_server();
    common::run(async {
        let client = TestServiceClient::new(Channel::connect_tcp(server.addr()).await.unwrap());
        let status = client
            .unary_call(SimpleRequest {
                response_status: Some(EchoStatus {
                    code: 3,
                    message: "with details: age is negative".into(),
                }),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), p2p_grpc::Code::InvalidArgument);
        let details = status.error_details().expect("a google.rpc.Status");
        let bad = details.bad_request.expect("a BadRequest");
        assert_eq!(bad.field_violations[0].field, "payload");
        assert_eq!(bad.field_violations[0].description, "age is negative");
        assert_eq!(
            details.retry_info.and_then(|info| info.retry_delay()),
            Some(Duration::from_millis(250))
        );
    });
}

// -- Health checking ------------------------------------------------------------

/// grpcio-health-checking's client checks and watches our interop server,
/// which serves grpc.health.v1.Health with TestService SERVING.
#[test]
fn the_c_core_health_client_checks_and_watches_our_server() {
    let server = our_server();
    let stdout = python_mode(
        "health-client",
        &server,
        &[
            "--check=",
            "--check=grpc.testing.TestService",
            "--check=no.such.Service",
            "--watch=grpc.testing.TestService",
            "--watch=no.such.Service",
        ],
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "check '': SERVING",
            "check 'grpc.testing.TestService': SERVING",
            "check 'no.such.Service': NOT_FOUND",
            "watch 'grpc.testing.TestService': SERVING",
            "watch 'no.such.Service': SERVICE_UNKNOWN",
        ]
    );
}

// -- Server reflection -------------------------------------------------------------

/// grpcio-reflection's descriptor database (v1alpha) lists our interop
/// server's services and resolves a method's types through reflection.
#[test]
fn the_c_core_reflection_client_lists_and_resolves_our_services() {
    let server = our_server();
    let stdout = python_mode(
        "reflection-client",
        &server,
        &[
            "--method=grpc.testing.TestService.UnaryCall",
            "--method=grpc.testing.TestService.FullDuplexCall",
        ],
    );
    for line in [
        "service: grpc.health.v1.Health",
        "service: grpc.reflection.v1.ServerReflection",
        "service: grpc.reflection.v1alpha.ServerReflection",
        "service: grpc.testing.TestService",
        "grpc.testing.TestService.UnaryCall: grpc.testing.SimpleRequest -> grpc.testing.SimpleResponse",
        "grpc.testing.TestService.FullDuplexCall: grpc.testing.StreamingOutputCallRequest -> grpc.testing.StreamingOutputCallResponse",
    ] {
        assert!(stdout.lines().any(|l| l == line), "no {line:?} in:\n{stdout}");
    }
}
