//! Target `grpc_stream`: a served `GrpcStream` (the echo service) fed
//! arbitrary bytes on up to four inbound streams from up to four peers at
//! once, through `GrpcStream::handle_io` on the deterministic [`Sim`]
//! executor: the libp2p layer's own logic (the per-peer connection limit,
//! the `RemotePeer` of every call, the authorisation hook, the read
//! recheck, shutdown) over what [`server_connection`] already fuzzes.
//!
//! Checked:
//! - no panic, and every stream and every task ends once the input is over
//!   (no hang, no task left behind);
//! - each peer has exactly `streams - limit` streams refused with
//!   `TooManyConnections` (all streams arrive before any ends), and no
//!   admitted stream reports it;
//! - the authorisation hook only ever sees peers that had a stream
//!   admitted;
//! - afterwards no peer holds a slot and the server counts no connection;
//! - after a shutdown, a new stream is refused with `ShutDown`.
//!
//! Input layout (see [`Input`]):
//! - `u8` flags: bits 0-1 the streams (1 to 4); bits 2-3 the per-peer
//!   limit (none, 1, 2, 3); bit 4 an authorisation hook refusing peer 3;
//!   bit 5 at most 2 calls per stream; bit 6 `GrpcStream::shutdown` (100 ms
//!   grace) once every input is written;
//! - `u8` peers: 2 bits per stream, the peer (0 to 3) it comes from;
//! - per stream, `bytes16`: a [`server_connection`] scenario (its bytes and
//!   virtual sleeps; the first stream's configuration picks the server's).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::join_all;
use futures::{AsyncReadExt, AsyncWriteExt};
use p2p_grpc::libp2p::libp2p::identity::Keypair;
use p2p_grpc::libp2p::libp2p::PeerId;
use p2p_grpc::libp2p::libp2p_stream;
use p2p_grpc::libp2p::{GrpcStream, GrpcStreamError};
use p2p_grpc::Status;

use crate::input::{Input, Output};
use crate::server_connection::{self as sc, Config, Scenario};
use crate::sim::Sim;

pub const FLAG_AUTHORIZE: u8 = 16;
pub const FLAG_CALL_LIMIT: u8 = 32;
pub const FLAG_SHUTDOWN: u8 = 64;

/// The peer the authorisation hook refuses.
const REFUSED_PEER: usize = 3;

/// The four peers streams come from (fixed keys: runs are reproducible).
pub fn peers() -> &'static [PeerId; 4] {
    static PEERS: OnceLock<[PeerId; 4]> = OnceLock::new();
    PEERS.get_or_init(|| {
        std::array::from_fn(|i| {
            Keypair::ed25519_from_bytes([i as u8 + 1; 32])
                .unwrap()
                .public()
                .to_peer_id()
        })
    })
}

/// One input: the flags, and each stream's peer and scenario.
#[derive(Debug, Clone)]
pub struct Spec {
    pub flags: u8,
    pub streams: Vec<(usize, Scenario)>,
}

impl Spec {
    pub fn read(data: &[u8]) -> Spec {
        let mut input = Input::new(data);
        let flags = input.u8();
        let assignment = input.u8();
        let count = usize::from(flags & 3) + 1;
        let streams = (0..count)
            .map(|i| {
                let peer = usize::from(assignment >> (2 * i)) & 3;
                (peer, Scenario::read(input.bytes16()))
            })
            .collect();
        Spec { flags, streams }
    }

    /// The input for this spec (for seeds). `streams` must hold 1 to 4.
    pub fn encode(&self) -> Vec<u8> {
        assert!((1..=4).contains(&self.streams.len()));
        let mut assignment = 0u8;
        for (i, (peer, _)) in self.streams.iter().enumerate() {
            assignment |= (*peer as u8 & 3) << (2 * i);
        }
        let mut out = Output::new();
        out.u8((self.flags & !3) | (self.streams.len() as u8 - 1))
            .u8(assignment);
        for (_, scenario) in &self.streams {
            out.bytes16(&scenario.encode());
        }
        out.finish()
    }

    fn limit(&self) -> Option<usize> {
        match (self.flags >> 2) & 3 {
            0 => None,
            n => Some(usize::from(n)),
        }
    }
}

/// What a run observed (for tests and seed checks).
#[derive(Debug)]
pub struct Outcome {
    /// Per stream: refused for the per-peer limit.
    pub refused: Vec<bool>,
    /// Peers the authorisation hook saw, in order.
    pub authorized: Vec<PeerId>,
    pub virtual_time: Duration,
}

