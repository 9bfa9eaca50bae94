// js-libp2p interop peer for p2p-grpc: gRPC (test.Echo) over HTTP/2 over
// libp2p streams of protocol /grpc/0.1.0 (TCP, noise, yamux).
//
//   node peer.mjs server [--listen /ip4/127.0.0.1/tcp/0]
//   node peer.mjs client --addr <multiaddr>/p2p/<id> --case <name>[,<name>...]|all
//   node peer.mjs hold   --addr <multiaddr>/p2p/<id>
//
// Each libp2p stream carries exactly one plaintext HTTP/2 connection (prior
// knowledge); the side that opened the libp2p stream is the HTTP/2 client.
// stdout carries only the protocol lines (LISTENING, HOLDING, one JSON line per
// case); logs go to stderr. See README.md.

import { Buffer } from 'node:buffer'
import { fstatSync } from 'node:fs'
import http2 from 'node:http2'
import { Duplex } from 'node:stream'

if (typeof Promise.withResolvers !== 'function') {
  process.stderr.write(`peer.mjs: js-libp2p 3 needs Node >= 22, this is ${process.version}; ` +
    'run it with the node binary that setup.sh installed (OUTDIR/node_modules/.bin/node)\n')
  process.exit(2)
}

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { generateKeyPair } = await import('@libp2p/crypto/keys')
const { multiaddr } = await import('@multiformats/multiaddr')

const PROTOCOL = '/grpc/0.1.0'
const SERVICE = 'test.Echo'
const MiB = 1024 * 1024

const log = (...args) => process.stderr.write(`peer.mjs[${process.pid}]: ${args.join(' ')}\n`)

// ---------------------------------------------------------------------------
// protobuf: Msg { string text = 1; bytes payload = 2; uint32 count = 3; }

const utf8Decoder = new TextDecoder('utf-8', { fatal: true })

function varint (value) {
  // value: a non-negative integer below 2^53
  const out = []
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80)
    value = Math.floor(value / 0x80)
  }
  out.push(value)
  return Buffer.from(out)
}

function encodeMsg ({ text = '', payload, count = 0 } = {}) {
  const parts = []
  if (text.length > 0) {
    const bytes = Buffer.from(text, 'utf8')
    parts.push(Buffer.from([0x0a]), varint(bytes.length), bytes)
  }
  if (payload != null && payload.length > 0) {
    parts.push(Buffer.from([0x12]), varint(payload.length), payload)
  }
  count = count >>> 0
  if (count !== 0) parts.push(Buffer.from([0x18]), varint(count))
  return Buffer.concat(parts)
}

class DecodeError extends Error {}

// Reads a varint at buf[pos]; returns [value as BigInt, new pos].
function readVarint (buf, pos) {
  let result = 0n
  let shift = 0n
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new DecodeError('truncated varint')
    const b = buf[pos++]
    result |= BigInt(b & 0x7f) << shift
    if ((b & 0x80) === 0) return [result, pos]
    shift += 7n
  }
  throw new DecodeError('varint longer than 10 bytes')
}

function readLength (buf, pos) {
  const [len, next] = readVarint(buf, pos)
  if (len > BigInt(buf.length - next)) throw new DecodeError('length-delimited field runs past the end')
  return [Number(len), next]
}

// Skips the value of a field with the given wire type; returns the new pos.
function skipField (buf, pos, wireType, fieldNo, depth = 0) {
  switch (wireType) {
    case 0: return readVarint(buf, pos)[1]
    case 1: if (pos + 8 > buf.length) throw new DecodeError('truncated fixed64'); return pos + 8
    case 5: if (pos + 4 > buf.length) throw new DecodeError('truncated fixed32'); return pos + 4
    case 2: { const [len, p] = readLength(buf, pos); return p + len }
    case 3: { // group: skip until the matching end-group tag
      if (depth > 32) throw new DecodeError('groups nested too deep')
      for (;;) {
        if (pos >= buf.length) throw new DecodeError('unterminated group')
        const [key, p] = readVarint(buf, pos)
        const wt = Number(key & 7n)
        const no = key >> 3n
        if (wt === 4) {
          if (no !== fieldNo) throw new DecodeError('mismatched end-group')
          return p
        }
        pos = skipField(buf, p, wt, no, depth + 1)
      }
    }
    default: throw new DecodeError(`invalid wire type ${wireType}`)
  }
}

