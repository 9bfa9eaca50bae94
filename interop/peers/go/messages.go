package main

// The grpc.testing messages, written by hand (there is no protoc here).
// Field numbers follow interop/proto/grpc/testing/{empty,messages}.proto of
// this repository. Encoding follows proto3: scalar fields equal to their
// zero value are left out, message fields are written when non-nil, unknown
// fields are skipped when decoding, and a field whose wire type does not
// match the schema is treated as unknown.

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// wireInfo is what the codec learns about a message it decodes, and what a
// handler asks of a message it sends. It is not part of the protobuf
// encoding.
type wireInfo struct {
	// arrivedCompressed: the message came in with the gRPC compressed flag
	// set (see compression.go for how this is detected).
	arrivedCompressed bool
	// sendPlain (server side): send this message without compression even
	// though the call's responses are compressed.
	sendPlain bool
}

func (w *wireInfo) info() *wireInfo { return w }

// message is implemented by every grpc.testing message below.
type message interface {
	appendTo(b []byte) []byte
	decode(b []byte) error
	info() *wireInfo
}

// PayloadType values.
const payloadCompressable int32 = 0

type Empty struct {
	wireInfo
}

type BoolValue struct {
	wireInfo
	Value bool // 1
}

type Payload struct {
	wireInfo
	Type int32  // 1 (enum PayloadType)
	Body []byte // 2
}

type EchoStatus struct {
	wireInfo
	Code    int32  // 1
	Message string // 2
}

type SimpleRequest struct {
	wireInfo
	ResponseType        int32       // 1
	ResponseSize        int32       // 2
	Payload             *Payload    // 3
	FillUsername        bool        // 4
	FillOauthScope      bool        // 5
	ResponseCompressed  *BoolValue  // 6
	ResponseStatus      *EchoStatus // 7
	ExpectCompressed    *BoolValue  // 8
	FillServerID        bool        // 9
	FillGrpclbRouteType bool        // 10
}

type SimpleResponse struct {
	wireInfo
	Payload    *Payload // 1
	Username   string   // 2
	OauthScope string   // 3
	ServerID   string   // 4
	Hostname   string   // 6
}

type StreamingInputCallRequest struct {
	wireInfo
	Payload          *Payload   // 1
	ExpectCompressed *BoolValue // 2
}

type StreamingInputCallResponse struct {
	wireInfo
	AggregatedPayloadSize int32 // 1
}

type ResponseParameters struct {
	wireInfo
	Size       int32      // 1
	IntervalUs int32      // 2
	Compressed *BoolValue // 3
}

type StreamingOutputCallRequest struct {
	wireInfo
	ResponseType       int32                 // 1
	ResponseParameters []*ResponseParameters // 2
	Payload            *Payload              // 3
	ResponseStatus     *EchoStatus           // 7
}

type StreamingOutputCallResponse struct {
	wireInfo
	Payload *Payload // 1
}

// ---------------------------------------------------------------------------
// Encoding helpers.

func putInt32(b []byte, num protowire.Number, v int32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	// int32 is sign-extended to 64 bits on the wire.
	return protowire.AppendVarint(b, uint64(int64(v)))
}

func putBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, 1)
}

func putBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func putString(b []byte, num protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

// putMessage writes a sub-message field (written even when the sub-message
// is empty: presence matters for message fields).
func putMessage(b []byte, num protowire.Number, m message) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	inner := m.appendTo(nil)
	b = protowire.AppendVarint(b, uint64(len(inner)))
	return append(b, inner...)
}

// ---------------------------------------------------------------------------
// Decoding helpers.

// skip is returned by a field visitor for a field it does not know.
const skip = -1000

var errFieldOverrun = errors.New("proto: bad field")

// parseFields walks the fields of an encoded message. visit returns how many
// bytes of b (the bytes after the tag) the value used, or skip.
func parseFields(b []byte, visit func(num protowire.Number, typ protowire.Type, b []byte) (int, error)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		n, err := visit(num, typ, b)
		if err != nil {
			return err
		}
		if n == skip {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		if n > len(b) {
			return errFieldOverrun
		}
		b = b[n:]
	}
	return nil
}

func getInt32(b []byte, dst *int32) (int, error) {
	v, n := protowire.ConsumeVarint(b)
	if n >= 0 {
		*dst = int32(v)
	}
	return n, nil
}

func getBool(b []byte, dst *bool) (int, error) {
	v, n := protowire.ConsumeVarint(b)
	if n >= 0 {
		*dst = v != 0
	}
	return n, nil
}

