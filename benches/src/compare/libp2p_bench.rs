//! Workload 5: over libp2p (TCP + noise + yamux, and the memory transport +
//! noise + yamux), on one smol thread, both peers in this process.
//!
//! - p2p-grpc: `GrpcStream` (one libp2p stream carrying one HTTP/2
//!   connection), unary calls with 64 in flight and server streaming of
//!   1 MiB messages;
//! - the floor: bare libp2p streams carrying the same bytes: 64 streams
//!   each echoing the 71-byte framed message back and forth, and one stream
//!   written full of 1 MiB buffers;
//! - libp2p-request-response with a tiny length-prefixed codec: the same
//!   71-byte request and echo with 64 in flight (a new yamux stream per
//!   request, as request-response does), and 1 MiB responses one request at
//!   a time.

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::stream::BoxStream;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::core::transport::MemoryTransport;
use libp2p::core::upgrade::Version;
use libp2p::core::Transport;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use p2p_grpc::libp2p::{GrpcStream, Node, ServeHandle, TcpTransport};
use p2p_grpc::rt::SharedRuntime;
use p2p_grpc_bench::{pb, P2pBench};

use crate::bare_h2::frame_payload;
use crate::exec::{Exec, ExecKind};
use crate::report::{Metric, Results, LP_BARE, LP_GRPC, LP_RR};
use crate::stacks::{Client, P2pClient, Result};
use crate::workloads::{self, Timing};
use crate::{CONCURRENCY, STREAM_SIZE, UNARY_SIZE};

const ECHO: StreamProtocol = StreamProtocol::new("/bench/echo/1");
const FLOOD: StreamProtocol = StreamProtocol::new("/bench/flood/1");
const RR: StreamProtocol = StreamProtocol::new("/bench/rr/1");

#[derive(Clone, Copy, PartialEq, Eq)]
enum Net {
    Tcp,
    Memory,
}

