//! gRPC over libp2p against **js-libp2p 3** (TCP, noise, yamux), a libp2p
//! stack nobody here wrote, with Node's own `http2` carrying gRPC on each
//! `/grpc/0.1.0` stream: the peer in `interop/peers/js`, installed from the
//! npm registry (with a Node 22 binary) by its `setup.sh`. Both directions:
//! the js client calls our node, our client calls the js node, and a js
//! peer that is killed mid-call.
//!
//! The concurrent 2 MiB calls on two streams at once are the regression
//! test of the yamux frame-size failure: js-yamux sends DATA frames as long
//! as its whole send window, which rust-yamux refused (closing the whole
//! connection) before `p2p_grpc::libp2p::Yamux` cut them up.
//!
//! A peer that cannot be installed fails the test: it never skips.
#![cfg(feature = "libp2p")]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use common::libp2p::{serve, Net};
use common::*;
use futures::future::join_all;
use p2p_grpc::client::Grpc;
use p2p_grpc::libp2p::libp2p::{Multiaddr, PeerId};
use p2p_grpc::libp2p::{GrpcStream, DEFAULT_PROTOCOL};
use p2p_grpc::{Code, Request};

const MIB: usize = 1024 * 1024;

/// The js peer's install, set up once per test run.
fn js_peer() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("js-libp2p-peer");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/peers/js/setup.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg(&out)
            .output()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", script.display()));
        assert!(
            output.status.success(),
            "{} failed (it needs npm and the npm registry):\n{}\n{}",
            script.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        out
    })
}

/// The js peer in `mode` with `args`; stdout piped, killed when dropped.
struct JsPeer {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl JsPeer {
    fn start(mode: &str, args: &[&str]) -> JsPeer {
        let dir = js_peer();
        let mut child = Command::new(dir.join("node_modules/.bin/node"))
            .arg(dir.join("peer.mjs"))
            .arg(mode)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the js peer");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        JsPeer { child, stdout }
    }

    /// The next line the peer prints (blocking: call off the runtime).
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    }
}

impl Drop for JsPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs blocking `work` on a thread of its own, awaiting its result.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.await.expect("the blocking work panicked")
}

const JS_CLIENT_CASES: [&str; 10] = [
    "unary",
    "client_streaming",
    "server_streaming",
    "bidi",
    "status",
    "peer",
    "concurrent_large",
    "many_concurrent",
    "large_expand",
    "reset",
];

#[test]
fn the_js_client_calls_our_node() {
    run(async {
        let server = serve(Net::Tcp, |b| b).await;
        let addr = server.addr.to_string();
        let (results, status) = blocking(move || {
            let mut js = JsPeer::start("client", &["--addr", &addr, "--case", "all"]);
            let mut results = Vec::new();
            loop {
                let line = js.line();
                if line.is_empty() {
                    break;
                }
                results.push(line);
            }
            (results, js.child.wait().unwrap())
        })
        .await;
        for case in JS_CLIENT_CASES {
            let line = results
                .iter()
                .find(|line| line.contains(&format!("\"case\":\"{case}\"")))
                .unwrap_or_else(|| panic!("no result for {case}: {results:#?}"));
            assert!(line.contains("\"ok\":true"), "{line}");
        }
        assert!(status.success(), "{status}: {results:#?}");
    });
}

/// Our node, a `GrpcStream` on it, and the js server's peer id and address.
struct ToJs {
    js: JsPeer,
    node: p2p_grpc::libp2p::Node,
    grpc: GrpcStream,
    peer: PeerId,
}

async fn js_server() -> ToJs {
    let (js, line) = blocking(|| {
        let mut js = JsPeer::start("server", &[]);
        let line = js.line();
        (js, line)
    })
    .await;
    let addr: Multiaddr = line
        .strip_prefix("LISTENING ")
        .unwrap_or_else(|| panic!("js server said {line:?}"))
        .parse()
        .unwrap();
    let peer = match addr.iter().last() {
        Some(p2p_grpc::libp2p::libp2p::multiaddr::Protocol::P2p(peer)) => peer,
        _ => panic!("no /p2p/ in {addr}"),
    };
    let node = Net::Tcp.node(None);
    node.add_address(peer, addr);
    let grpc = GrpcStream::new(node.control()).unwrap();
    ToJs {
        js,
        node,
        grpc,
        peer,
    }
}

fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn our_client_calls_the_js_node() {
    run(async {
        let to = js_server().await;
        let grpc = Grpc::new(to.grpc.client(to.peer));
        // The four kinds.
        let hello = Msg {
            text: "hello js".into(),
            payload: vec![1; 10],
            count: 3,
        };
        let reply = grpc
            .unary::<_, Msg>(Request::new(hello.clone()), UNARY)
            .await
            .unwrap();
        assert_eq!(reply.into_inner(), hello);
        let messages = futures::stream::iter(vec![
            Msg::count("a", 1),
            Msg::count("b", 2),
            Msg::count("c", 3),
        ]);
        let reply = grpc
            .client_streaming::<_, _, Msg>(Request::new(messages), COLLECT)
            .await
            .unwrap();
        assert_eq!(reply.into_inner(), Msg::count("abc", 6));
        let request = Msg {
            payload: vec![9; 1024],
            count: 5,
            ..Msg::default()
        };
        let mut replies = grpc
            .server_streaming::<_, Msg>(Request::new(request), EXPAND)
            .await
            .unwrap()
            .into_inner();
        for i in 0..5 {
            let message = replies.message().await.unwrap().unwrap();
            assert_eq!((message.text, message.count), (i.to_string(), i));
            assert_eq!(message.payload, vec![9; 1024]);
        }
        assert!(replies.message().await.unwrap().is_none());
        // Bidi ping-pong: each reply before the next request.
        let (mut sender, mut replies) = open_chat(&grpc, 1).await;
        feed(&mut sender, Msg::count("second", 2)).await;
        assert_eq!(replies.message().await.unwrap().unwrap().count, 2);
        drop(sender);
        assert!(replies.message().await.unwrap().is_none());
        // Status codes and messages.
        let status = grpc
            .unary::<_, Msg>(Request::new(Msg::text("fail:7:no entry")), UNARY)
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (Code::PermissionDenied, "no entry")
        );
        let status = grpc
            .unary::<_, Msg>(Request::new(Msg::default()), MISSING)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        // The js node sees our peer id.
        let reply = grpc
            .unary::<_, Msg>(Request::new(Msg::default()), PEER)
            .await
            .unwrap();
        assert_eq!(reply.into_inner().text, to.node.peer_id().to_string());
        // 50 concurrent calls on one stream.
        let calls = (0..50).map(|i| {
            let grpc = grpc.clone();
            async move {
                grpc.unary::<_, Msg>(Request::new(Msg::count("many", i)), UNARY)
                    .await
                    .unwrap()
                    .into_inner()
                    .count
            }
        });
        assert_eq!(join_all(calls).await, (0..50).collect::<Vec<_>>());
        // Six 2 MiB replies at once from js.
        let request = Msg {
            payload: blob(2 * MIB, 5),
            count: 6,
            ..Msg::default()
        };
        let replies: Vec<Msg> = futures::StreamExt::collect::<Vec<_>>(
            grpc.server_streaming::<_, Msg>(Request::new(request), EXPAND)
                .await
                .unwrap()
                .into_inner(),
        )
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
        assert_eq!(replies.len(), 6);
        assert!(replies
            .iter()
            .all(|reply| reply.payload == blob(2 * MIB, 5)));
        // Concurrent large calls on two streams (two HTTP/2 connections
        // over the one libp2p connection), both ways at once.
        let mut streams = Vec::new();
        for _ in 0..2 {
            let stream = to
                .node
                .open_stream(to.peer, DEFAULT_PROTOCOL)
                .await
                .unwrap();
            streams.push(Grpc::new(to.grpc.wrap_client(stream).await.unwrap()));
        }
        let calls = streams.iter().enumerate().flat_map(|(s, grpc)| {
            (0..3).map(move |c| {
                let payload = blob(2 * MIB, (s * 3 + c) as u8);
                let grpc = grpc.clone();
                async move {
                    let request = Msg {
                        payload: payload.clone(),
                        ..Msg::default()
                    };
                    let reply = grpc
                        .unary::<_, Msg>(Request::new(request), UNARY)
                        .await
                        .unwrap_or_else(|status| panic!("stream {s} call {c}: {status:?}"));
                    reply.into_inner().payload == payload
                }
            })
        });
        assert!(join_all(calls).await.into_iter().all(|same| same));
        // A cancelled call leaves the connection serving.
        let (mut sender, mut replies) = open_chat(&grpc, 1).await;
        feed(&mut sender, Msg::count("more", 2)).await;
        assert_eq!(replies.message().await.unwrap().unwrap().count, 2);
        drop(replies);
        drop(sender);
        grpc.unary::<_, Msg>(Request::new(Msg::text("after the reset")), UNARY)
            .await
            .unwrap();
        // Everything above ran on one libp2p connection, still up.
        assert_eq!(to.node.connected_peers().await, [to.peer]);
        drop(to.js);
    });
}

#[test]
fn a_js_peer_killed_mid_call_frees_everything_it_held() {
    run(async {
        let mut server = serve(Net::Tcp, |b| b).await;
        let addr = server.addr.to_string();
        let js = blocking(move || {
            let mut js = JsPeer::start("hold", &["--addr", &addr]);
            let line = js.line();
            assert_eq!(line, "HOLDING");
            js
        })
        .await;
        assert_eq!(
            next_event(&mut server.events).await,
            Event::Started("chat".into())
        );
        let connected: Vec<PeerId> = server.node.connected_peers().await;
        assert_eq!(connected.len(), 1);
        let js_peer = connected[0];
        assert_eq!(server.grpc.connections_of(&js_peer), 1);
        // SIGKILL: no goodbye of any kind, the socket just closes.
        drop(js);
        assert_eq!(
            next_event(&mut server.events).await,
            Event::Dropped("chat".into())
        );
        let grpc = &server.grpc;
        until(|| grpc.connections_of(&js_peer) == 0).await;
    });
}
