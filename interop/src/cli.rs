//! Command lines of `interop_server` and `interop_client`, with the flags of
//! the interop test descriptions, parsed by hand (`--flag=value` or
//! `--flag value`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use p2p_grpc::tls::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use p2p_grpc::Channel;

use crate::client::{self, CaseError, InteropClient, ALL_CASES};

/// Exit status: every case passed.
pub const EXIT_OK: i32 = 0;
/// Exit status: a case failed (or the server could not run).
pub const EXIT_FAILED: i32 = 1;
/// Exit status: bad command line.
pub const EXIT_USAGE: i32 = 2;
/// Exit status: no case failed, but some could only run in part.
pub const EXIT_UNSUPPORTED: i32 = 3;

/// The longest a single case may take.
pub const CASE_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Parsed `--name=value` / `--name value` flags.
#[derive(Debug, Default)]
pub struct Flags {
    pairs: Vec<(String, String)>,
}

impl Flags {
    /// Parses `args` (without the program name); every flag must be one of
    /// `known`.
    pub fn parse(args: impl IntoIterator<Item = String>, known: &[&str]) -> Result<Self, String> {
        let mut pairs = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None if flag == "help" => ("help".to_owned(), String::new()),
                None => {
                    let value = args
                        .next()
                        .ok_or_else(|| format!("--{flag} needs a value"))?;
                    (flag.to_owned(), value)
                }
            };
            if name != "help" && !known.contains(&name.as_str()) {
                return Err(format!("unknown flag --{name}"));
            }
            pairs.push((name, value));
        }
        Ok(Flags { pairs })
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `--help` was given.
    pub fn help(&self) -> bool {
        self.get("help").is_some()
    }

    /// A boolean flag (`true`/`false`), `default` when absent.
    pub fn bool(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.get(name) {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(format!("--{name}: expected true or false, got {other:?}")),
        }
    }

    /// A port number.
    pub fn port(&self, name: &str, default: u16) -> Result<u16, String> {
        match self.get(name) {
            None => Ok(default),
            Some(port) => port
                .parse()
                .map_err(|_| format!("--{name}: not a port number: {port:?}")),
        }
    }
}

/// The test certificates the interop binaries use by default, made by
/// `cargo test -p p2p-grpc-interop --test interop_self -- --ignored
/// write_test_certs`: a CA, and a server certificate it issued for
/// `*.test.google.fr` (so `--server_host_override=foo.test.google.fr`
/// works, as in gRPC's interop tests), `localhost`, `127.0.0.1` and `::1`.
pub mod test_certs {
    /// The test CA's certificate (PEM).
    pub const CA: &str = include_str!("../certs/ca.pem");
    /// The server's certificate (PEM).
    pub const SERVER_CERT: &str = include_str!("../certs/server1.pem");
    /// The server's private key (PEM).
    pub const SERVER_KEY: &str = include_str!("../certs/server1.key");
    /// A client certificate the CA issued, for mutual TLS (PEM).
    pub const CLIENT_CERT: &str = include_str!("../certs/client.pem");
    /// The client's private key (PEM).
    pub const CLIENT_KEY: &str = include_str!("../certs/client.key");
}

/// The server's TLS settings from `--tls_cert_file` and `--tls_key_file`
/// (the test certificate by default).
fn server_tls(flags: &Flags) -> Result<ServerTlsConfig, String> {
    let identity = match (flags.get("tls_cert_file"), flags.get("tls_key_file")) {
        (None, None) => Identity::from_pem(test_certs::SERVER_CERT, test_certs::SERVER_KEY),
        (Some(cert), Some(key)) => Identity::from_pem_files(cert, key),
        _ => return Err("--tls_cert_file and --tls_key_file go together".into()),
    }
    .map_err(|err| err.to_string())?;
    Ok(ServerTlsConfig::new(identity))
}

