//! Our interop client runs every case against our interop server, in
//! process, over TCP on 127.0.0.1. One test per case.

mod common;

use common::Expect;

fn case(name: &str, expect: Expect) {
    common::run(async {
        let addr = common::start_server();
        let client = common::client(addr).await;
        let result = client.run(name).await;
        common::check("p2p-grpc's interop server", name, &result, expect);
    });
}

macro_rules! cases {
    ($($name:ident => $expect:expr,)*) => {
        $(
            #[test]
            fn $name() {
                case(stringify!($name), $expect);
            }
        )*

        #[test]
        fn every_case_is_tested() {
            let tested = [$(stringify!($name)),*];
            assert_eq!(&tested[..], p2p_grpc_interop::client::ALL_CASES);
        }
    };
}

cases! {
    empty_unary => Expect::Pass,
    large_unary => Expect::Pass,
    client_streaming => Expect::Pass,
    server_streaming => Expect::Pass,
    ping_pong => Expect::Pass,
    empty_stream => Expect::Pass,
    custom_metadata => Expect::Pass,
    status_code_and_message => Expect::Pass,
    special_status_message => Expect::Pass,
    unimplemented_method => Expect::Pass,
    unimplemented_service => Expect::Pass,
    timeout_on_sleeping_server => Expect::Pass,
    cancel_after_begin => Expect::Pass,
    cancel_after_first_response => Expect::Pass,
    client_compressed_unary => Expect::Pass,
    server_compressed_unary => Expect::Pass,
    client_compressed_streaming => Expect::Pass,
    server_compressed_streaming => Expect::Pass,
}

/// `--test_case=all` through the command-line entry point, as the binary
/// runs it: every case passes.
#[test]
fn client_main_runs_every_case() {
    // `client_main` runs its own `block_on`, so the server gets a thread of
    // its own (where it stays up, under every runtime, until the process ends).
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        p2p_grpc::rt::block_on(async move {
            sender.send(common::start_server()).unwrap();
            futures::future::pending::<()>().await
        })
    });
    let addr = receiver.recv().unwrap();
    let args = |case: &str| {
        vec![
            "--server_host=127.0.0.1".to_owned(),
            format!("--server_port={}", addr.port()),
            format!("--test_case={case}"),
            "--use_tls=false".to_owned(),
        ]
    };
    assert_eq!(p2p_grpc_interop::cli::client_main(args("large_unary")), 0);
    assert_eq!(
        p2p_grpc_interop::cli::client_main(args("client_compressed_streaming")),
        0
    );
    assert_eq!(p2p_grpc_interop::cli::client_main(args("all")), 0);
}

/// Starts the `interop_server` binary with `args`; returns it and the
/// address it printed.
fn spawn_server(args: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;

    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_interop_server"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("interop_server starts");
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("interop_server: listening on ")
        .unwrap_or_else(|| panic!("interop_server said {line:?}"))
        .to_owned();
    (server, addr)
}

/// `--use_tls=true` on both binaries, with the test certificates they
/// ship and gRPC's override name: every case passes over TLS.
#[test]
fn every_case_passes_over_tls() {
    let (mut server, addr) = spawn_server(&["--use_tls=true", "--port=0"]);
    let port = addr.rsplit(':').next().unwrap().to_owned();
    let args = |extra: &[&str]| {
        let mut args = vec![
            "--server_host=127.0.0.1".to_owned(),
            format!("--server_port={port}"),
            "--use_tls=true".to_owned(),
        ];
        args.extend(extra.iter().map(|arg| arg.to_string()));
        args
    };
    let all = p2p_grpc_interop::cli::client_main(args(&[
        "--use_test_ca=true",
        "--server_host_override=foo.test.google.fr",
        "--test_case=all",
    ]));
    // Without the test CA, the Mozilla roots do not trust the server.
    let untrusted = p2p_grpc_interop::cli::client_main(args(&["--test_case=empty_unary"]));
    // A name the certificate does not carry.
    let misnamed = p2p_grpc_interop::cli::client_main(args(&[
        "--use_test_ca=true",
        "--server_host_override=foo.example.com",
        "--test_case=empty_unary",
    ]));
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(all, 0);
    assert_eq!(untrusted, p2p_grpc_interop::cli::EXIT_FAILED);
    assert_eq!(misnamed, p2p_grpc_interop::cli::EXIT_FAILED);
}

/// Writes the test certificates the interop binaries ship
/// (`interop/certs/`), made by our own test CA (rcgen):
/// `cargo test -p p2p-grpc-interop --test interop_self -- --ignored write_test_certs`.
#[test]
#[ignore = "writes interop/certs/; run by hand to renew the test certificates"]
fn write_test_certs() {
    use p2p_grpc_test_support::certs::{TestCa, INTEROP_SERVER_NAMES};

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("certs");
    std::fs::create_dir_all(&dir).unwrap();
    let ca = TestCa::new("p2p-grpc interop test CA");
    let server = ca.server(INTEROP_SERVER_NAMES);
    let client = ca.client("p2p-grpc interop client");
    for (name, text) in [
        ("ca.pem", ca.cert_pem()),
        ("server1.pem", server.cert),
        ("server1.key", server.key),
        ("client.pem", client.cert),
        ("client.key", client.key),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// `--transport=libp2p` on both binaries: `interop_server` serves as a
/// libp2p node (TCP, noise, yamux, `GrpcStream`) and prints its address;
/// `interop_client` dials it by peer id and every case passes.
#[test]
fn every_case_passes_over_libp2p() {
    let (mut server, addr) = spawn_server(&["--transport=libp2p", "--port=0"]);
    let addr = addr.replace("/ip4/0.0.0.0/", "/ip4/127.0.0.1/");
    assert!(addr.contains("/p2p/"), "{addr}");
    let status = p2p_grpc_interop::cli::client_main(vec![
        "--transport=libp2p".to_owned(),
        format!("--server_addr={addr}"),
        "--test_case=all".to_owned(),
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(status, 0);
    // A libp2p client needs the address.
    assert_eq!(
        p2p_grpc_interop::cli::client_main(vec!["--transport=libp2p".to_owned()]),
        p2p_grpc_interop::cli::EXIT_USAGE
    );
}
