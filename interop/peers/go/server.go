package main

// The interop server: grpc.testing.TestService as grpc/grpc
// doc/interop-test-descriptions.md ("Server") describes it, with a
// hand-written grpc.ServiceDesc.
//
// Response headers are never sent early: grpc-go sends them with the first
// response message (or with the status), and the echoed
// x-grpc-test-echo-initial is only queued with SetHeader.

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	testService          = "grpc.testing.TestService"
	unimplementedService = "grpc.testing.UnimplementedService"
	echoInitialKey       = "x-grpc-test-echo-initial"
	echoTrailingKey      = "x-grpc-test-echo-trailing-bin"
)

// testServiceHandler is the handler type of the ServiceDesc.
type testServiceHandler interface {
	isTestService()
}

type testServer struct {
	// honorCompression: responses are compressed message by message as the
	// requests ask (see compression.go); otherwise grpc-go's default applies.
	honorCompression bool
}

func (*testServer) isTestService() {}

var testServiceDesc = grpc.ServiceDesc{
	ServiceName: testService,
	HandlerType: (*testServiceHandler)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "EmptyCall", Handler: unaryHandler("EmptyCall", func() message { return &Empty{} },
			func(s *testServer, ctx context.Context, req message) (message, error) {
				return s.emptyCall(ctx, req.(*Empty))
			})},
		{MethodName: "UnaryCall", Handler: unaryHandler("UnaryCall", func() message { return &SimpleRequest{} },
			func(s *testServer, ctx context.Context, req message) (message, error) {
				return s.unaryCall(ctx, req.(*SimpleRequest))
			})},
		{MethodName: "CacheableUnaryCall", Handler: unaryHandler("CacheableUnaryCall", func() message { return &SimpleRequest{} },
			func(s *testServer, ctx context.Context, req message) (message, error) {
				return s.cacheableUnaryCall(ctx, req.(*SimpleRequest))
			})},
		{MethodName: "UnimplementedCall", Handler: unaryHandler("UnimplementedCall", func() message { return &Empty{} },
			func(*testServer, context.Context, message) (message, error) {
				return nil, status.Error(codes.Unimplemented, "UnimplementedCall is not implemented, on purpose")
			})},
	},
	Streams: []grpc.StreamDesc{
		{StreamName: "StreamingOutputCall", ServerStreams: true,
			Handler: streamHandler(func(s *testServer, st grpc.ServerStream) error { return s.streamingOutputCall(st) })},
		{StreamName: "StreamingInputCall", ClientStreams: true,
			Handler: streamHandler(func(s *testServer, st grpc.ServerStream) error { return s.streamingInputCall(st) })},
		{StreamName: "FullDuplexCall", ServerStreams: true, ClientStreams: true,
			Handler: streamHandler(func(s *testServer, st grpc.ServerStream) error { return s.fullDuplexCall(st) })},
		{StreamName: "HalfDuplexCall", ServerStreams: true, ClientStreams: true,
			Handler: streamHandler(func(s *testServer, st grpc.ServerStream) error { return s.halfDuplexCall(st) })},
	},
	Metadata: "grpc/testing/test.proto",
}

type unaryFunc func(s *testServer, ctx context.Context, req message) (message, error)

// unaryHandler adapts fn to grpc-go's method handler signature.
func unaryHandler(method string, newReq func() message, fn unaryFunc) func(interface{}, context.Context, func(interface{}) error, grpc.UnaryServerInterceptor) (interface{}, error) {
	return func(srv interface{}, ctx context.Context, dec func(interface{}) error, interceptor grpc.UnaryServerInterceptor) (interface{}, error) {
		req := newReq()
		if err := dec(req); err != nil {
			return nil, err
		}
		s := srv.(*testServer)
		if interceptor == nil {
			return fn(s, ctx, req)
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + testService + "/" + method}
		return interceptor(ctx, req, info, func(ctx context.Context, req interface{}) (interface{}, error) {
			return fn(s, ctx, req.(message))
		})
	}
}

func streamHandler(fn func(s *testServer, st grpc.ServerStream) error) grpc.StreamHandler {
	return func(srv interface{}, st grpc.ServerStream) error {
		return fn(srv.(*testServer), st)
	}
}

// ---------------------------------------------------------------------------
// Features shared by the methods.

// echoMetadata queues the Echo Metadata feature's header and trailer.
func echoMetadata(ctx context.Context, setHeader func(metadata.MD) error, setTrailer func(metadata.MD)) {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get(echoInitialKey); len(v) > 0 {
		_ = setHeader(metadata.MD{echoInitialKey: v})
	}
	if v := md.Get(echoTrailingKey); len(v) > 0 {
		setTrailer(metadata.MD{echoTrailingKey: v})
	}
}

func echoUnary(ctx context.Context) {
	echoMetadata(ctx,
		func(md metadata.MD) error { return grpc.SetHeader(ctx, md) },
		func(md metadata.MD) { _ = grpc.SetTrailer(ctx, md) })
}

func echoStream(st grpc.ServerStream) {
	echoMetadata(st.Context(), st.SetHeader, st.SetTrailer)
}

// echoStatus is the Echo Status feature: nil for no status or OK.
func echoStatus(s *EchoStatus) error {
	if s == nil || s.Code == 0 {
		return nil
	}
	return status.Error(codes.Code(uint32(s.Code)), s.Message)
}

// checkCompressed is the CompressedRequest feature.
func checkCompressed(expect *BoolValue, m message) error {
	if expect == nil {
		return nil
	}
	got := m.info().arrivedCompressed
	switch {
	case expect.Value && !got:
		return status.Error(codes.InvalidArgument, "expected a compressed request message, got an uncompressed one")
	case !expect.Value && got:
		return status.Error(codes.InvalidArgument, "expected an uncompressed request message, got a compressed one")
	}
	return nil
}