function decodeMsg (buf) {
  const msg = { text: '', payload: Buffer.alloc(0), count: 0 }
  let pos = 0
  while (pos < buf.length) {
    const [key, p] = readVarint(buf, pos)
    const fieldNo = key >> 3n
    const wireType = Number(key & 7n)
    if (fieldNo === 0n) throw new DecodeError('field number 0')
    pos = p
    if (fieldNo === 1n && wireType === 2) {
      const [len, q] = readLength(buf, pos)
      try {
        msg.text = utf8Decoder.decode(buf.subarray(q, q + len))
      } catch {
        throw new DecodeError('text is not valid UTF-8')
      }
      pos = q + len
    } else if (fieldNo === 2n && wireType === 2) {
      const [len, q] = readLength(buf, pos)
      msg.payload = Buffer.from(buf.subarray(q, q + len))
      pos = q + len
    } else if (fieldNo === 3n && wireType === 0) {
      const [v, q] = readVarint(buf, pos)
      msg.count = Number(v & 0xffffffffn)
      pos = q
    } else if (fieldNo <= 3n && wireType !== 4) {
      throw new DecodeError(`field ${fieldNo} has the wrong wire type ${wireType}`)
    } else if (wireType === 4) {
      throw new DecodeError('unexpected end-group')
    } else {
      pos = skipField(buf, pos, wireType, fieldNo)
    }
  }
  return msg
}

// ---------------------------------------------------------------------------
// gRPC message framing

function frame (body) {
  const header = Buffer.alloc(5)
  header.writeUInt32BE(body.length, 1)
  return Buffer.concat([header, body])
}

class GrpcError extends Error {
  constructor (code, message) {
    super(message)
    this.code = code
  }
}

// Accumulates DATA bytes and yields whole message bodies.
class FrameDecoder {
  constructor () {
    this.chunks = []
    this.length = 0
  }

  push (chunk) {
    this.chunks.push(chunk)
    this.length += chunk.length
    const out = []
    for (;;) {
      if (this.length < 5) break
      if (this.chunks[0].length < 5) this.flatten()
      const head = this.chunks[0]
      const flag = head[0]
      const len = head.readUInt32BE(1)
      if (flag === 1) throw new GrpcError(12, 'compressed messages are not supported by this peer')
      if (flag !== 0) throw new GrpcError(13, `invalid compressed flag ${flag}`)
      if (this.length < 5 + len) break
      this.flatten()
      const all = this.chunks[0]
      out.push(all.subarray(5, 5 + len))
      const rest = all.subarray(5 + len)
      this.chunks = rest.length > 0 ? [rest] : []
      this.length = rest.length
    }
    return out
  }

  flatten () {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.length)]
  }

  get pending () { return this.length }
}

function percentEncode (text) {
  const bytes = Buffer.from(text, 'utf8')
  let out = ''
  for (const b of bytes) {
    if (b < 0x20 || b > 0x7e || b === 0x25) out += '%' + b.toString(16).toUpperCase().padStart(2, '0')
    else out += String.fromCharCode(b)
  }
  return out
}

function percentDecode (text) {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

// `fail:<code>:<message>`, as the Rust echo service parses it.
function parseFailure (text) {
  const m = /^fail:([+-]?\d+):([\s\S]*)$/.exec(text)
  if (m == null) return null
  let code = Number(m[1])
  if (!Number.isInteger(code) || code < 0 || code > 16) code = 2 // UNKNOWN, like Code::from_i32
  return new GrpcError(code, m[2])
}

// ---------------------------------------------------------------------------
// libp2p stream <-> node:stream Duplex

function waitDrain (stream) {
  return new Promise((resolve, reject) => {
    if (!stream.writableNeedsDrain) return resolve()
    const cleanup = () => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
    }
    // Note: stream.onDrain() is not usable for this: its promise is never
    // reset once resolved, so it resolves at once for every later drain.
    const onDrain = () => { cleanup(); resolve() }
    const onClose = (evt) => { cleanup(); reject(evt.error ?? new Error('libp2p stream closed')) }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
  })
}

