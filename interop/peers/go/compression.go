package main

// The codec and the gzip plumbing.
//
// grpc-go 1.33 does not tell application code whether a received message
// had the compressed flag set, and it compresses per call, not per message.
// The interop compression cases need both, so this file adds them on top of
// grpc-go's public extension points, without touching its sources:
//
//  1. Receiving (server: expect_compressed; client: the server_compressed_*
//     cases). grpc-go decompresses a message only when its compressed flag
//     is set, through the compressor registered under the call's
//     grpc-encoding (rpc_util.go, recvAndDecompress). We register our own
//     "gzip" compressor (encoding.RegisterCompressor replaces grpc-go's,
//     which it wraps and delegates to) whose decompressed output ends with a
//     marker: an extra protobuf field (number 536870911, bytes). Our codec,
//     which receives the decompressed bytes, strips the marker and records
//     wireInfo.arrivedCompressed on the decoded message. A message without
//     the compressed flag never goes through the decompressor, so the
//     answer is exact.
//
//  2. Sending, server side (response_compressed, ResponseParameters.compressed).
//     A grpc-go 1.33 server compresses responses only when the request was
//     compressed, or always when a legacy grpc.Compressor is set with
//     grpc.RPCCompressor (server.go, processUnaryRPC/processStreamingRPC);
//     grpc.SetSendCompressor does not exist yet. With --honor_response_compression
//     (the default) the server sets a legacy compressor, so every response
//     carries grpc-encoding: gzip, and that compressor decides per message:
//     for a message a handler marked wireInfo.sendPlain it writes nothing.
//     grpc-go then sends that message uncompressed with the flag cleared,
//     because compress() returns the (nil) bytes of an empty buffer and
//     msgHeader() sends the original bytes with compressionNone when
//     compData is nil (rpc_util.go). That is an implementation detail of
//     grpc-go 1.33, not an API; it is the only way this version has.
//     Messages are matched by the address of the encoded bytes: the codec's
//     Marshal output is handed to the compressor unchanged (encode() ->
//     compress(), rpc_util.go).
//
//  3. Sending, client side (client_compressed_streaming) needs nothing here:
//     grpc.PreparedMsg (public, experimental) encodes a message with the
//     codec and compressor of a given client stream, so a message prepared on
//     an uncompressed stream is sent uncompressed on a compressed one.

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // registers grpc-go's gzip, which we wrap
)

// compressedMarker is appended to every message our gzip decompressor
// outputs: field 536870911, wire type 2 (bytes), 8 bytes "gzipflag".
var compressedMarker = []byte{0xfa, 0xff, 0xff, 0xff, 0x0f, 0x08, 'g', 'z', 'i', 'p', 'f', 'l', 'a', 'g'}

// grpcGzip is grpc-go's own gzip compressor (google.golang.org/grpc/encoding/gzip).
var grpcGzip encoding.Compressor

func init() {
	grpcGzip = encoding.GetCompressor("gzip")
	if grpcGzip == nil {
		panic("grpc-go's gzip compressor is not registered")
	}
	encoding.RegisterCompressor(markingGzip{})
	encoding.RegisterCodec(codec{})
}

// codec replaces grpc-go's "proto" codec (so the content-type stays
// application/grpc) with the hand-written messages of messages.go.
type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v interface{}) ([]byte, error) {
	m, ok := v.(message)
	if !ok {
		return nil, fmt.Errorf("codec: cannot marshal %T", v)
	}
	// Capacity >= 1 even for an empty message, so that the buffer has an
	// address to be recognised by (plainMessages).
	b := m.appendTo(make([]byte, 0, 16))
	if m.info().sendPlain {
		plainMessages.Store(&b[:1][0], struct{}{})
	}
	return b, nil
}

func (codec) Unmarshal(data []byte, v interface{}) error {
	m, ok := v.(message)
	if !ok {
		return fmt.Errorf("codec: cannot unmarshal into %T", v)
	}
	compressed := false
	if bytes.HasSuffix(data, compressedMarker) {
		data = data[:len(data)-len(compressedMarker)]
		compressed = true
	}
	if err := m.decode(data); err != nil {
		return err
	}
	m.info().arrivedCompressed = compressed
	return nil
}

// markingGzip is registered as "gzip": grpc-go's gzip, plus the marker.
type markingGzip struct{}

func (markingGzip) Name() string { return "gzip" }

func (markingGzip) Compress(w io.Writer) (io.WriteCloser, error) {
	return grpcGzip.Compress(w)
}

func (markingGzip) Decompress(r io.Reader) (io.Reader, error) {
	z, err := grpcGzip.Decompress(r)
	if err != nil {
		return nil, err
	}
	return &markedReader{r: z, tail: compressedMarker}, nil
}

// markedReader reads r to its end, then the tail. grpc-go's gzip reader
// returns itself to a pool once it reported io.EOF, so r is not read again
// after that.
type markedReader struct {
	r    io.Reader
	done bool
	tail []byte
}

func (m *markedReader) Read(p []byte) (int, error) {
	if !m.done {
		n, err := m.r.Read(p)
		if err != io.EOF {
			return n, err
		}
		m.done = true
		if n > 0 {
			return n, nil
		}
	}
	if len(m.tail) == 0 {
		return 0, io.EOF
	}
	n := copy(p, m.tail)
	m.tail = m.tail[n:]
	return n, nil
}

// plainMessages holds the first byte's address of encoded messages that
// must go out uncompressed; serverCompressor takes them out.
var plainMessages sync.Map // *byte -> struct{}

func takePlain(p []byte) bool {
	if cap(p) == 0 {
		return false
	}
	_, found := plainMessages.LoadAndDelete(&p[:1][0])
	return found
}

// serverCompressor is the legacy grpc.Compressor given to grpc.RPCCompressor.
type serverCompressor struct{}

func (serverCompressor) Type() string { return "gzip" }

func (serverCompressor) Do(w io.Writer, p []byte) error {
	if takePlain(p) {
		// Nothing written: grpc-go sends p as is, flag cleared.
		return nil
	}
	z, err := grpcGzip.Compress(w)
	if err != nil {
		return err
	}
	if _, err := z.Write(p); err != nil {
		z.Close()
		return err
	}
	return z.Close()
}