pub fn run(timing: Timing, results: &mut Results) -> Result<()> {
    // One `run` for both transports: tasks left over from the first would
    // otherwise move to p2p-grpc's background thread, and the second would
    // run on two threads.
    let exec = Exec::new(ExecKind::Smol1);
    let rt = exec.runtime();
    let rows = exec.run(async move {
        let mut rows = Vec::new();
        // For profiles: `BENCH_LIBP2P_NET=tcp|memory` runs one transport,
        // `BENCH_LIBP2P_ONLY=grpc|bare|rr` one stack (the others report 0;
        // `grpc-stream` and `grpc-unary` are `grpc` with one workload).
        let net_only = std::env::var("BENCH_LIBP2P_NET").ok();
        let stack_only = std::env::var("BENCH_LIBP2P_ONLY").ok();
        let runs = |stack: &str| {
            stack_only
                .as_deref()
                .is_none_or(|only| only.split('-').next() == Some(stack))
        };
        for net in [Net::Tcp, Net::Memory] {
            let name = if net == Net::Tcp { "tcp" } else { "memory" };
            if net_only.as_deref().is_some_and(|only| only != name) {
                continue;
            }
            let only = stack_only.as_deref();
            let grpc = match runs("grpc") {
                true => Some(grpc_side(rt.clone(), net).await?),
                false => None,
            };
            let bare = match runs("bare") {
                true => Some(bare_side(rt.clone(), net).await?),
                false => None,
            };
            let grpc_calls = match &grpc {
                Some(side) if only != Some("grpc-stream") => side.unary(rt.clone(), timing).await?,
                _ => 0.0,
            };
            let bare_calls = match &bare {
                Some(side) if only != Some("bare-stream") => side.echo(rt.clone(), timing).await?,
                _ => 0.0,
            };
            // The streaming of both stacks, read by turns (`interleaved`).
            let mut flows = Vec::new();
            let mut grpc_flow = None;
            if let Some(side) = grpc.as_ref().filter(|_| only != Some("grpc-unary")) {
                grpc_flow = Some(flows.len());
                flows.push(side.flow().await?);
            }
            let mut bare_flow = None;
            if let Some(side) = bare.as_ref().filter(|_| only != Some("bare-unary")) {
                bare_flow = Some(flows.len());
                flows.push(side.flow().await?);
            }
            let (rates, ratios) = interleaved(&mut flows, timing).await?;
            drop(flows);
            let rate = |flow: Option<usize>| flow.map_or(0.0, |i| rates[i]);
            let (grpc_mbps, bare_mbps) = (rate(grpc_flow), rate(bare_flow));
            if !ratios.is_empty() {
                let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
                eprintln!(
                    "   {name}: GrpcStream ÷ bare stream, 1 MiB, window by window: {}",
                    shown.join(" ")
                );
            }
            if let Some(side) = grpc {
                side.shutdown().await;
            }
            if let Some(side) = bare {
                side.shutdown().await;
            }
            let grpc = (grpc_calls, grpc_mbps);
            let bare = (bare_calls, bare_mbps);
            let rr = match runs("rr") {
                true => request_response(rt.clone(), net, timing).await?,
                false => (0.0, 0.0),
            };
            rows.push((net, grpc, bare, rr));
        }
        Ok::<_, crate::stacks::BoxError>(rows)
    })?;
    for (net, grpc, bare, rr) in rows {
        let label = if net == Net::Tcp { "TCP" } else { "memory" };
        let (unary, stream) = if net == Net::Tcp {
            (Metric::Libp2pUnaryTcp, Metric::Libp2pStreamTcp)
        } else {
            (Metric::Libp2pUnaryMem, Metric::Libp2pStreamMem)
        };
        for (name, (calls, mbps)) in [(LP_GRPC, grpc), (LP_BARE, bare), (LP_RR, rr)] {
            eprintln!("   {label}: {name}: {calls:.0} calls/s, {mbps:.0} MB/s");
            results.push(unary, name, calls);
            results.push(stream, name, mbps);
        }
    }
    Ok(())
}

fn listen_addr(net: Net) -> Multiaddr {
    match net {
        Net::Tcp => "/ip4/127.0.0.1/tcp/0".parse().expect("address"),
        Net::Memory => "/memory/0".parse().expect("address"),
    }
}

async fn node_pair(rt: SharedRuntime, net: Net) -> Result<(Node, Node, PeerId)> {
    let build = || {
        let builder = Node::builder().runtime(rt.clone());
        match net {
            Net::Tcp => builder.tcp_transport(),
            Net::Memory => builder.memory_transport(),
        }
        .build()
    };
    let (server, client) = (build()?, build()?);
    let addr = server.listen_on(listen_addr(net)).await?;
    let peer = client.dial(addr).await?;
    Ok((server, client, peer))
}

/// p2p-grpc through `GrpcStream`: its two nodes, the serving side and a
/// client of the bench service on the other node.
struct GrpcSide {
    server: Node,
    client: Node,
    serving: GrpcStream,
    _handle: ServeHandle,
    /// The client node's `GrpcStream`, kept for as long as its channel.
    _calling: GrpcStream,
    bench: Arc<dyn Client>,
}