func newPayload(typ, size int32) (*Payload, error) {
	if typ != payloadCompressable {
		return nil, status.Errorf(codes.InvalidArgument, "unsupported response_type %d", typ)
	}
	if size < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "negative response size %d", size)
	}
	return &Payload{Type: typ, Body: make([]byte, size)}, nil
}

// acceptsGzip: the client listed gzip in grpc-accept-encoding.
func acceptsGzip(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("grpc-accept-encoding") {
		for _, name := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(name), "gzip") {
				return true
			}
		}
	}
	return false
}

// markCompression decides whether response m goes out compressed: as want
// says when the request set it, otherwise like the request message
// (grpc-go's own default). Never compressed for a client that neither
// accepts gzip nor sent gzip.
func (s *testServer) markCompression(ctx context.Context, m message, want *BoolValue, requestCompressed bool) {
	if !s.honorCompression {
		return
	}
	compress := requestCompressed
	if want != nil {
		compress = want.Value
	}
	if compress && !requestCompressed && !acceptsGzip(ctx) {
		compress = false
	}
	m.info().sendPlain = !compress
}

// sleepMicros waits, unless the call ends first.
func sleepMicros(ctx context.Context, us int32) error {
	if us <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(us) * time.Microsecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// sendResponses sends one StreamingOutputCallResponse per parameter.
func (s *testServer) sendResponses(st grpc.ServerStream, typ int32, params []*ResponseParameters, requestCompressed bool) error {
	for _, p := range params {
		if err := sleepMicros(st.Context(), p.IntervalUs); err != nil {
			return err
		}
		payload, err := newPayload(typ, p.Size)
		if err != nil {
			return err
		}
		resp := &StreamingOutputCallResponse{Payload: payload}
		s.markCompression(st.Context(), resp, p.Compressed, requestCompressed)
		if err := st.SendMsg(resp); err != nil {
			return err
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// The methods.

func (s *testServer) emptyCall(ctx context.Context, req *Empty) (message, error) {
	echoUnary(ctx)
	resp := &Empty{}
	s.markCompression(ctx, resp, nil, req.arrivedCompressed)
	return resp, nil
}

func (s *testServer) unaryCall(ctx context.Context, req *SimpleRequest) (message, error) {
	echoUnary(ctx)
	if err := checkCompressed(req.ExpectCompressed, req); err != nil {
		return nil, err
	}
	if err := echoStatus(req.ResponseStatus); err != nil {
		return nil, err
	}
	payload, err := newPayload(req.ResponseType, req.ResponseSize)
	if err != nil {
		return nil, err
	}
	resp := &SimpleResponse{Payload: payload}
	// fill_username / fill_oauth_scope: no authentication here, left empty.
	if req.FillServerID {
		resp.ServerID = "grpcpeer-go"
		resp.Hostname, _ = os.Hostname()
	}
	s.markCompression(ctx, resp, req.ResponseCompressed, req.arrivedCompressed)
	return resp, nil
}

func (s *testServer) cacheableUnaryCall(ctx context.Context, req *SimpleRequest) (message, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs("cache-control", "max-age=60"))
	resp := &SimpleResponse{Payload: &Payload{Body: []byte(strconv.FormatInt(time.Now().UnixNano(), 10))}}
	s.markCompression(ctx, resp, req.ResponseCompressed, req.arrivedCompressed)
	return resp, nil
}

func (s *testServer) streamingOutputCall(st grpc.ServerStream) error {
	echoStream(st)
	req := &StreamingOutputCallRequest{}
	if err := st.RecvMsg(req); err != nil {
		return err
	}
	if err := echoStatus(req.ResponseStatus); err != nil {
		return err
	}
	return s.sendResponses(st, req.ResponseType, req.ResponseParameters, req.arrivedCompressed)
}

func (s *testServer) streamingInputCall(st grpc.ServerStream) error {
	echoStream(st)
	var total int64
	compressed := false
	for {
		req := &StreamingInputCallRequest{}
		err := st.RecvMsg(req)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := checkCompressed(req.ExpectCompressed, req); err != nil {
			return err
		}
		compressed = req.arrivedCompressed
		if req.Payload != nil {
			total += int64(len(req.Payload.Body))
		}
	}
	if total > 1<<31-1 {
		return status.Error(codes.InvalidArgument, "aggregated payload size overflows int32")
	}
	resp := &StreamingInputCallResponse{AggregatedPayloadSize: int32(total)}
	s.markCompression(st.Context(), resp, nil, compressed)
	return st.SendMsg(resp)
}

func (s *testServer) fullDuplexCall(st grpc.ServerStream) error {
	echoStream(st)
	for {
		req := &StreamingOutputCallRequest{}
		err := st.RecvMsg(req)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := echoStatus(req.ResponseStatus); err != nil {
			return err
		}
		if err := s.sendResponses(st, req.ResponseType, req.ResponseParameters, req.arrivedCompressed); err != nil {
			return err
		}
	}
}

func (s *testServer) halfDuplexCall(st grpc.ServerStream) error {
	echoStream(st)
	var queued []*StreamingOutputCallRequest
	for {
		req := &StreamingOutputCallRequest{}
		err := st.RecvMsg(req)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := echoStatus(req.ResponseStatus); err != nil {
			return err
		}
		queued = append(queued, req)
	}
	for _, req := range queued {
		if err := s.sendResponses(st, req.ResponseType, req.ResponseParameters, req.arrivedCompressed); err != nil {
			return err
		}
	}
	return nil
}