function streamToDuplex (stream) {
  let remoteEnded = false
  let eofPushed = false
  let closeTimer = null

  const sendChunk = (buf, cb) => {
    let ok
    try {
      ok = stream.send(buf)
    } catch (err) {
      cb(err)
      return
    }
    if (ok) cb()
    else waitDrain(stream).then(() => cb(), (err) => cb(err))
  }

  const duplex = new Duplex({
    allowHalfOpen: true,
    readableHighWaterMark: MiB,
    read () {
      if (stream.readStatus === 'paused') {
        try { stream.resume() } catch {}
      }
    },
    write (chunk, _enc, cb) { sendChunk(chunk, cb) },
    writev (chunks, cb) {
      sendChunk(chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk)), cb)
    },
    final (cb) {
      stream.close().then(() => cb(), (err) => cb(err))
    },
    destroy (err, cb) {
      detach()
      if (stream.status === 'open' || stream.status === 'closing') {
        if (err != null) {
          stream.abort(err)
        } else {
          // Half-close our side; if the remote does not close its side soon,
          // reset the stream so that nothing lingers.
          closeTimer = setTimeout(() => stream.abort(new Error('remote did not close the stream')), 5000)
          closeTimer.unref()
          stream.close().catch(() => {})
        }
      }
      cb(err)
    }
  })

  const maybeEof = () => {
    if (!eofPushed && remoteEnded && stream.readBufferLength === 0) {
      eofPushed = true
      duplex.push(null)
    }
  }
  const onMessage = (evt) => {
    const data = evt.data
    const u8 = data instanceof Uint8Array ? data : data.subarray()
    const buf = Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength)
    if (!duplex.push(buf) && stream.readStatus === 'readable') {
      try { stream.pause() } catch {}
    }
    maybeEof()
  }
  // The remote's FIN can be flagged on a DATA frame: yamux dispatches
  // 'remoteCloseWrite' (and 'end') before that frame's data, so only end the
  // readable side once the read buffer is empty, after that data.
  const onRemoteCloseWrite = () => {
    remoteEnded = true
    queueMicrotask(maybeEof)
  }
  const onClose = (evt) => {
    if (closeTimer != null) clearTimeout(closeTimer)
    if (evt.error != null) {
      duplex.destroy(evt.error)
    } else {
      remoteEnded = true
      maybeEof()
    }
  }
  const detach = () => {
    stream.removeEventListener('message', onMessage)
    stream.removeEventListener('remoteCloseWrite', onRemoteCloseWrite)
  }
  stream.addEventListener('message', onMessage)
  stream.addEventListener('remoteCloseWrite', onRemoteCloseWrite)
  stream.addEventListener('close', onClose)
  if (stream.remoteWriteStatus === 'closed') onRemoteCloseWrite()
  return duplex
}

// Yamux keeps granting window while a stream is paused, so the read buffer can
// grow past the 4 MiB default before the remote stops; a larger cap avoids a
// reset (HTTP/2 flow control bounds it anyway).
const STREAM_READ_BUFFER = 64 * MiB

const H2_SETTINGS = { maxConcurrentStreams: 1000, enablePush: false }
const H2_OPTIONS = { maxSessionMemory: 256, settings: H2_SETTINGS, peerMaxConcurrentStreams: 1000 }

// ---------------------------------------------------------------------------
// libp2p node

async function makeNode (listen) {
  const privateKey = await generateKeyPair('Ed25519')
  return await createLibp2p({
    privateKey,
    addresses: { listen: listen == null ? [] : [listen] },
    transports: [tcp({
      inboundSocketInactivityTimeout: 10 * 60_000,
      outboundSocketInactivityTimeout: 10 * 60_000,
      backlog: 1024
    })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({
      maxInboundStreams: 4096,
      maxOutboundStreams: 4096,
      streamOptions: { maxReadBufferLength: STREAM_READ_BUFFER, inactivityTimeout: 10 * 60_000 }
    })],
    connectionManager: {
      maxConnections: 1000,
      inboundConnectionThreshold: 10_000, // default 5 per second per host
      maxIncomingPendingConnections: 1000, // default 10
      maxParallelDials: 100,
      dialTimeout: 30_000,
      inboundUpgradeTimeout: 30_000,
      inboundStreamProtocolNegotiationTimeout: 30_000,
      outboundStreamProtocolNegotiationTimeout: 30_000
    },
    // The monitor pings every connection over /ipfs/ping/1.0.0 and aborts it
    // when a ping is slow; nothing to gain here, and a loaded machine could
    // lose a connection to it.
    connectionMonitor: { enabled: false }
  })
}

const STREAM_LIMITS = { maxInboundStreams: 4096, maxOutboundStreams: 4096 }

// ---------------------------------------------------------------------------
// test.Echo server

function sendMsgs (h2s, msgs) {
  // Writes the framed messages, resolving when the stream can take more.
  return new Promise((resolve, reject) => {
    if (h2s.destroyed || h2s.closed) return reject(new Error('stream closed'))
    let ok = true
    for (const m of msgs) ok = h2s.write(frame(encodeMsg(m)))
    if (ok) return resolve()
    const cleanup = () => { h2s.off('drain', onDrain); h2s.off('close', onClose) }
    const onDrain = () => { cleanup(); resolve() }
    const onClose = () => { cleanup(); reject(new Error('stream closed')) }
    h2s.on('drain', onDrain)
    h2s.on('close', onClose)
  })
}