/// The client's TLS settings: `--use_test_ca` or `--ca_file` (else the
/// Mozilla roots), `--server_host_override` as the name checked.
fn client_tls(flags: &Flags) -> Result<ClientTlsConfig, String> {
    let mut config = ClientTlsConfig::new();
    if let Some(file) = flags.get("ca_file") {
        config =
            config.ca_certificates(Certificate::from_pem_file(file).map_err(|e| e.to_string())?);
    } else if flags.bool("use_test_ca", false)? {
        config = config
            .ca_certificates(Certificate::from_pem(test_certs::CA).map_err(|e| e.to_string())?);
    }
    if let Some(name) = flags.get("server_host_override") {
        config = config.server_name(name);
    }
    Ok(config)
}

const SERVER_USAGE: &str = "\
usage: interop_server [--port=PORT] [--use_tls=false] [--transport=tcp|libp2p]
                      [--tls_cert_file=PEM --tls_key_file=PEM]

Serves grpc.testing.TestService on 0.0.0.0:PORT (default 10000), plaintext,
or TLS with --use_tls=true (the certificate and key files given, else the
test certificate for *.test.google.fr). With --transport=libp2p: as a libp2p node (TCP, noise,
yamux) on /ip4/0.0.0.0/tcp/PORT, through a GrpcStream (/grpc/0.1.0); it
prints the address to dial, with /p2p/<peer id>.";

/// `interop_server`'s main: returns the exit status.
pub fn server_main(args: impl IntoIterator<Item = String>) -> i32 {
    let flags = match Flags::parse(
        args,
        &[
            "port",
            "use_tls",
            "transport",
            "tls_cert_file",
            "tls_key_file",
        ],
    ) {
        Ok(flags) if flags.help() => {
            println!("{SERVER_USAGE}");
            return EXIT_OK;
        }
        Ok(flags) => flags,
        Err(err) => {
            eprintln!("interop_server: {err}\n{SERVER_USAGE}");
            return EXIT_USAGE;
        }
    };
    let (port, tls) = match (flags.port("port", 10000), flags.bool("use_tls", false)) {
        (Ok(port), Ok(tls)) => (port, tls),
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("interop_server: {err}");
            return EXIT_USAGE;
        }
    };
    let tls = match tls.then(|| server_tls(&flags)).transpose() {
        Ok(tls) => tls,
        Err(err) => {
            eprintln!("interop_server: {err}");
            return EXIT_USAGE;
        }
    };
    match flags.get("transport").unwrap_or("tcp") {
        "tcp" => {}
        "libp2p" if tls.is_some() => {
            eprintln!("interop_server: --use_tls: libp2p connections are secured by noise");
            return EXIT_USAGE;
        }
        "libp2p" => return libp2p::serve(port),
        other => {
            eprintln!("interop_server: --transport: tcp or libp2p, not {other:?}");
            return EXIT_USAGE;
        }
    }
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    crate::block_on(async move {
        let builder = crate::server::server_builder(None).map(|builder| match tls {
            Some(tls) => builder.tls(tls),
            None => builder,
        });
        let server = match builder.and_then(|builder| builder.build()) {
            Ok(server) => server,
            Err(err) => {
                eprintln!("interop_server: {err}");
                return EXIT_FAILED;
            }
        };
        // grpc.health.v1.Health: the server and TestService are SERVING.
        let health = p2p_grpc::health::HealthReporter::attach(&server);
        health.set_serving("grpc.testing.TestService");
        // Server reflection (v1 and v1alpha) of the interop protos.
        match p2p_grpc::reflection::Reflection::from_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
        {
            Ok(reflection) => reflection.attach(&server),
            Err(err) => {
                eprintln!("interop_server: the descriptors do not decode: {err}");
                return EXIT_FAILED;
            }
        }
        let listener = match std::net::TcpListener::bind(addr) {
            Ok(listener) => listener,
            Err(err) => {
                eprintln!("interop_server: cannot listen on {addr}: {err}");
                return EXIT_FAILED;
            }
        };
        // The real address: port 0 asks the system for a free port.
        let local = listener.local_addr().unwrap_or(addr);
        println!("interop_server: listening on {local}");
        match server.serve_listener(listener).await {
            Ok(()) => EXIT_OK,
            Err(err) => {
                eprintln!("interop_server: {err}");
                EXIT_FAILED
            }
        }
    })
}

