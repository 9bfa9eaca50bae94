package main

// The interop client: the cases of grpc/grpc
// doc/interop-test-descriptions.md ("Client"), with hand-written stubs over
// ClientConn.Invoke / ClientConn.NewStream.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	largeRequestSize  = 271828
	largeResponseSize = 314159
	echoInitialValue  = "test_initial_metadata_value"
	echoTrailingValue = "\xab\xab\xab"
	specialMessage    = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
	caseTimeout       = 30 * time.Second
)

// allCases is the order --test_case=all runs them in.
var allCases = []string{
	"empty_unary",
	"large_unary",
	"client_streaming",
	"server_streaming",
	"ping_pong",
	"empty_stream",
	"custom_metadata",
	"status_code_and_message",
	"special_status_message",
	"unimplemented_method",
	"unimplemented_service",
	"timeout_on_sleeping_server",
	"cancel_after_begin",
	"cancel_after_first_response",
	"client_compressed_unary",
	"server_compressed_unary",
	"client_compressed_streaming",
	"server_compressed_streaming",
}

// errUnsupported marks a case grpc-go cannot express.
type errUnsupported struct{ reason string }

func (e errUnsupported) Error() string { return e.reason }

type interopClient struct {
	cc *grpc.ClientConn
}

func (c *interopClient) run(ctx context.Context, name string) error {
	cases := map[string]func(context.Context) error{
		"empty_unary":                 c.emptyUnary,
		"large_unary":                 c.largeUnary,
		"client_streaming":            c.clientStreaming,
		"server_streaming":            c.serverStreaming,
		"ping_pong":                   c.pingPong,
		"empty_stream":                c.emptyStream,
		"custom_metadata":             c.customMetadata,
		"status_code_and_message":     c.statusCodeAndMessage,
		"special_status_message":      c.specialStatusMessage,
		"unimplemented_method":        c.unimplementedMethod,
		"unimplemented_service":       c.unimplementedService,
		"timeout_on_sleeping_server":  c.timeoutOnSleepingServer,
		"cancel_after_begin":          c.cancelAfterBegin,
		"cancel_after_first_response": c.cancelAfterFirstResponse,
		"client_compressed_unary":     c.clientCompressedUnary,
		"server_compressed_unary":     c.serverCompressedUnary,
		"client_compressed_streaming": c.clientCompressedStreaming,
		"server_compressed_streaming": c.serverCompressedStreaming,
	}
	fn, ok := cases[name]
	if !ok {
		return fmt.Errorf("unknown test case %q", name)
	}
	return fn(ctx)
}

// ---------------------------------------------------------------------------
// Stubs.

func method(service, name string) string { return "/" + service + "/" + name }

func (c *interopClient) invoke(ctx context.Context, name string, req, resp message, opts ...grpc.CallOption) error {
	return c.cc.Invoke(ctx, method(testService, name), req, resp, opts...)
}

func (c *interopClient) stream(ctx context.Context, name string, clientStreams, serverStreams bool, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	desc := &grpc.StreamDesc{StreamName: name, ClientStreams: clientStreams, ServerStreams: serverStreams}
	return c.cc.NewStream(ctx, desc, method(testService, name), opts...)
}

func (c *interopClient) fullDuplex(ctx context.Context, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.stream(ctx, "FullDuplexCall", true, true, opts...)
}

func (c *interopClient) streamingInput(ctx context.Context, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.stream(ctx, "StreamingInputCall", true, false, opts...)
}

// ---------------------------------------------------------------------------
// Helpers.

func zeros(n int) *Payload { return &Payload{Type: payloadCompressable, Body: make([]byte, n)} }

func largeRequest() *SimpleRequest {
	return &SimpleRequest{ResponseType: payloadCompressable, ResponseSize: largeResponseSize, Payload: zeros(largeRequestSize)}
}

func checkPayload(what string, p *Payload, size int) error {
	var body []byte
	if p != nil {
		body = p.Body
		if p.Type != payloadCompressable {
			return fmt.Errorf("%s: payload type %d, expected COMPRESSABLE", what, p.Type)
		}
	}
	if len(body) != size {
		return fmt.Errorf("%s: payload of %d bytes, expected %d", what, len(body), size)
	}
	for _, b := range body {
		if b != 0 {
			return fmt.Errorf("%s: payload is not all zeros", what)
		}
	}
	return nil
}

func outputRequest(responseSize int32, requestSize int) *StreamingOutputCallRequest {
	return &StreamingOutputCallRequest{
		ResponseType:       payloadCompressable,
		ResponseParameters: []*ResponseParameters{{Size: responseSize}},
		Payload:            zeros(requestSize),
	}
}

