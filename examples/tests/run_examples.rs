//! Runs every example binary, under whichever executor the build selected,
//! and checks what it prints.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs an example to completion (killed after 60 s) and returns its stdout.
fn run(binary: &str, args: &[&str]) -> String {
    let mut child = Command::new(binary)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("example starts");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(status.success(), "{binary} failed: {status}\n{stdout}");
            return stdout;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{binary} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn greeter_answers() {
    let out = run(env!("CARGO_BIN_EXE_greeter"), &[]);
    assert!(out.contains("reply: Hello world!"), "{out}");
    assert!(out.contains("server shut down"), "{out}");
}

#[test]
fn routeguide_makes_all_four_kinds_of_call() {
    let out = run(env!("CARGO_BIN_EXE_routeguide"), &[]);
    assert!(
        out.contains("found \"Patriots Path, Mendham, NJ\""),
        "{out}"
    );
    assert!(out.contains("5 Conners Road, Kingston, NY"), "{out}");
    assert!(out.contains("5 points, 5 features"), "{out}");
    assert_eq!(out.matches("got \"first message\"").count(), 2, "{out}");
}

#[test]
fn libp2p_demo_handlers_see_the_callers_peer_id() {
    let out = run(env!("CARGO_BIN_EXE_libp2p-demo"), &[]);
    let b = out
        .lines()
        .find_map(|line| line.strip_prefix("node B is "))
        .expect("B's peer id")
        .to_owned();
    for kind in [
        "unary",
        "server streaming",
        "client streaming",
        "bidi streaming",
    ] {
        let line = out
            .lines()
            .find(|line| line.contains("[server]") && line.contains(kind))
            .unwrap_or_else(|| panic!("no {kind} call in\n{out}"));
        assert!(line.ends_with(&b), "{line}");
    }
    assert!(out.contains("A counted 5 points"), "{out}");
    assert!(out.contains("got \"ack: B\""), "{out}");
}

#[test]
fn libp2p_chat_converses() {
    let out = run(env!("CARGO_BIN_EXE_libp2p-chat"), &[]);
    assert!(out.contains("alice <- bob: hi alice"), "{out}");
    assert!(out.contains("alice <- bob: bye!"), "{out}");
    assert!(out.contains("bob   <- alice: how are you?"), "{out}");
}

#[test]
fn libp2p_greeter_works_between_two_processes() {
    let mut listener = Command::new(env!("CARGO_BIN_EXE_libp2p-greeter"))
        .arg("listen")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("listener starts");
    let mut lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("listener prints its address").unwrap();
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.to_owned();
        }
    };
    let out = run(
        env!("CARGO_BIN_EXE_libp2p-greeter"),
        &["dial", &addr, "Alice"],
    );
    let _ = listener.kill();
    let _ = listener.wait();
    assert!(out.starts_with("Hello Alice, peer 12D3Koo"), "{out}");
}

#[test]
fn libp2p_network_finds_balances_relays_and_speaks_websocket() {
    let out = run(env!("CARGO_BIN_EXE_libp2p-network"), &[]);
    assert!(
        out.contains("the DHT knows 3 providers of /grpc/0.1.0"),
        "{out}"
    );
    for provider in ["provider-1", "provider-2", "provider-3"] {
        let served = out
            .lines()
            .filter(|line| {
                line.contains("balanced:") && line.contains(&format!("(served by {provider})"))
            })
            .filter(|line| line.contains(&format!("from {provider}")))
            .count();
        assert_eq!(served, 2, "{provider} in {out}");
    }
    assert!(
        out.contains("relayed: \"hello through the relay from hidden\""),
        "{out}"
    );
    assert!(out.contains("/p2p-circuit/p2p/"), "{out}");
    assert!(out.contains("hello over WebSocket from websocket"), "{out}");
    assert!(out.contains("/ws/p2p/"), "{out}");
    assert!(out.contains("network shut down"), "{out}");
}

#[test]
fn libp2p_edge_serves_one_service_per_protocol() {
    let out = run(env!("CARGO_BIN_EXE_libp2p-edge"), &[]);
    assert!(out.contains("/syncer/0.2: block 42"), "{out}");
    assert!(out.contains("/id/0.1: hello edge peer (16Uiu2"), "{out}");
    assert!(
        out.contains("the greeter on /syncer/0.2: Unimplemented"),
        "{out}"
    );
    assert!(out.contains("done"), "{out}");
}