class ServerCall {
  constructor (h2s) {
    this.h2s = h2s
    this.started = false
    this.finished = false
    this.requestEnded = false
    this.decoder = new FrameDecoder()
    this.queue = []
    this.waiter = null
    this.ended = false
    this.error = null
    h2s.on('data', (chunk) => {
      if (this.error != null) return
      try {
        for (const body of this.decoder.push(chunk)) this.queue.push(decodeMsg(body))
      } catch (err) {
        this.error = err instanceof GrpcError ? err : new GrpcError(13, `bad request message: ${err.message}`)
      }
      this.wake()
    })
    h2s.on('end', () => {
      if (this.error == null && this.decoder.pending > 0) this.error = new GrpcError(13, 'request stream ended inside a message')
      this.requestEnded = true
      this.ended = true
      this.wake()
    })
    h2s.on('close', () => { this.ended = true; this.wake() })
    h2s.on('error', () => {})
  }

  wake () {
    const w = this.waiter
    this.waiter = null
    if (w != null) w()
  }

  // The next request message, or null at the end of the requests.
  async next () {
    for (;;) {
      if (this.error != null) throw this.error
      if (this.queue.length > 0) return this.queue.shift()
      if (this.ended) {
        if (this.h2s.aborted || (this.h2s.rstCode !== undefined && this.h2s.rstCode !== 0 && !this.h2s.readableEnded)) {
          throw new GrpcError(1, 'cancelled')
        }
        return null
      }
      await new Promise((resolve) => { this.waiter = resolve })
    }
  }

  async all () {
    const msgs = []
    for (;;) {
      const m = await this.next()
      if (m == null) return msgs
      msgs.push(m)
    }
  }

  async one () {
    const msgs = await this.all()
    if (msgs.length !== 1) throw new GrpcError(13, `expected exactly one request message, got ${msgs.length}`)
    return msgs[0]
  }

  start () {
    if (this.started) return
    this.started = true
    this.h2s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
  }

  async send (...msgs) {
    this.start()
    await sendMsgs(this.h2s, msgs)
  }

  finish (code, message) {
    if (this.finished || this.h2s.destroyed || this.h2s.closed) return
    this.finished = true
    const trailers = { 'grpc-status': String(code) }
    if (message) trailers['grpc-message'] = percentEncode(message)
    if (!this.started) {
      // trailers-only
      this.started = true
      this.h2s.respond({ ':status': 200, 'content-type': 'application/grpc', ...trailers }, { endStream: true })
      this.stopRequest()
      return
    }
    this.h2s.once('wantTrailers', () => {
      try { this.h2s.sendTrailers(trailers) } catch {}
      this.stopRequest()
    })
    this.h2s.end()
  }

  // After a complete response, a client still sending is told to stop with
  // RST_STREAM(NO_ERROR) (RFC 9113 section 8.1), as grpc-go does.
  stopRequest () {
    if (this.requestEnded) return
    setImmediate(() => {
      if (!this.requestEnded && !this.h2s.closed && !this.h2s.destroyed) this.h2s.close(http2.constants.NGHTTP2_NO_ERROR)
    })
  }
}

async function runEcho (method, call, remotePeer) {
  switch (method) {
    case 'Unary': {
      const m = await call.one()
      const failure = parseFailure(m.text)
      if (failure != null) throw failure
      await call.send(m)
      return
    }
    case 'Collect': {
      const total = { text: '', payloads: [], count: 0 }
      for (;;) {
        const m = await call.next()
        if (m == null) break
        const failure = parseFailure(m.text)
        if (failure != null) throw failure
        total.text += m.text
        total.payloads.push(m.payload)
        total.count = (total.count + m.count) >>> 0
      }
      await call.send({ text: total.text, payload: Buffer.concat(total.payloads), count: total.count })
      return
    }
    case 'Expand': {
      const m = await call.one()
      const f = /^fail:(\d+)$/.exec(m.text)
      const failAfter = f != null && Number(f[1]) <= 0xffffffff ? Number(f[1]) : null
      for (let i = 0; i < m.count; i++) {
        if (i === failAfter) throw new GrpcError(10, `failed after ${i}`)
        await call.send({ text: String(i), payload: m.payload, count: i })
      }
      return
    }
    case 'Chat': {
      call.start() // headers at once, so a client may wait for them
      for (;;) {
        const m = await call.next()
        if (m == null) return
        const failure = parseFailure(m.text)
        if (failure != null) throw failure
        await call.send(m)
      }
    }
    case 'Peer': {
      await call.all()
      await call.send({ text: remotePeer })
      return
    }
    default:
      throw new GrpcError(12, `unknown method ${SERVICE}/${method}`)
  }
}