func describe(err error) string {
	if err == nil {
		return "OK"
	}
	if err == io.EOF {
		return "end of stream"
	}
	st, _ := status.FromError(err)
	return fmt.Sprintf("%s: %q", st.Code(), st.Message())
}

// expectCode checks that err is a status with code (and message, when
// message is not nil).
func expectCode(what string, err error, code codes.Code, message *string) error {
	st, ok := status.FromError(err)
	if err == nil || err == io.EOF || !ok || st.Code() != code {
		return fmt.Errorf("%s: ended with %s, expected %s", what, describe(err), code)
	}
	if message != nil && st.Message() != *message {
		return fmt.Errorf("%s: status message %q, expected %q", what, st.Message(), *message)
	}
	return nil
}

func callFailed(what string, err error) error {
	return fmt.Errorf("%s failed: %s", what, describe(err))
}

// recvOutput reads response i of a streaming call and checks its size.
func recvOutput(st grpc.ClientStream, i int, size int) (*StreamingOutputCallResponse, error) {
	resp := &StreamingOutputCallResponse{}
	if err := st.RecvMsg(resp); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("the response stream ended after %d messages", i)
		}
		return nil, callFailed(fmt.Sprintf("reading response %d", i), err)
	}
	return resp, checkPayload(fmt.Sprintf("response %d", i), resp.Payload, size)
}

func expectEnd(st grpc.ClientStream, count int) error {
	err := st.RecvMsg(&StreamingOutputCallResponse{})
	switch {
	case err == io.EOF:
		return nil
	case err == nil:
		return fmt.Errorf("more than %d responses", count)
	default:
		return callFailed("the call", err)
	}
}

// acceptGzip advertises gzip in grpc-accept-encoding. grpc-go 1.33 sends
// that header only for a call it compresses itself (http2_client.go,
// createHeaders), with the call's own encoding; as plain metadata it goes
// out as is.
func acceptGzip(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "grpc-accept-encoding", "gzip")
}

// stillWorks: after a cancellation the channel carries calls.
func (c *interopClient) stillWorks(ctx context.Context) error {
	if err := c.invoke(ctx, "EmptyCall", &Empty{}, &Empty{}); err != nil {
		return callFailed("EmptyCall after cancelling", err)
	}
	return nil
}

// ---------------------------------------------------------------------------
// The cases.

func (c *interopClient) emptyUnary(ctx context.Context) error {
	resp := &Empty{}
	if err := c.invoke(ctx, "EmptyCall", &Empty{}, resp); err != nil {
		return callFailed("EmptyCall", err)
	}
	return nil
}

func (c *interopClient) largeUnary(ctx context.Context) error {
	resp := &SimpleResponse{}
	if err := c.invoke(ctx, "UnaryCall", largeRequest(), resp); err != nil {
		return callFailed("UnaryCall", err)
	}
	return checkPayload("SimpleResponse", resp.Payload, largeResponseSize)
}

func (c *interopClient) clientStreaming(ctx context.Context) error {
	st, err := c.streamingInput(ctx)
	if err != nil {
		return callFailed("StreamingInputCall", err)
	}
	for _, size := range []int{27182, 8, 1828, 45904} {
		if err := st.SendMsg(&StreamingInputCallRequest{Payload: zeros(size)}); err != nil {
			return callFailed("sending a request", err)
		}
	}
	if err := st.CloseSend(); err != nil {
		return callFailed("CloseSend", err)
	}
	resp := &StreamingInputCallResponse{}
	if err := st.RecvMsg(resp); err != nil {
		return callFailed("StreamingInputCall", err)
	}
	if resp.AggregatedPayloadSize != 74922 {
		return fmt.Errorf("aggregated_payload_size is %d, expected 74922", resp.AggregatedPayloadSize)
	}
	return nil
}

func (c *interopClient) serverStreaming(ctx context.Context) error {
	sizes := []int32{31415, 9, 2653, 58979}
	req := &StreamingOutputCallRequest{ResponseType: payloadCompressable}
	for _, size := range sizes {
		req.ResponseParameters = append(req.ResponseParameters, &ResponseParameters{Size: size})
	}
	st, err := c.stream(ctx, "StreamingOutputCall", false, true)
	if err != nil {
		return callFailed("StreamingOutputCall", err)
	}
	if err := st.SendMsg(req); err != nil {
		return callFailed("sending the request", err)
	}
	if err := st.CloseSend(); err != nil {
		return callFailed("CloseSend", err)
	}
	for i, size := range sizes {
		if _, err := recvOutput(st, i, int(size)); err != nil {
			return err
		}
	}
	return expectEnd(st, len(sizes))
}

