//! The ceiling: the same bytes as gRPC (a 5-byte prefix, then the protobuf
//! encoding, framed by hand) over bare h2, with no gRPC layer. The server
//! echoes request bodies chunk by chunk and streams one pre-framed buffer
//! over and over; the client counts message lengths without reassembling.
//! Same transport (async-io TCP + tokio-util compat) and the same HTTP/2
//! settings as p2p-grpc's defaults.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, HeaderValue, Request, Response};
use p2p_grpc::rt::SharedRuntime;
use tokio_util::compat::FuturesAsyncReadCompatExt;

use crate::contender::{Client, PingPong, Result, ServerHandle};

const WINDOW: u32 = 1024 * 1024;
const CONN_WINDOW: u32 = 2 * 1024 * 1024;

fn varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// A gRPC frame holding `Payload { payload }`, encoded by hand.
pub fn frame_payload(payload: &[u8]) -> Bytes {
    let mut body = BytesMut::with_capacity(payload.len() + 16);
    if !payload.is_empty() {
        body.put_u8(0x0a);
        varint(&mut body, payload.len() as u64);
        body.put_slice(payload);
    }
    frame(&body)
}

fn frame(body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(body.len() + 5);
    out.put_u8(0);
    out.put_u32(body.len() as u32);
    out.put_slice(body);
    out.freeze()
}

/// Sends `data` within the peer's flow-control window.
async fn send_all(send: &mut SendStream<Bytes>, mut data: Bytes) -> Result<()> {
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let granted = match send.capacity() {
            0 => match poll_fn(|cx| send.poll_capacity(cx)).await {
                Some(granted) => granted?,
                None => return Err("stream closed".into()),
            },
            n => n,
        };
        let chunk = data.split_to(granted.min(data.len()));
        send.send_data(chunk, false)?;
    }
    Ok(())
}

async fn next_chunk(body: &mut RecvStream) -> Option<Result<Bytes>> {
    let chunk = body.data().await?;
    Some(chunk.map_err(Into::into).inspect(|chunk| {
        let _ = body.flow_control().release_capacity(chunk.len());
    }))
}

fn grpc_headers() -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    map
}

fn ok_trailers() -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert("grpc-status", HeaderValue::from_static("0"));
    map
}

/// Serves the four bench methods on a free loopback port.
pub async fn serve(rt: SharedRuntime) -> Result<ServerHandle> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let spawner = rt.clone();
    rt.spawn(Box::pin(async move {
        let Ok(mut incoming) = spawner.tcp_incoming(listener) else {
            return;
        };
        while let Some(Ok((io, _))) = incoming.next().await {
            let rt = spawner.clone();
            spawner.spawn(Box::pin(async move {
                let _ = serve_connection(rt, io).await;
            }));
        }
    }));
    Ok(ServerHandle::new(addr))
}

async fn serve_connection(rt: SharedRuntime, io: p2p_grpc::io::BoxIo) -> Result<()> {
    let mut connection = h2::server::Builder::new()
        .initial_window_size(WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .max_concurrent_streams(10_000)
        .handshake::<_, Bytes>(io.compat())
        .await?;
    while let Some(request) = connection.accept().await {
        let (request, respond) = request?;
        rt.spawn(Box::pin(async move {
            let _ = handle(request, respond).await;
        }));
    }
    Ok(())
}

async fn handle(
    request: Request<RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) -> Result<()> {
    let (parts, mut body) = request.into_parts();
    let mut response = Response::new(());
    *response.headers_mut() = grpc_headers();
    match parts.uri.path() {
        "/bench.Bench/ServerStream" => {
            // The request is tiny: read it whole, take field 2 (size).
            let mut request = BytesMut::new();
            while let Some(chunk) = next_chunk(&mut body).await {
                request.extend_from_slice(&chunk?);
            }
            let size = parse_stream_size(&request);
            let message = frame_payload(&vec![0x5a; size]);
            let mut send = respond.send_response(response, false)?;
            loop {
                send_all(&mut send, message.clone()).await?;
            }
        }
        "/bench.Bench/PingPong" => {
            let mut send = respond.send_response(response, false)?;
            while let Some(chunk) = next_chunk(&mut body).await {
                send_all(&mut send, chunk?).await?;
            }
            send.send_trailers(ok_trailers())?;
        }
        _ => {
            let mut echo = BytesMut::new();
            while let Some(chunk) = next_chunk(&mut body).await {
                echo.extend_from_slice(&chunk?);
            }
            let mut send = respond.send_response(response, false)?;
            send_all(&mut send, echo.freeze()).await?;
            send.send_trailers(ok_trailers())?;
        }
    }
    Ok(())
}

/// Field 2 of a framed `StreamRequest` (varint), or 0.
fn parse_stream_size(framed: &[u8]) -> usize {
    let mut i = 5;
    let mut size = 0u64;
    while i < framed.len() {
        let tag = framed[i];
        i += 1;
        let mut value = 0u64;
        let mut shift = 0;
        while i < framed.len() {
            let b = framed[i];
            i += 1;
            value |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                break;
            }
        }
        if tag == 0x10 {
            size = value;
        }
    }
    size as usize
}