async fn grpc_side(rt: SharedRuntime, net: Net) -> Result<GrpcSide> {
    let (server, client, peer) = node_pair(rt.clone(), net).await?;
    // `BENCH_LIBP2P_FRAME_SIZE=16384` compares HTTP/2's default frame size
    // with GrpcStream's (finding 13).
    let frame: Option<u32> = std::env::var("BENCH_LIBP2P_FRAME_SIZE")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut server_builder = p2p_grpc::Server::builder();
    let mut channel_builder = p2p_grpc::Channel::builder();
    if let Some(size) = frame {
        server_builder = server_builder.max_frame_size(size);
        channel_builder = channel_builder.max_frame_size(size);
    }
    // `BENCH_LIBP2P_WINDOW=4194304` tries larger HTTP/2 windows (stream;
    // the connection's is twice it) than the default 1 MiB (finding 18).
    let window: Option<u32> = std::env::var("BENCH_LIBP2P_WINDOW")
        .ok()
        .and_then(|v| v.parse().ok());
    if let Some(size) = window {
        server_builder = server_builder
            .initial_stream_window_size(size)
            .initial_connection_window_size(2 * size);
        channel_builder = channel_builder
            .initial_stream_window_size(size)
            .initial_connection_window_size(2 * size);
    }
    let serving = GrpcStream::builder()
        .runtime(rt.clone())
        .server(server_builder)
        .add_service(pb::bench_server::BenchServer::new(P2pBench::default()))
        .build(server.control())?;
    let handle = serving.serve()?;
    let calling = GrpcStream::builder()
        .runtime(rt.clone())
        .channel(channel_builder)
        .build(client.control())?;
    let channel = calling.client(peer);
    let bench: Arc<dyn Client> = Arc::new(P2pClient(pb::bench_client::BenchClient::new(channel)));
    Ok(GrpcSide {
        server,
        client,
        serving,
        _handle: handle,
        _calling: calling,
        bench,
    })
}

impl GrpcSide {
    /// Unary calls/s, 64 in flight.
    async fn unary(&self, rt: SharedRuntime, timing: Timing) -> Result<f64> {
        workloads::unary_throughput(
            rt,
            vec![self.bench.clone()],
            CONCURRENCY,
            UNARY_SIZE,
            timing,
        )
        .await
    }

    /// A server-streaming call of 1 MiB messages.
    async fn flow(&self) -> Result<Flow> {
        Ok(Flow::Grpc(self.bench.stream(STREAM_SIZE).await?))
    }

    async fn shutdown(self) {
        self.serving.shutdown(Duration::from_millis(100)).await;
        self.client.shutdown().await;
        self.server.shutdown().await;
    }
}

/// The floor: the same bytes on bare libp2p streams. The server node
/// echoes what it reads on `ECHO` streams and writes 1 MiB messages
/// without end on `FLOOD` streams.
struct BareSide {
    server: Node,
    client: Node,
    peer: PeerId,
}

async fn bare_side(rt: SharedRuntime, net: Net) -> Result<BareSide> {
    let (server, client, peer) = node_pair(rt.clone(), net).await?;
    let mut echo_in = server.control().accept(ECHO)?;
    let spawner = rt.clone();
    rt.spawn(Box::pin(async move {
        while let Some((_, mut stream)) = echo_in.next().await {
            spawner.spawn(Box::pin(async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }));
        }
    }));
    let mut flood_in = server.control().accept(FLOOD)?;
    let spawner = rt.clone();
    rt.spawn(Box::pin(async move {
        while let Some((_, mut stream)) = flood_in.next().await {
            spawner.spawn(Box::pin(async move {
                let message = frame_payload(&vec![0x5a; STREAM_SIZE as usize]);
                while stream.write_all(&message).await.is_ok() {}
            }));
        }
    }));
    Ok(BareSide {
        server,
        client,
        peer,
    })
}

