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
    let mut tls = args("empty_unary");
    tls[3] = "--use_tls=true".to_owned();
    assert_eq!(
        p2p_grpc_interop::cli::client_main(tls),
        p2p_grpc_interop::cli::EXIT_USAGE
    );
}

/// `--transport=libp2p` on both binaries: `interop_server` serves as a
/// libp2p node (TCP, noise, yamux, `GrpcStream`) and prints its address;
/// `interop_client` dials it by peer id and every case passes.
#[test]
fn every_case_passes_over_libp2p() {
    use std::io::BufRead;

    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_interop_server"))
        .args(["--transport=libp2p", "--port=0"])
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
        .replace("/ip4/0.0.0.0/", "/ip4/127.0.0.1/");
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