function onServerStream (h2s, headers, remotePeer) {
  h2s.on('error', () => {})
  const path = headers[':path'] ?? ''
  const contentType = String(headers['content-type'] ?? '')
  if (headers[':method'] !== 'POST') {
    h2s.resume()
    h2s.respond({ ':status': 405 }, { endStream: true })
    return
  }
  if (!/^application\/grpc($|[+;])/.test(contentType)) {
    h2s.resume()
    h2s.respond({ ':status': 415 }, { endStream: true })
    return
  }
  const call = new ServerCall(h2s)
  const encoding = headers['grpc-encoding']
  if (encoding != null && encoding !== 'identity') {
    call.finish(12, `grpc-encoding ${encoding} is not supported`)
    h2s.resume()
    return
  }
  const m = /^\/([^/]+)\/([^/]+)$/.exec(path)
  const method = m != null && m[1] === SERVICE ? m[2] : null
  if (method == null || !['Unary', 'Collect', 'Expand', 'Chat', 'Peer'].includes(method)) {
    call.finish(12, `unknown method ${path}`)
    return
  }
  runEcho(method, call, remotePeer).then(
    () => call.finish(0, ''),
    (err) => {
      if (err instanceof GrpcError) call.finish(err.code, err.message)
      else if (!h2s.destroyed && !h2s.closed) call.finish(13, String(err?.message ?? err))
    })
}

// One HTTP/2 server connection over one inbound libp2p stream.
function serveStream (stream, connection) {
  stream.maxReadBufferLength = STREAM_READ_BUFFER
  const remotePeer = connection.remotePeer.toString()
  const duplex = streamToDuplex(stream)
  const server = http2.createServer(H2_OPTIONS)
  server.on('stream', (h2s, headers) => onServerStream(h2s, headers, remotePeer))
  server.on('sessionError', () => {})
  server.on('session', (session) => {
    session.on('error', () => {})
    session.on('close', () => { if (!duplex.destroyed) duplex.destroy() })
  })
  duplex.on('error', () => {})
  server.emit('connection', duplex)
}