impl BareSide {
    /// Round trips/s of 64 streams, each a ping-pong of the framed 64-byte
    /// message.
    async fn echo(&self, rt: SharedRuntime, timing: Timing) -> Result<f64> {
        let message = frame_payload(&[1u8; UNARY_SIZE]);
        let mut streams = Vec::new();
        for _ in 0..CONCURRENCY {
            streams.push(self.client.open_stream(self.peer, ECHO).await?);
        }
        let round = |streams: Vec<libp2p::Stream>, duration: Duration| {
            let rt = rt.clone();
            let message = message.clone();
            async move {
                let end = Instant::now() + duration;
                let mut done = Vec::new();
                for mut stream in streams {
                    let message = message.clone();
                    let (tx, rx) = oneshot::channel();
                    rt.spawn(Box::pin(async move {
                        let mut buf = vec![0u8; message.len()];
                        let mut calls = 0u64;
                        let result: io::Result<()> = async {
                            while Instant::now() < end {
                                stream.write_all(&message).await?;
                                stream.read_exact(&mut buf).await?;
                                calls += 1;
                            }
                            Ok(())
                        }
                        .await;
                        let _ = tx.send(result.map(|()| (calls, stream)));
                    }));
                    done.push(rx);
                }
                let mut total = 0;
                let mut streams = Vec::new();
                for rx in done {
                    let (calls, stream) = rx.await.map_err(|_| "echo task vanished")??;
                    total += calls;
                    streams.push(stream);
                }
                Ok::<_, crate::stacks::BoxError>((total, streams))
            }
        };
        let (_, streams) = round(streams, timing.warmup).await?;
        let start = Instant::now();
        let (calls, streams) = round(streams, timing.measure).await?;
        drop(streams);
        Ok(calls as f64 / start.elapsed().as_secs_f64())
    }

    /// A stream the server writes full of 1 MiB messages.
    async fn flow(&self) -> Result<Flow> {
        let stream = self.client.open_stream(self.peer, FLOOD).await?;
        Ok(Flow::Bare(stream, vec![0u8; 1024 * 1024]))
    }

    async fn shutdown(self) {
        self.client.shutdown().await;
        self.server.shutdown().await;
    }
}

/// A one-way flow of 1 MiB messages, read in windows.
enum Flow {
    /// The messages of a `GrpcStream` server-streaming call (their sizes).
    Grpc(BoxStream<'static, Result<usize>>),
    /// A bare libp2p stream, and the buffer it is read into.
    Bare(libp2p::Stream, Vec<u8>),
}

impl Flow {
    /// Reads for `duration` (and at most one read past it): bytes read.
    async fn read_for(&mut self, duration: Duration) -> Result<u64> {
        let end = Instant::now() + duration;
        let mut bytes = 0u64;
        while Instant::now() < end {
            bytes += match self {
                Flow::Grpc(messages) => messages.next().await.ok_or("stream ended")?? as u64,
                Flow::Bare(stream, buf) => match stream.read(buf).await? {
                    0 => return Err("flood stream ended".into()),
                    n => n as u64,
                },
            };
        }
        Ok(bytes)
    }
}

/// Windows each flow is read in, taking turns (ABBA: the order flips each
/// round, so drift of the machine's speed falls on both alike).
const WINDOWS: u32 = 8;

/// MB/s of each flow, measured in [`WINDOWS`] windows each, taking turns
/// with the others, instead of one after the other: on a shared machine the
/// speed moves by more between seconds than between the stacks, and a
/// ratio of two figures taken seconds apart moved with it (0.73 to 0.99
/// for the same binary). The flows not being read stall on their windows
/// meanwhile. Each window starts with a tenth of its length unmeasured, for
/// the bytes that waited in the windows, then measures. Also gives, per
/// round, the first flow's MB/s over the second's.
async fn interleaved(flows: &mut [Flow], timing: Timing) -> Result<(Vec<f64>, Vec<f64>)> {
    for flow in flows.iter_mut() {
        flow.read_for(timing.warmup).await?;
    }
    let window = timing.measure / WINDOWS;
    let mut bytes = vec![0u64; flows.len()];
    let mut time = vec![Duration::ZERO; flows.len()];
    let mut ratios = Vec::new();
    for round in 0..WINDOWS {
        let mut order: Vec<usize> = (0..flows.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        let mut rates = vec![0.0; flows.len()];
        for i in order {
            flows[i].read_for(window / 10).await?;
            let start = Instant::now();
            let read = flows[i].read_for(window).await?;
            let took = start.elapsed();
            bytes[i] += read;
            time[i] += took;
            rates[i] = read as f64 / took.as_secs_f64();
        }
        if rates.len() == 2 && rates[1] > 0.0 {
            ratios.push(rates[0] / rates[1]);
        }
    }
    let mbps = bytes
        .iter()
        .zip(&time)
        .map(|(&b, t)| b as f64 / t.as_secs_f64() / 1e6)
        .collect();
    Ok((mbps, ratios))
}

/// A length-prefixed bytes codec for request-response.
#[derive(Clone, Default)]
struct BytesCodec;

async fn read_lp<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Bytes> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > 16 * 1024 * 1024 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message too large",
        ));
    }
    let mut data = vec![0u8; len];
    io.read_exact(&mut data).await?;
    Ok(Bytes::from(data))
}