/// Counts the messages of a gRPC body chunk by chunk (no reassembly).
#[derive(Default)]
struct FrameCounter {
    header: [u8; 5],
    header_len: usize,
    remaining: usize,
    current: usize,
}

impl FrameCounter {
    /// Feeds a chunk; calls `done(len)` for each message completed.
    fn feed(&mut self, mut chunk: &[u8], mut done: impl FnMut(usize)) {
        while !chunk.is_empty() {
            if self.header_len < 5 {
                let n = (5 - self.header_len).min(chunk.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&chunk[..n]);
                self.header_len += n;
                chunk = &chunk[n..];
                if self.header_len == 5 {
                    self.remaining = u32::from_be_bytes([
                        self.header[1],
                        self.header[2],
                        self.header[3],
                        self.header[4],
                    ]) as usize;
                    self.current = self.remaining;
                    if self.remaining == 0 {
                        self.header_len = 0;
                        done(0);
                    }
                }
                continue;
            }
            let n = self.remaining.min(chunk.len());
            self.remaining -= n;
            chunk = &chunk[n..];
            if self.remaining == 0 {
                self.header_len = 0;
                done(self.current);
            }
        }
    }
}

/// A client on one h2 connection.
pub struct H2Client {
    send: h2::client::SendRequest<Bytes>,
    authority: String,
}

/// Connects an h2 client (the connection task runs on `rt`).
pub async fn connect(rt: SharedRuntime, addr: SocketAddr) -> Result<Arc<dyn Client>> {
    let io = rt.tcp_connect(addr).await?;
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(WINDOW)
        .initial_connection_window_size(CONN_WINDOW)
        .handshake::<_, Bytes>(io.compat())
        .await?;
    rt.spawn(Box::pin(async move {
        let _ = connection.await;
    }));
    Ok(Arc::new(H2Client {
        send,
        authority: addr.to_string(),
    }))
}

impl H2Client {
    async fn start(&self, method: &str) -> Result<(h2::client::ResponseFuture, SendStream<Bytes>)> {
        let mut send = self.send.clone().ready().await?;
        let mut request = Request::new(());
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = format!("http://{}/bench.Bench/{method}", self.authority).parse()?;
        let headers = request.headers_mut();
        *headers = grpc_headers();
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
        Ok(send.send_request(request, false)?)
    }
}

impl Client for H2Client {
    fn unary(&self, payload: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let (response, mut send) = self.start("Unary").await?;
            send.send_data(frame_payload(&payload), true)?;
            let mut body = response.await?.into_body();
            let mut got = 0;
            let mut counter = FrameCounter::default();
            while let Some(chunk) = next_chunk(&mut body).await {
                counter.feed(&chunk?, |_| got += 1);
            }
            let trailers = body.trailers().await?;
            if got != 1 || trailers.is_none() {
                return Err("bad unary response".into());
            }
            Ok(())
        })
    }

    fn stream(&self, size: u32) -> BoxFuture<'_, Result<BoxStream<'static, Result<usize>>>> {
        Box::pin(async move {
            let (response, mut send) = self.start("ServerStream").await?;
            let mut request = BytesMut::new();
            request.put_u8(0x10);
            varint(&mut request, u64::from(size));
            send.send_data(frame(&request), true)?;
            let body = response.await?.into_body();
            let state = (
                body,
                FrameCounter::default(),
                std::collections::VecDeque::new(),
            );
            Ok(
                futures::stream::unfold(state, |(mut body, mut counter, mut ready)| async move {
                    loop {
                        if let Some(len) = ready.pop_front() {
                            return Some((Ok(len), (body, counter, ready)));
                        }
                        match next_chunk(&mut body).await? {
                            Ok(chunk) => counter.feed(&chunk, |len| ready.push_back(len)),
                            Err(err) => return Some((Err(err), (body, counter, ready))),
                        }
                    }
                })
                .boxed(),
            )
        })
    }

    fn ping_pong(&self) -> BoxFuture<'_, Result<Box<dyn PingPong>>> {
        Box::pin(async move {
            let (response, send) = self.start("PingPong").await?;
            Ok(Box::new(H2PingPong {
                send,
                response: Some(response),
                body: None,
                counter: FrameCounter::default(),
            }) as Box<dyn PingPong>)
        })
    }
}

struct H2PingPong {
    send: SendStream<Bytes>,
    response: Option<h2::client::ResponseFuture>,
    body: Option<RecvStream>,
    counter: FrameCounter,
}

impl PingPong for H2PingPong {
    fn round_trip(&mut self, payload: Bytes) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            send_all(&mut self.send, frame_payload(&payload)).await?;
            if let Some(response) = self.response.take() {
                self.body = Some(response.await?.into_body());
            }
            let body = self.body.as_mut().ok_or("no body")?;
            let mut got = false;
            while !got {
                match next_chunk(body).await {
                    Some(chunk) => self.counter.feed(&chunk?, |_| got = true),
                    None => return Err("ping-pong ended".into()),
                }
            }
            Ok(())
        })
    }
}