const CLIENT_USAGE: &str = "\
usage: interop_client [--server_host=HOST] [--server_port=PORT]
                      [--server_host_override=HOST] [--test_case=CASE|all]
                      [--use_tls=false [--use_test_ca=false | --ca_file=PEM]]
       interop_client --transport=libp2p --server_addr=MULTIADDR/p2p/PEER
                      [--test_case=CASE|all]

Runs gRPC interop test cases against HOST:PORT (default localhost:10000),
plaintext or, with --use_tls=true, over TLS trusting the test CA
(--use_test_ca), the CA file given, or else the Mozilla roots, and checking
the --server_host_override name when given; or, with --transport=libp2p, against
the libp2p peer at MULTIADDR through a GrpcStream. Exit status: 0 every
case passed, 1 a case failed, 2 bad command line, 3 no case failed but
some ran only in part.

Cases:";

/// `interop_client`'s main: returns the exit status.
pub fn client_main(args: impl IntoIterator<Item = String>) -> i32 {
    let known = [
        "server_host",
        "server_port",
        "server_host_override",
        "test_case",
        "use_tls",
        "use_test_ca",
        "ca_file",
        "transport",
        "server_addr",
    ];
    let usage = || format!("{CLIENT_USAGE} {}", ALL_CASES.join(", "));
    let flags = match Flags::parse(args, &known) {
        Ok(flags) if flags.help() => {
            println!("{}", usage());
            return EXIT_OK;
        }
        Ok(flags) => flags,
        Err(err) => {
            eprintln!("interop_client: {err}\n{}", usage());
            return EXIT_USAGE;
        }
    };
    let host = flags.get("server_host").unwrap_or("localhost").to_owned();
    let (port, tls) = match (
        flags.port("server_port", 10000),
        flags.bool("use_tls", false),
    ) {
        (Ok(port), Ok(tls)) => (port, tls),
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("interop_client: {err}");
            return EXIT_USAGE;
        }
    };
    let tls = match tls.then(|| client_tls(&flags)).transpose() {
        Ok(tls) => tls,
        Err(err) => {
            eprintln!("interop_client: {err}");
            return EXIT_USAGE;
        }
    };
    let case = flags.get("test_case").unwrap_or("all");
    let cases: Vec<&str> = if case == "all" {
        ALL_CASES.to_vec()
    } else if ALL_CASES.contains(&case) {
        vec![case]
    } else {
        eprintln!("interop_client: unknown test case {case:?}\n{}", usage());
        return EXIT_USAGE;
    };
    match flags.get("transport").unwrap_or("tcp") {
        "tcp" => {}
        "libp2p" => {
            let Some(addr) = flags.get("server_addr") else {
                eprintln!("interop_client: --transport=libp2p needs --server_addr");
                return EXIT_USAGE;
            };
            return libp2p::run_cases(addr, &cases);
        }
        other => {
            eprintln!("interop_client: --transport: tcp or libp2p, not {other:?}");
            return EXIT_USAGE;
        }
    }
    let addr = match (host.as_str(), port).to_socket_addrs() {
        Ok(mut addrs) => match addrs.next() {
            Some(addr) => addr,
            None => {
                eprintln!("interop_client: {host} has no address");
                return EXIT_FAILED;
            }
        },
        Err(err) => {
            eprintln!("interop_client: cannot resolve {host}: {err}");
            return EXIT_FAILED;
        }
    };
    let authority = format!(
        "{}:{port}",
        flags.get("server_host_override").unwrap_or(&host)
    );
    crate::block_on(async move {
        let Some(runtime) = p2p_grpc::rt::default_runtime() else {
            eprintln!("interop_client: no p2p-grpc runtime feature enabled");
            return EXIT_FAILED;
        };
        let mut builder = Channel::builder();
        match authority.parse() {
            Ok(authority) => builder = builder.authority(authority),
            Err(err) => {
                eprintln!("interop_client: bad authority {authority:?}: {err}");
                return EXIT_USAGE;
            }
        }
        if let Some(tls) = tls {
            builder = builder.tls(tls);
        }
        let channel = match builder.connect_tcp(addr).await {
            Ok(channel) => channel,
            Err(err) => {
                eprintln!("interop_client: cannot connect to {addr}: {err}");
                return EXIT_FAILED;
            }
        };
        run_all(
            InteropClient::new(channel, runtime.clone()),
            &runtime,
            &cases,
        )
        .await
    })
}