async fn write_lp<T: AsyncWrite + Unpin + Send>(io: &mut T, data: Bytes) -> io::Result<()> {
    io.write_all(&(data.len() as u32).to_be_bytes()).await?;
    io.write_all(&data).await?;
    io.flush().await
}

impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Bytes;
    type Response = Bytes;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Bytes>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_lp(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Bytes>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_lp(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Bytes,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_lp(io, req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Bytes,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_lp(io, res).await
    }
}

type RrBehaviour = request_response::Behaviour<BytesCodec>;

fn rr_swarm(rt: &SharedRuntime, net: Net) -> Result<Swarm<RrBehaviour>> {
    let keypair = Keypair::generate_ed25519();
    let peer_id = keypair.public().to_peer_id();
    let noise = noise::Config::new(&keypair)?;
    let transport = match net {
        Net::Tcp => TcpTransport::new()
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux::Config::default())
            .timeout(Duration::from_secs(20))
            .boxed(),
        Net::Memory => MemoryTransport::default()
            .upgrade(Version::V1Lazy)
            .authenticate(noise)
            .multiplex(yamux::Config::default())
            .timeout(Duration::from_secs(20))
            .boxed(),
    };
    let behaviour = RrBehaviour::new(
        [(RR, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_max_concurrent_streams(1024)
            .with_request_timeout(Duration::from_secs(60)),
    );
    let executor = rt.clone();
    let config = libp2p::swarm::Config::with_executor(move |task| executor.spawn(task))
        .with_idle_connection_timeout(Duration::from_secs(60));
    Ok(Swarm::new(transport, behaviour, peer_id, config))
}

/// A request: the bytes to echo, or (first byte 0xff) a request for one
/// 1 MiB response.
const BIG: u8 = 0xff;

type Pending = (Bytes, oneshot::Sender<Result<Bytes, String>>);

/// libp2p-request-response: (unary calls/s, MB/s of 1 MiB responses).
async fn request_response(rt: SharedRuntime, net: Net, timing: Timing) -> Result<(f64, f64)> {
    let mut server = rr_swarm(&rt, net)?;
    let mut client = rr_swarm(&rt, net)?;
    let server_peer = *server.local_peer_id();
    server.listen_on(listen_addr(net))?;
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = server.select_next_some().await {
            break address;
        }
    };
    let big = frame_payload(&vec![0x5a; STREAM_SIZE as usize]);
    let (stop_server, mut server_stopped) = oneshot::channel::<()>();
    rt.spawn(Box::pin(async move {
        poll_fn(|cx| {
            if server_stopped.poll_unpin_ready(cx) {
                return Poll::Ready(());
            }
            while let Poll::Ready(Some(event)) = server.poll_next_unpin(cx) {
                if let SwarmEvent::Behaviour(request_response::Event::Message {
                    message:
                        request_response::Message::Request {
                            request, channel, ..
                        },
                    ..
                }) = event
                {
                    let response = if request.first() == Some(&BIG) {
                        big.clone()
                    } else {
                        request
                    };
                    let _ = server.behaviour_mut().send_response(channel, response);
                }
            }
            Poll::Pending
        })
        .await;
    }));

    client.dial(addr)?;
    loop {
        if let SwarmEvent::ConnectionEstablished { .. } = client.select_next_some().await {
            break;
        }
    }
    let (requests, mut incoming) = mpsc::unbounded::<Pending>();
    rt.spawn(Box::pin(async move {
        let mut pending: HashMap<request_response::OutboundRequestId, oneshot::Sender<_>> =
            HashMap::new();
        poll_fn(|cx| loop {
            let mut progress = false;
            match incoming.poll_next_unpin(cx) {
                Poll::Ready(Some((request, reply))) => {
                    let id = client.behaviour_mut().send_request(&server_peer, request);
                    pending.insert(id, reply);
                    progress = true;
                }
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => {}
            }
            if let Poll::Ready(Some(event)) = client.poll_next_unpin(cx) {
                progress = true;
                match event {
                    SwarmEvent::Behaviour(request_response::Event::Message {
                        message:
                            request_response::Message::Response {
                                request_id,
                                response,
                            },
                        ..
                    }) => {
                        if let Some(reply) = pending.remove(&request_id) {
                            let _ = reply.send(Ok(response));
                        }
                    }
                    SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                        request_id,
                        error,
                        ..
                    }) => {
                        if let Some(reply) = pending.remove(&request_id) {
                            let _ = reply.send(Err(error.to_string()));
                        }
                    }
                    _ => {}
                }
            }
            if !progress {
                return Poll::Pending;
            }
        })
        .await;
    }));

    let sender = requests.clone();
    let call = move |request: Bytes| {
        let requests = sender.clone();
        async move {
            let (tx, rx) = oneshot::channel();
            requests
                .unbounded_send((request, tx))
                .map_err(|_| "client swarm gone")?;
            let response = rx.await.map_err(|_| "request dropped")??;
            Ok::<_, crate::stacks::BoxError>(response)
        }
    };

    let message = frame_payload(&[1u8; UNARY_SIZE]);
    let burst = |duration: Duration| {
        let rt = rt.clone();
        let message = message.clone();
        let call = call.clone();
        let _ = &requests;
        async move {
            let end = Instant::now() + duration;
            let mut done = Vec::new();
            for _ in 0..CONCURRENCY {
                let message = message.clone();
                let call = call.clone();
                let (tx, rx) = oneshot::channel();
                rt.spawn(Box::pin(async move {
                    let mut calls = 0u64;
                    let result = async {
                        while Instant::now() < end {
                            call(message.clone()).await?;
                            calls += 1;
                        }
                        Ok::<_, crate::stacks::BoxError>(calls)
                    }
                    .await;
                    let _ = tx.send(result);
                }));
                done.push(rx);
            }
            let mut total = 0;
            for rx in done {
                total += rx.await.map_err(|_| "call task vanished")??;
            }
            Ok::<_, crate::stacks::BoxError>(total)
        }
    };
    burst(timing.warmup).await?;
    let start = Instant::now();
    let calls = burst(timing.measure).await? as f64 / start.elapsed().as_secs_f64();

    let big_request = Bytes::from_static(&[BIG]);
    let warm_end = Instant::now() + timing.warmup;
    while Instant::now() < warm_end {
        call(big_request.clone()).await?;
    }
    let start = Instant::now();
    let end = start + timing.measure;
    let mut bytes = 0u64;
    while Instant::now() < end {
        bytes += (call(big_request.clone()).await?.len() - 5 - 4) as u64;
    }
    let mbps = bytes as f64 / start.elapsed().as_secs_f64() / 1e6;
    drop(requests);
    let _ = stop_server.send(());
    Ok((calls, mbps))
}

trait ReadyExt {
    fn poll_unpin_ready(&mut self, cx: &mut std::task::Context<'_>) -> bool;
}

impl<T> ReadyExt for oneshot::Receiver<T> {
    fn poll_unpin_ready(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        futures::FutureExt::poll_unpin(self, cx).is_ready()
    }
}