func getBytes(b []byte, dst *[]byte) (int, error) {
	v, n := protowire.ConsumeBytes(b)
	if n >= 0 {
		*dst = append([]byte(nil), v...)
	}
	return n, nil
}

func getString(b []byte, dst *string) (int, error) {
	v, n := protowire.ConsumeBytes(b)
	if n >= 0 {
		*dst = string(v)
	}
	return n, nil
}

// getMessage decodes a sub-message field into m, merging as protobuf does
// when a message field appears more than once.
func getMessage(b []byte, m message) (int, error) {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return n, nil
	}
	return n, m.decode(v)
}

// ---------------------------------------------------------------------------
// Per message. decode merges into the receiver (callers pass fresh values).

func (m *Empty) appendTo(b []byte) []byte { return b }
func (m *Empty) decode(b []byte) error {
	return parseFields(b, func(protowire.Number, protowire.Type, []byte) (int, error) { return skip, nil })
}

func (m *BoolValue) appendTo(b []byte) []byte { return putBool(b, 1, m.Value) }
func (m *BoolValue) decode(b []byte) error {
	return parseFields(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num == 1 && typ == protowire.VarintType {
			return getBool(b, &m.Value)
		}
		return skip, nil
	})
}

func (m *Payload) appendTo(b []byte) []byte {
	b = putInt32(b, 1, m.Type)
	return putBytes(b, 2, m.Body)
}
func (m *Payload) decode(b []byte) error {
	return parseFields(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch {
		case num == 1 && typ == protowire.VarintType:
			return getInt32(b, &m.Type)
		case num == 2 && typ == protowire.BytesType:
			return getBytes(b, &m.Body)
		}
		return skip, nil
	})
}

func (m *EchoStatus) appendTo(b []byte) []byte {
	b = putInt32(b, 1, m.Code)
	return putString(b, 2, m.Message)
}
func (m *EchoStatus) decode(b []byte) error {
	return parseFields(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch {
		case num == 1 && typ == protowire.VarintType:
			return getInt32(b, &m.Code)
		case num == 2 && typ == protowire.BytesType:
			return getString(b, &m.Message)
		}
		return skip, nil
	})
}

func (m *SimpleRequest) appendTo(b []byte) []byte {
	b = putInt32(b, 1, m.ResponseType)
	b = putInt32(b, 2, m.ResponseSize)
	if m.Payload != nil {
		b = putMessage(b, 3, m.Payload)
	}
	b = putBool(b, 4, m.FillUsername)
	b = putBool(b, 5, m.FillOauthScope)
	if m.ResponseCompressed != nil {
		b = putMessage(b, 6, m.ResponseCompressed)
	}
	if m.ResponseStatus != nil {
		b = putMessage(b, 7, m.ResponseStatus)
	}
	if m.ExpectCompressed != nil {
		b = putMessage(b, 8, m.ExpectCompressed)
	}
	b = putBool(b, 9, m.FillServerID)
	return putBool(b, 10, m.FillGrpclbRouteType)
}
func (m *SimpleRequest) decode(b []byte) error {
	return parseFields(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if typ == protowire.VarintType {
			switch num {
			case 1:
				return getInt32(b, &m.ResponseType)
			case 2:
				return getInt32(b, &m.ResponseSize)
			case 4:
				return getBool(b, &m.FillUsername)
			case 5:
				return getBool(b, &m.FillOauthScope)
			case 9:
				return getBool(b, &m.FillServerID)
			case 10:
				return getBool(b, &m.FillGrpclbRouteType)
			}
		}
		if typ == protowire.BytesType {
			switch num {
			case 3:
				if m.Payload == nil {
					m.Payload = &Payload{}
				}
				return getMessage(b, m.Payload)
			case 6:
				if m.ResponseCompressed == nil {
					m.ResponseCompressed = &BoolValue{}
				}
				return getMessage(b, m.ResponseCompressed)
			case 7:
				if m.ResponseStatus == nil {
					m.ResponseStatus = &EchoStatus{}
				}
				return getMessage(b, m.ResponseStatus)
			case 8:
				if m.ExpectCompressed == nil {
					m.ExpectCompressed = &BoolValue{}
				}
				return getMessage(b, m.ExpectCompressed)
			}
		}
		return skip, nil
	})
}