func (c *interopClient) pingPong(ctx context.Context) error {
	rounds := []struct {
		response int32
		request  int
	}{{31415, 27182}, {9, 8}, {2653, 1828}, {58979, 45904}}
	st, err := c.fullDuplex(ctx)
	if err != nil {
		return callFailed("FullDuplexCall", err)
	}
	for i, r := range rounds {
		if err := st.SendMsg(outputRequest(r.response, r.request)); err != nil {
			return callFailed(fmt.Sprintf("sending request %d", i), err)
		}
		if _, err := recvOutput(st, i, int(r.response)); err != nil {
			return err
		}
	}
	if err := st.CloseSend(); err != nil {
		return callFailed("CloseSend", err)
	}
	return expectEnd(st, len(rounds))
}

func (c *interopClient) emptyStream(ctx context.Context) error {
	st, err := c.fullDuplex(ctx)
	if err != nil {
		return callFailed("FullDuplexCall", err)
	}
	if err := st.CloseSend(); err != nil {
		return callFailed("CloseSend", err)
	}
	return expectEnd(st, 0)
}

func checkEcho(what string, header, trailer metadata.MD) error {
	if v := header.Get(echoInitialKey); len(v) != 1 || v[0] != echoInitialValue {
		return fmt.Errorf("%s: initial metadata %s is %q, expected [%q]", what, echoInitialKey, v, echoInitialValue)
	}
	if v := trailer.Get(echoTrailingKey); len(v) != 1 || v[0] != echoTrailingValue {
		return fmt.Errorf("%s: trailing metadata %s is %q, expected [\"\\xab\\xab\\xab\"]", what, echoTrailingKey, v)
	}
	return nil
}

func (c *interopClient) customMetadata(ctx context.Context) error {
	ctx = metadata.AppendToOutgoingContext(ctx, echoInitialKey, echoInitialValue, echoTrailingKey, echoTrailingValue)

	var header, trailer metadata.MD
	resp := &SimpleResponse{}
	if err := c.invoke(ctx, "UnaryCall", largeRequest(), resp, grpc.Header(&header), grpc.Trailer(&trailer)); err != nil {
		return callFailed("UnaryCall", err)
	}
	if err := checkPayload("SimpleResponse", resp.Payload, largeResponseSize); err != nil {
		return err
	}
	if err := checkEcho("UnaryCall", header, trailer); err != nil {
		return err
	}

	st, err := c.fullDuplex(ctx)
	if err != nil {
		return callFailed("FullDuplexCall", err)
	}
	if err := st.SendMsg(outputRequest(largeResponseSize, largeRequestSize)); err != nil {
		return callFailed("sending the request", err)
	}
	if err := st.CloseSend(); err != nil {
		return callFailed("CloseSend", err)
	}
	header, err = st.Header()
	if err != nil {
		return callFailed("FullDuplexCall headers", err)
	}
	if _, err := recvOutput(st, 0, largeResponseSize); err != nil {
		return err
	}
	if err := expectEnd(st, 1); err != nil {
		return err
	}
	return checkEcho("FullDuplexCall", header, st.Trailer())
}

func (c *interopClient) statusCodeAndMessage(ctx context.Context) error {
	message := "test status message"
	echo := &EchoStatus{Code: 2, Message: message}
	err := c.invoke(ctx, "UnaryCall", &SimpleRequest{ResponseStatus: echo}, &SimpleResponse{})
	if err := expectCode("UnaryCall", err, codes.Unknown, &message); err != nil {
		return err
	}
	st, err := c.fullDuplex(ctx)
	if err != nil {
		return callFailed("FullDuplexCall", err)
	}
	if err := st.SendMsg(&StreamingOutputCallRequest{ResponseStatus: echo}); err != nil && err != io.EOF {
		return callFailed("sending the request", err)
	}
	if err := st.CloseSend(); err != nil {
		return callFailed("CloseSend", err)
	}
	err = st.RecvMsg(&StreamingOutputCallResponse{})
	return expectCode("FullDuplexCall", err, codes.Unknown, &message)
}

func (c *interopClient) specialStatusMessage(ctx context.Context) error {
	message := specialMessage
	req := &SimpleRequest{ResponseStatus: &EchoStatus{Code: 2, Message: message}}
	err := c.invoke(ctx, "UnaryCall", req, &SimpleResponse{})
	return expectCode("UnaryCall", err, codes.Unknown, &message)
}