async function runServer (opts) {
  const listen = opts.listen ?? '/ip4/127.0.0.1/tcp/0'
  const node = await makeNode(listen)
  await node.handle(PROTOCOL, serveStream, STREAM_LIMITS)
  const addrs = node.getMultiaddrs().map((a) => a.toString())
  const peerId = node.peerId.toString()
  let addr = addrs.find((a) => a.includes('/tcp/')) ?? addrs[0]
  if (addr == null) throw new Error('the node has no listen address')
  if (!addr.includes('/p2p/')) addr += `/p2p/${peerId}`
  await new Promise((resolve) => process.stdout.write(`LISTENING ${addr}\n`, resolve))
  log(`server ${peerId} listening on ${addr}`)

  let stopping = false
  const stop = async (why) => {
    if (stopping) return
    stopping = true
    log(`stopping (${why})`)
    const timer = setTimeout(() => process.exit(0), 3000)
    try { await node.stop() } catch (err) { log('stop:', err.message) }
    clearTimeout(timer)
    process.exit(0)
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // The end of stdin stops the server when stdin is a pipe, socket or
  // terminal (a parent that dies closes it); /dev/null or a file is ignored.
  let watchStdin = false
  try {
    const st = fstatSync(0)
    watchStdin = st.isFIFO() || st.isSocket() || process.stdin.isTTY === true
  } catch {}
  if (watchStdin) {
    process.stdin.on('end', () => stop('stdin closed'))
    process.stdin.on('close', () => stop('stdin closed'))
    process.stdin.on('error', () => stop('stdin error'))
    process.stdin.resume()
  }
}

// ---------------------------------------------------------------------------
// client

class AsyncQueue {
  constructor () { this.items = []; this.waiters = []; this.closed = false }
  push (item) {
    const w = this.waiters.shift()
    if (w != null) w(item)
    else this.items.push(item)
  }

  close () {
    this.closed = true
    for (const w of this.waiters.splice(0)) w(null)
  }

  next () {
    if (this.items.length > 0) return Promise.resolve(this.items.shift())
    if (this.closed) return Promise.resolve(null)
    return new Promise((resolve) => this.waiters.push(resolve))
  }
}

class ClientCall {
  constructor (session, method) {
    this.req = session.request({
      ':method': 'POST',
      ':path': `/${SERVICE}/${method}`,
      'content-type': 'application/grpc',
      te: 'trailers'
    })
    this.messages = new AsyncQueue()
    this.received = []
    this.headers = null
    this.status = null
    this.message = null
    this.error = null
    const decoder = new FrameDecoder()
    const req = this.req
    const setStatus = (h) => {
      if (h['grpc-status'] === undefined) return
      this.status = Number(h['grpc-status'])
      this.message = h['grpc-message'] === undefined ? '' : percentDecode(String(h['grpc-message']))
    }
    req.on('response', (h) => {
      this.headers = h
      if (h[':status'] !== 200) this.error ??= new Error(`HTTP status ${h[':status']}`)
      setStatus(h)
    })
    req.on('data', (chunk) => {
      try {
        for (const body of decoder.push(chunk)) {
          const m = decodeMsg(body)
          this.received.push(m)
          this.messages.push(m)
        }
      } catch (err) {
        this.error ??= err
      }
    })
    req.on('trailers', setStatus)
    // The response is complete: if we are still sending, stop (as grpc-go's
    // client does, with RST_STREAM(CANCEL)).
    req.on('end', () => {
      if (!req.writableEnded && !req.closed && !req.destroyed) req.close(http2.constants.NGHTTP2_CANCEL)
    })
    req.on('error', (err) => { this.error ??= err })
    this.done = new Promise((resolve) => {
      req.on('close', () => {
        if (decoder.pending > 0) this.error ??= new Error('response ended inside a message')
        this.messages.close()
        resolve(this)
      })
    })
  }

  send (msg) {
    return sendMsgs(this.req, [msg])
  }

  end () { this.req.end() }

  recv (ms = 10_000) {
    return withTimeout(this.messages.next(), ms, 'waiting for a response message')
  }

  describe () {
    if (this.error != null) return `error: ${this.error.message}`
    if (this.status == null) return `no grpc-status (rstCode ${this.req.rstCode})`
    return `status ${this.status}${this.message ? ` "${this.message}"` : ''}`
  }

  async result () {
    await this.done
    return this
  }
}

function withTimeout (promise, ms, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms ${what}`)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

async function unary (session, method, msg) {
  const call = new ClientCall(session, method)
  call.send(msg).catch(() => {})
  call.end()
  return await call.result()
}

function expectOk (call, what) {
  if (call.error != null || call.status !== 0) throw new Error(`${what}: ${call.describe()}`)
}

function sameMsg (a, b) {
  return (a.text ?? '') === (b.text ?? '') && (a.count ?? 0) === (b.count ?? 0) &&
    Buffer.compare(a.payload ?? Buffer.alloc(0), b.payload ?? Buffer.alloc(0)) === 0
}

function showMsg (m) {
  return `{text: ${JSON.stringify(m.text.length > 40 ? m.text.slice(0, 40) + '...' : m.text)}, payload: ${m.payload.length} bytes, count: ${m.count}}`
}

function expectEcho (call, sent, what) {
  expectOk(call, what)
  if (call.received.length !== 1) throw new Error(`${what}: ${call.received.length} response messages, want 1`)
  if (!sameMsg(call.received[0], sent)) throw new Error(`${what}: got ${showMsg(call.received[0])}, sent ${showMsg(sent)}`)
}

// Deterministic pseudo-random bytes (xorshift32), different for each seed.
function pattern (length, seed) {
  const buf = Buffer.alloc(length)
  let x = (seed * 2654435761 + 1) >>> 0 || 1
  for (let i = 0; i + 4 <= length; i += 4) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    buf.writeUInt32LE(x, i)
  }
  for (let i = length - (length % 4); i < length; i++) buf[i] = (seed + i) & 0xff
  return buf
}

class Client {
  constructor (node, addr) {
    this.node = node
    this.addr = addr
    this.connection = null
  }

  async connect () {
    if (this.connection == null || this.connection.status !== 'open') {
      this.connection = await this.node.dial(multiaddr(this.addr), { signal: AbortSignal.timeout(30_000) })
    }
    return this.connection
  }

  // A new libp2p stream and an HTTP/2 client connection over it.
  async session () {
    const connection = await this.connect()
    const stream = await connection.newStream(PROTOCOL, { ...STREAM_LIMITS, signal: AbortSignal.timeout(30_000) })
    stream.maxReadBufferLength = STREAM_READ_BUFFER
    const duplex = streamToDuplex(stream)
    duplex.on('error', () => {})
    const session = http2.connect('http://peer', { ...H2_OPTIONS, createConnection: () => duplex })
    session.on('error', (err) => log('http2 session error:', err.message))
    session.on('close', () => { if (!duplex.destroyed) duplex.destroy() })
    session.libp2pStream = stream
    return session
  }
}

async function closeSession (session) {
  if (session.closed || session.destroyed) return
  await new Promise((resolve) => {
    const timer = setTimeout(() => { session.destroy(); resolve() }, 5000)
    session.close(() => { clearTimeout(timer); resolve() })
  })
}

async function withSession (client, fn) {
  const session = await client.session()
  try {
    return await fn(session)
  } finally {
    await closeSession(session)
  }
}

const CASES = {
  async unary (client) {
    return await withSession(client, async (session) => {
      const sent = { text: 'hello js', payload: pattern(10, 1), count: 0 }
      const call = await unary(session, 'Unary', sent)
      expectEcho(call, sent, 'Unary')
      return 'echoed "hello js" with a 10-byte payload'
    })
  },

  async client_streaming (client) {
    return await withSession(client, async (session) => {
      const call = new ClientCall(session, 'Collect')
      for (const [text, count] of [['a', 1], ['b', 2], ['c', 3]]) await call.send({ text, count })
      call.end()
      await call.result()
      expectOk(call, 'Collect')
      if (call.received.length !== 1) throw new Error(`${call.received.length} responses, want 1`)
      const r = call.received[0]
      if (r.text !== 'abc' || r.count !== 6 || r.payload.length !== 0) throw new Error(`got ${showMsg(r)}, want {text: "abc", count: 6}`)
      return 'abc, count 6'
    })
  },

  async server_streaming (client) {
    return await withSession(client, async (session) => {
      const payload = pattern(1024, 2)
      const call = await unary(session, 'Expand', { count: 5, payload })
      expectOk(call, 'Expand')
      checkExpand(call.received, 5, payload)
      return '5 messages of 1 KiB, status 0'
    })
  },

  async bidi (client) {
    return await withSession(client, async (session) => {
      const call = new ClientCall(session, 'Chat')
      for (const text of ['ping 1', 'ping 2']) {
        const sent = { text, payload: pattern(100, text.length), count: 7 }
        await call.send(sent)
        const got = await call.recv()
        if (got == null) throw new Error(`call ended before the echo of "${text}": ${call.describe()}`)
        if (!sameMsg(got, sent)) throw new Error(`echo of "${text}" was ${showMsg(got)}`)
      }
      call.end()
      await withTimeout(call.result(), 10_000, 'waiting for the end of Chat')
      expectOk(call, 'Chat')
      if (call.received.length !== 2) throw new Error(`${call.received.length} messages, want 2`)
      return 'two ping-pongs, status 0'
    })
  },

  async status (client) {
    return await withSession(client, async (session) => {
      const call = await unary(session, 'Unary', { text: 'fail:7:no entry' })
      if (call.error != null) throw new Error(call.describe())
      if (call.status !== 7 || call.message !== 'no entry') throw new Error(`got ${call.describe()}, want status 7 "no entry"`)
      if (call.received.length !== 0) throw new Error(`${call.received.length} messages with the failure`)
      return 'status 7 "no entry"'
    })
  },

  async peer (client) {
    return await withSession(client, async (session) => {
      const call = await unary(session, 'Peer', {})
      expectOk(call, 'Peer')
      const mine = client.node.peerId.toString()
      const got = call.received[0]?.text
      if (got !== mine) throw new Error(`server saw peer ${JSON.stringify(got)}, we are ${mine}`)
      return `server saw ${mine}`
    })
  },

  async concurrent_large (client) {
    const size = 2 * MiB
    const sessions = [await client.session(), await client.session()]
    try {
      const calls = []
      sessions.forEach((session, s) => {
        for (let c = 0; c < 3; c++) {
          const sent = { text: `large ${s}.${c}`, payload: pattern(size, 100 + s * 10 + c), count: s * 10 + c }
          calls.push(unary(session, 'Unary', sent).then((call) => expectEcho(call, sent, `call ${s}.${c}`)))
        }
      })
      await Promise.all(calls)
      return '2 streams x 3 concurrent 2 MiB echoes'
    } finally {
      await Promise.all(sessions.map(closeSession))
    }
  },

  async many_concurrent (client) {
    return await withSession(client, async (session) => {
      const calls = []
      for (let i = 0; i < 50; i++) {
        const sent = { text: `call ${i}`, payload: pattern(64 + i, 1000 + i), count: i }
        calls.push(unary(session, 'Unary', sent).then((call) => expectEcho(call, sent, `call ${i}`)))
      }
      await Promise.all(calls)
      return '50 concurrent echoes on one stream'
    })
  },

  async large_expand (client) {
    return await withSession(client, async (session) => {
      const payload = pattern(2 * MiB, 3)
      const call = await unary(session, 'Expand', { count: 6, payload })
      expectOk(call, 'Expand')
      checkExpand(call.received, 6, payload)
      return '6 messages of 2 MiB, status 0'
    })
  },

  async reset (client) {
    return await withSession(client, async (session) => {
      const chat = new ClientCall(session, 'Chat')
      const sent = { text: 'before reset' }
      await chat.send(sent)
      const got = await chat.recv()
      if (got == null || !sameMsg(got, sent)) throw new Error(`no echo before the reset: ${chat.describe()}`)
      chat.req.close(http2.constants.NGHTTP2_CANCEL)
      await withTimeout(chat.done, 10_000, 'waiting for the cancelled call to close')
      const after = { text: 'after reset', payload: pattern(1000, 4), count: 1 }
      const call = await unary(session, 'Unary', after)
      expectEcho(call, after, 'Unary after the reset')
      return `Chat cancelled (rstCode ${chat.req.rstCode}), then Unary on the same connection`
    })
  }
}

function checkExpand (received, count, payload) {
  if (received.length !== count) throw new Error(`${received.length} messages, want ${count}`)
  received.forEach((m, i) => {
    if (m.text !== String(i) || m.count !== i || Buffer.compare(m.payload, payload) !== 0) {
      throw new Error(`message ${i} was ${showMsg(m)}`)
    }
  })
}

const CASE_TIMEOUT_MS = 60_000

async function runClient (opts) {
  if (opts.addr == null) usage('client needs --addr')
  const names = (opts.case ?? 'all').split(',').map((s) => s.trim()).filter((s) => s !== '')
  const cases = names.includes('all') ? Object.keys(CASES) : names
  const unknown = cases.filter((n) => !(n in CASES))
  if (unknown.length > 0) usage(`unknown case(s): ${unknown.join(', ')}; known: ${Object.keys(CASES).join(', ')}, all`)

  const node = await makeNode(null)
  const client = new Client(node, opts.addr)
  let failed = 0
  for (const name of cases) {
    let line
    try {
      const detail = await withTimeout(CASES[name](client), CASE_TIMEOUT_MS, `running ${name}`)
      line = { case: name, ok: true, detail }
    } catch (err) {
      failed++
      line = { case: name, ok: false, detail: String(err?.message ?? err) }
    }
    await new Promise((resolve) => process.stdout.write(JSON.stringify(line) + '\n', resolve))
  }
  const timer = setTimeout(() => process.exit(failed === 0 ? 0 : 1), 3000)
  try { await node.stop() } catch {}
  clearTimeout(timer)
  process.exit(failed === 0 ? 0 : 1)
}

async function runHold (opts) {
  if (opts.addr == null) usage('hold needs --addr')
  const node = await makeNode(null)
  const client = new Client(node, opts.addr)
  const session = await client.session()
  const call = new ClientCall(session, 'Chat')
  const sent = { text: 'hold' }
  await call.send(sent)
  const got = await call.recv(30_000)
  if (got == null || !sameMsg(got, sent)) throw new Error(`Chat did not echo: ${call.describe()}`)
  await new Promise((resolve) => process.stdout.write('HOLDING\n', resolve))
  // Keep the call open until killed.
  setInterval(() => {}, 1 << 30)
}

// ---------------------------------------------------------------------------

function usage (problem) {
  process.stderr.write(`peer.mjs: ${problem}\n` +
    'usage: peer.mjs server [--listen MULTIADDR]\n' +
    '       peer.mjs client --addr MULTIADDR/p2p/ID --case NAME[,NAME...]|all\n' +
    '       peer.mjs hold --addr MULTIADDR/p2p/ID\n')
  process.exit(2)
}

function parseArgs (argv) {
  const [mode, ...rest] = argv
  const opts = {}
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]
    const m = /^--([a-z_-]+)(?:=(.*))?$/.exec(arg)
    if (m == null) usage(`unexpected argument ${arg}`)
    let value = m[2]
    if (value === undefined) {
      value = rest[++i]
      if (value === undefined) usage(`${arg} needs a value`)
    }
    const key = m[1]
    if (!['listen', 'addr', 'case'].includes(key)) usage(`unknown flag --${key}`)
    opts[key] = value
  }
  return { mode, opts }
}

process.on('unhandledRejection', (err) => log('unhandled rejection:', err?.stack ?? err))
process.on('uncaughtException', (err) => log('uncaught exception:', err?.stack ?? err))

const { mode, opts } = parseArgs(process.argv.slice(2))
const modes = { server: runServer, client: runClient, hold: runHold }
if (!(mode in modes)) usage(`unknown mode ${mode ?? '(none)'}`)
modes[mode](opts).catch((err) => {
  log(`${mode} failed:`, err?.stack ?? err)
  process.exit(1)
})