func (m *SimpleResponse) appendTo(b []byte) []byte {
	if m.Payload != nil {
		b = putMessage(b, 1, m.Payload)
	}
	b = putString(b, 2, m.Username)
	b = putString(b, 3, m.OauthScope)
	b = putString(b, 4, m.ServerID)
	return putString(b, 6, m.Hostname)
}
func (m *SimpleResponse) decode(b []byte) error {
	return parseFields(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if typ != protowire.BytesType {
			return skip, nil
		}
		switch num {
		case 1:
			if m.Payload == nil {
				m.Payload = &Payload{}
			}
			return getMessage(b, m.Payload)
		case 2:
			return getString(b, &m.Username)
		case 3:
			return getString(b, &m.OauthScope)
		case 4:
			return getString(b, &m.ServerID)
		case 6:
			return getString(b, &m.Hostname)
		}
		return skip, nil
	})
}

func (m *StreamingInputCallRequest) appendTo(b []byte) []byte {
	if m.Payload != nil {
		b = putMessage(b, 1, m.Payload)
	}
	if m.ExpectCompressed != nil {
		b = putMessage(b, 2, m.ExpectCompressed)
	}
	return b
}
func (m *StreamingInputCallRequest) decode(b []byte) error {
	return parseFields(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if typ != protowire.BytesType {
			return skip, nil
		}
		switch num {
		case 1:
			if m.Payload == nil {
				m.Payload = &Payload{}
			}
			return getMessage(b, m.Payload)
		case 2:
			if m.ExpectCompressed == nil {
				m.ExpectCompressed = &BoolValue{}
			}
			return getMessage(b, m.ExpectCompressed)
		}
		return skip, nil
	})
}

func (m *StreamingInputCallResponse) appendTo(b []byte) []byte {
	return putInt32(b, 1, m.AggregatedPayloadSize)
}
func (m *StreamingInputCallResponse) decode(b []byte) error {
	return parseFields(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num == 1 && typ == protowire.VarintType {
			return getInt32(b, &m.AggregatedPayloadSize)
		}
		return skip, nil
	})
}

func (m *ResponseParameters) appendTo(b []byte) []byte {
	b = putInt32(b, 1, m.Size)
	b = putInt32(b, 2, m.IntervalUs)
	if m.Compressed != nil {
		b = putMessage(b, 3, m.Compressed)
	}
	return b
}
func (m *ResponseParameters) decode(b []byte) error {
	return parseFields(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		switch {
		case num == 1 && typ == protowire.VarintType:
			return getInt32(b, &m.Size)
		case num == 2 && typ == protowire.VarintType:
			return getInt32(b, &m.IntervalUs)
		case num == 3 && typ == protowire.BytesType:
			if m.Compressed == nil {
				m.Compressed = &BoolValue{}
			}
			return getMessage(b, m.Compressed)
		}
		return skip, nil
	})
}

func (m *StreamingOutputCallRequest) appendTo(b []byte) []byte {
	b = putInt32(b, 1, m.ResponseType)
	for _, p := range m.ResponseParameters {
		b = putMessage(b, 2, p)
	}
	if m.Payload != nil {
		b = putMessage(b, 3, m.Payload)
	}
	if m.ResponseStatus != nil {
		b = putMessage(b, 7, m.ResponseStatus)
	}
	return b
}
func (m *StreamingOutputCallRequest) decode(b []byte) error {
	return parseFields(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num == 1 && typ == protowire.VarintType {
			return getInt32(b, &m.ResponseType)
		}
		if typ != protowire.BytesType {
			return skip, nil
		}
		switch num {
		case 2:
			p := &ResponseParameters{}
			m.ResponseParameters = append(m.ResponseParameters, p)
			return getMessage(b, p)
		case 3:
			if m.Payload == nil {
				m.Payload = &Payload{}
			}
			return getMessage(b, m.Payload)
		case 7:
			if m.ResponseStatus == nil {
				m.ResponseStatus = &EchoStatus{}
			}
			return getMessage(b, m.ResponseStatus)
		}
		return skip, nil
	})
}

func (m *StreamingOutputCallResponse) appendTo(b []byte) []byte {
	if m.Payload != nil {
		b = putMessage(b, 1, m.Payload)
	}
	return b
}
func (m *StreamingOutputCallResponse) decode(b []byte) error {
	return parseFields(b, func(num protowire.Number, typ protowire.Type, b []byte) (int, error) {
		if num == 1 && typ == protowire.BytesType {
			if m.Payload == nil {
				m.Payload = &Payload{}
			}
			return getMessage(b, m.Payload)
		}
		return skip, nil
	})
}