func (c *interopClient) unimplementedMethod(ctx context.Context) error {
	err := c.invoke(ctx, "UnimplementedCall", &Empty{}, &Empty{})
	return expectCode("TestService/UnimplementedCall", err, codes.Unimplemented, nil)
}

func (c *interopClient) unimplementedService(ctx context.Context) error {
	err := c.cc.Invoke(ctx, method(unimplementedService, "UnimplementedCall"), &Empty{}, &Empty{})
	return expectCode("UnimplementedService/UnimplementedCall", err, codes.Unimplemented, nil)
}

func (c *interopClient) timeoutOnSleepingServer(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	st, err := c.fullDuplex(ctx)
	if err != nil {
		// The deadline may pass before the stream exists.
		return expectCode("FullDuplexCall", err, codes.DeadlineExceeded, nil)
	}
	req := &StreamingOutputCallRequest{ResponseType: payloadCompressable, Payload: zeros(27182)}
	if err := st.SendMsg(req); err != nil && err != io.EOF {
		return expectCode("FullDuplexCall (sending)", err, codes.DeadlineExceeded, nil)
	}
	err = st.RecvMsg(&StreamingOutputCallResponse{})
	return expectCode("FullDuplexCall", err, codes.DeadlineExceeded, nil)
}

func (c *interopClient) cancelAfterBegin(ctx context.Context) error {
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.streamingInput(callCtx)
	if err != nil {
		return callFailed("StreamingInputCall", err)
	}
	cancel()
	// No CloseSend: grpc-go tears the stream down from another goroutine,
	// so an END_STREAM sent after cancel() may still go out first, and a
	// quick server then answers OK before the cancellation is seen (the
	// spec's case cancels without half-closing).
	err = st.RecvMsg(&StreamingInputCallResponse{})
	if err := expectCode("StreamingInputCall", err, codes.Canceled, nil); err != nil {
		return err
	}
	return c.stillWorks(ctx)
}

func (c *interopClient) cancelAfterFirstResponse(ctx context.Context) error {
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.fullDuplex(callCtx)
	if err != nil {
		return callFailed("FullDuplexCall", err)
	}
	if err := st.SendMsg(outputRequest(31415, 27182)); err != nil {
		return callFailed("sending the request", err)
	}
	if _, err := recvOutput(st, 0, 31415); err != nil {
		return err
	}
	cancel()
	err = st.RecvMsg(&StreamingOutputCallResponse{})
	if err := expectCode("FullDuplexCall", err, codes.Canceled, nil); err != nil {
		return err
	}
	return c.stillWorks(ctx)
}

func compressedRequest(expect bool) *SimpleRequest {
	req := largeRequest()
	req.ExpectCompressed = &BoolValue{Value: expect}
	return req
}

func (c *interopClient) clientCompressedUnary(ctx context.Context) error {
	err := c.invoke(ctx, "UnaryCall", compressedRequest(true), &SimpleResponse{})
	if err := expectCode("UnaryCall (probe: uncompressed, expect_compressed=true)", err, codes.InvalidArgument, nil); err != nil {
		return err
	}
	resp := &SimpleResponse{}
	if err := c.invoke(ctx, "UnaryCall", compressedRequest(true), resp, grpc.UseCompressor("gzip")); err != nil {
		return callFailed("UnaryCall (compressed)", err)
	}
	if err := checkPayload("SimpleResponse (compressed request)", resp.Payload, largeResponseSize); err != nil {
		return err
	}
	resp = &SimpleResponse{}
	if err := c.invoke(ctx, "UnaryCall", compressedRequest(false), resp); err != nil {
		return callFailed("UnaryCall (uncompressed)", err)
	}
	return checkPayload("SimpleResponse (uncompressed request)", resp.Payload, largeResponseSize)
}

func (c *interopClient) serverCompressedUnary(ctx context.Context) error {
	ctx = acceptGzip(ctx)
	for _, want := range []bool{true, false} {
		what := fmt.Sprintf("UnaryCall (response_compressed=%v)", want)
		req := largeRequest()
		req.ResponseCompressed = &BoolValue{Value: want}
		resp := &SimpleResponse{}
		if err := c.invoke(ctx, "UnaryCall", req, resp); err != nil {
			return callFailed(what, err)
		}
		if err := checkPayload(what, resp.Payload, largeResponseSize); err != nil {
			return err
		}
		if resp.arrivedCompressed != want {
			return fmt.Errorf("%s: the response's compressed flag is %v", what, resp.arrivedCompressed)
		}
	}
	return nil
}