/// Runs one spec; panics when a check fails.
pub fn execute(spec: &Spec) -> Outcome {
    let sim = Sim::new();
    let runtime = sim.runtime();
    let peers = peers();
    let config = spec.streams[0].1.config;
    let seen = Arc::new(Mutex::new(Vec::new()));

    let mut builder = GrpcStream::builder()
        .runtime(runtime.clone())
        .server(sc::server_builder(config, &sim))
        .max_connections_per_peer(spec.limit());
    if spec.flags & FLAG_AUTHORIZE != 0 {
        let seen = seen.clone();
        builder = builder.authorize(move |peer, _info| {
            seen.lock().unwrap().push(peer);
            if peer == peers[REFUSED_PEER] {
                Err(Status::permission_denied("not this peer"))
            } else {
                Ok(())
            }
        });
    }
    if spec.flags & FLAG_CALL_LIMIT != 0 {
        builder = builder.max_calls_per_connection(Some(2));
    }
    let control = libp2p_stream::Behaviour::new().new_control();
    let grpc_stream = builder.build(control).expect("a fresh control");
    let shutdown = spec.flags & FLAG_SHUTDOWN != 0 || config == Config::Shutdown;

    let mut handles = Vec::new();
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for (peer, scenario) in &spec.streams {
        let (client_io, server_io) = p2p_grpc::io::duplex(1 << 20);
        let (reader, writer) = client_io.split();
        handles.push(grpc_stream.handle_io(peers[*peer], server_io));
        writers.push((writer, scenario.segments()));
        readers.push(reader);
    }

    let write = async {
        join_all(writers.iter_mut().map(|(writer, segments)| {
            let runtime = runtime.clone();
            async move {
                for (bytes, sleep) in segments.drain(..) {
                    if writer.write_all(&bytes).await.is_err() {
                        break;
                    }
                    if let Some(duration) = sleep {
                        runtime.sleep(duration).await;
                    }
                }
            }
        }))
        .await;
        // Let the streams take in everything before their end (see
        // `server_connection`).
        runtime.sleep(Duration::ZERO).await;
        let after_shutdown = if shutdown {
            grpc_stream.shutdown(Duration::from_millis(100)).await;
            let (_client, server_io) = p2p_grpc::io::duplex(1024);
            Some(grpc_stream.handle_io(peers[0], server_io).await)
        } else {
            None
        };
        for (writer, _) in &mut writers {
            let _ = writer.close().await;
        }
        after_shutdown
    };
    let read = join_all(readers.iter_mut().map(|reader| async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    }));
    // The handles come first: every stream asks for its slot before any
    // byte is written.
    let finished = sim
        .block_on(async { futures::join!(join_all(handles), write, read) })
        .unwrap_or_else(|err| panic!("a served stream did not end: {err:?}"));
    let (results, after_shutdown, _) = finished.output;

    if let Some(result) = after_shutdown {
        assert!(
            matches!(result, Err(GrpcStreamError::ShutDown)),
            "a stream after shutdown: {result:?}"
        );
    }
    let refused: Vec<bool> = results
        .iter()
        .map(|result| matches!(result, Err(GrpcStreamError::TooManyConnections { .. })))
        .collect();
    let mut admitted = [false; 4];
    for (index, peer) in peers.iter().enumerate() {
        let streams: Vec<usize> = (0..spec.streams.len())
            .filter(|&i| spec.streams[i].0 == index)
            .collect();
        let refused_here = streams.iter().filter(|&&i| refused[i]).count();
        let expected = spec
            .limit()
            .map_or(0, |limit| streams.len().saturating_sub(limit));
        assert_eq!(refused_here, expected, "streams of peer {index} refused");
        admitted[index] = refused_here < streams.len();
        for &i in &streams {
            if let Err(GrpcStreamError::TooManyConnections { peer: named, limit }) = &results[i] {
                assert_eq!(named, peer);
                assert_eq!(Some(*limit), spec.limit());
            }
        }
        assert_eq!(grpc_stream.connections_of(peer), 0, "slots of peer {index}");
    }
    assert_eq!(grpc_stream.grpc_server().connection_count(), 0);
    let authorized = seen.lock().unwrap().clone();
    for peer in &authorized {
        let index = peers.iter().position(|p| p == peer).expect("a known peer");
        assert!(admitted[index], "peer {index} authorised without a stream");
    }
    Outcome {
        refused,
        authorized,
        virtual_time: finished.virtual_time,
    }
}

pub fn run(data: &[u8]) {
    execute(&Spec::read(data));
}