/// Runs `cases` with `client`, printing each outcome; returns the exit status.
async fn run_all(
    client: InteropClient,
    runtime: &p2p_grpc::rt::SharedRuntime,
    cases: &[&str],
) -> i32 {
    let (mut failed, mut partial) = (0, 0);
    for case in cases {
        let result = client::with_limit(runtime, CASE_TIME_LIMIT, client.run(case))
            .await
            .unwrap_or_else(|| {
                Err(CaseError::Failed(format!(
                    "did not finish within {CASE_TIME_LIMIT:?}"
                )))
            });
        match result {
            Ok(()) => println!("{case}: PASSED"),
            Err(err @ CaseError::Failed(_)) => {
                failed += 1;
                println!("{case}: {err}");
            }
            Err(err @ CaseError::Unsupported(_)) => {
                partial += 1;
                println!("{case}: {err}");
            }
        }
    }
    let passed = cases.len() - failed - partial;
    if cases.len() > 1 {
        println!(
            "{passed} passed, {failed} failed, {partial} not fully supported (of {})",
            cases.len()
        );
    }
    if failed > 0 {
        EXIT_FAILED
    } else if partial > 0 {
        EXIT_UNSUPPORTED
    } else {
        EXIT_OK
    }
}

mod libp2p {
    //! `--transport=libp2p`: the interop pair over a libp2p node.

    use p2p_grpc::libp2p::libp2p::multiaddr::Protocol;
    use p2p_grpc::libp2p::libp2p::Multiaddr;
    use p2p_grpc::libp2p::{GrpcStream, Node};

    use super::{run_all, EXIT_FAILED, EXIT_USAGE};
    use crate::client::InteropClient;

    /// Serves the interop service on a libp2p node on `port` until killed.
    pub(super) fn serve(port: u16) -> i32 {
        crate::block_on(async move {
            let result = async {
                let server = crate::server::server_builder(None)?;
                let node = Node::builder().tcp_transport().build()?;
                let grpc = GrpcStream::builder().server(server).build(node.control())?;
                let _serving = grpc.serve()?;
                let addr: Multiaddr = format!("/ip4/0.0.0.0/tcp/{port}").parse()?;
                let addr = node.listen_on(addr).await?;
                // `listen_on` gives the address with `/p2p/<peer id>`.
                println!("interop_server: listening on {addr}");
                futures::future::pending::<()>().await;
                Ok::<(), Box<dyn std::error::Error>>(())
            }
            .await;
            match result {
                Ok(()) => super::EXIT_OK,
                Err(err) => {
                    eprintln!("interop_server: {err}");
                    EXIT_FAILED
                }
            }
        })
    }

    /// Runs `cases` against the libp2p peer at `addr` (with `/p2p/`).
    pub(super) fn run_cases(addr: &str, cases: &[&str]) -> i32 {
        let addr: Multiaddr = match addr.parse() {
            Ok(addr) => addr,
            Err(err) => {
                eprintln!("interop_client: bad --server_addr {addr:?}: {err}");
                return EXIT_USAGE;
            }
        };
        let Some(Protocol::P2p(peer)) = addr.iter().last() else {
            eprintln!("interop_client: --server_addr must end with /p2p/<peer id>");
            return EXIT_USAGE;
        };
        crate::block_on(async move {
            let Some(runtime) = p2p_grpc::rt::default_runtime() else {
                eprintln!("interop_client: no p2p-grpc runtime feature enabled");
                return EXIT_FAILED;
            };
            let node = match Node::builder().tcp_transport().build() {
                Ok(node) => node,
                Err(err) => {
                    eprintln!("interop_client: {err}");
                    return EXIT_FAILED;
                }
            };
            node.add_address(peer, addr);
            let grpc = match GrpcStream::new(node.control()) {
                Ok(grpc) => grpc,
                Err(err) => {
                    eprintln!("interop_client: {err}");
                    return EXIT_FAILED;
                }
            };
            let client = InteropClient::new(grpc.client(peer), runtime.clone());
            run_all(client, &runtime, cases).await
        })
    }
}