func (c *interopClient) clientCompressedStreaming(ctx context.Context) error {
	first := &StreamingInputCallRequest{Payload: zeros(27182), ExpectCompressed: &BoolValue{Value: true}}
	second := &StreamingInputCallRequest{Payload: zeros(45904), ExpectCompressed: &BoolValue{Value: false}}

	// The probe: an uncompressed message that says it is compressed.
	probe, err := c.streamingInput(ctx)
	if err != nil {
		return callFailed("StreamingInputCall (probe)", err)
	}
	// grpc-go compresses per call; a message prepared on this uncompressed
	// stream is sent as prepared (flag cleared) on the compressed one below.
	plainSecond := &grpc.PreparedMsg{}
	if err := plainSecond.Encode(probe, second); err != nil {
		return callFailed("PreparedMsg.Encode", err)
	}
	if err := probe.SendMsg(first); err != nil && err != io.EOF {
		return callFailed("sending the probe", err)
	}
	if err := probe.CloseSend(); err != nil {
		return callFailed("CloseSend (probe)", err)
	}
	err = probe.RecvMsg(&StreamingInputCallResponse{})
	if err := expectCode("StreamingInputCall (probe: uncompressed, expect_compressed=true)", err, codes.InvalidArgument, nil); err != nil {
		return err
	}

	st, err := c.streamingInput(ctx, grpc.UseCompressor("gzip"))
	if err != nil {
		return callFailed("StreamingInputCall (compressed)", err)
	}
	if err := st.SendMsg(first); err != nil {
		return callFailed("sending the compressed message", err)
	}
	if err := st.SendMsg(plainSecond); err != nil {
		return callFailed("sending the uncompressed message", err)
	}
	if err := st.CloseSend(); err != nil {
		return callFailed("CloseSend", err)
	}
	resp := &StreamingInputCallResponse{}
	if err := st.RecvMsg(resp); err != nil {
		return callFailed("StreamingInputCall (compressed, then not)", err)
	}
	if resp.AggregatedPayloadSize != 73086 {
		return fmt.Errorf("aggregated_payload_size is %d, expected 73086", resp.AggregatedPayloadSize)
	}
	return nil
}

func (c *interopClient) serverCompressedStreaming(ctx context.Context) error {
	wanted := []struct {
		size       int32
		compressed bool
	}{{31415, true}, {92653, false}}
	req := &StreamingOutputCallRequest{ResponseType: payloadCompressable}
	for _, w := range wanted {
		req.ResponseParameters = append(req.ResponseParameters,
			&ResponseParameters{Size: w.size, Compressed: &BoolValue{Value: w.compressed}})
	}
	st, err := c.stream(acceptGzip(ctx), "StreamingOutputCall", false, true)
	if err != nil {
		return callFailed("StreamingOutputCall", err)
	}
	if err := st.SendMsg(req); err != nil {
		return callFailed("sending the request", err)
	}
	if err := st.CloseSend(); err != nil {
		return callFailed("CloseSend", err)
	}
	for i, w := range wanted {
		resp, err := recvOutput(st, i, int(w.size))
		if err != nil {
			return err
		}
		if resp.arrivedCompressed != w.compressed {
			return fmt.Errorf("response %d: compressed flag is %v, expected %v", i, resp.arrivedCompressed, w.compressed)
		}
	}
	return expectEnd(st, len(wanted))
}

// ---------------------------------------------------------------------------

// runCases runs the cases one after the other, each with its own deadline,
// prints a line for each and a summary; it returns whether none failed.
func runCases(c *interopClient, names []string) bool {
	passed, failed, unsupported := 0, 0, 0
	for _, name := range names {
		err := runOne(c, name)
		var unsup errUnsupported
		switch {
		case err == nil:
			passed++
			fmt.Printf("%s: PASSED\n", name)
		case errors.As(err, &unsup):
			unsupported++
			fmt.Printf("%s: UNSUPPORTED: %s\n", name, oneLine(unsup.reason))
		default:
			failed++
			fmt.Printf("%s: FAILED: %s\n", name, oneLine(err.Error()))
		}
	}
	fmt.Printf("%d passed, %d failed, %d unsupported\n", passed, failed, unsupported)
	return failed == 0
}

func runOne(c *interopClient, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.run(ctx, name) }()
	select {
	case err := <-done:
		return err
	case <-time.After(caseTimeout + 5*time.Second):
		return fmt.Errorf("did not finish within %v", caseTimeout)
	}
}

// oneLine keeps a reason on its line (status messages may hold newlines).
func oneLine(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		switch r {
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		default:
			out = append(out, r)
		}
	}
	return string(out)
}
