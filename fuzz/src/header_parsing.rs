//! Target `header_parsing`: the header-level protocol pieces, each checked
//! against a reference or a round trip.
//!
//! The input is a sequence of operations, each an opcode byte (taken modulo
//! [`OPS`]) and its arguments:
//! - `0` `grpc-timeout` parse (`bytes8`): agrees with the grammar; a parsed
//!   duration formats back to itself;
//! - `1` `grpc-timeout` format (`u32` seconds high, `u32` seconds low, `u32`
//!   nanoseconds): parse(format(d)) >= d, within one unit, saturating;
//! - `2` `grpc-message` (`bytes8`): decode never fails, the encoding is
//!   printable ASCII, decode(encode(s)) == s;
//! - `3` metadata (`u8` op, `bytes8` key, `bytes8` value): insert / append /
//!   insert_bin / append_bin / get / remove on one map, each checked against
//!   the key and value rules; the map survives a trip through headers;
//! - `4` status from headers (`u8` count, then `bytes8` name and value
//!   pairs): `Status::from_header_map` and its round trip;
//! - `5` `grpc-encoding` / `grpc-accept-encoding` (`bytes8`), against every
//!   supported encoding;
//! - `6` decompress (`u8` encoding, an index into
//!   [`CompressionEncoding::ALL`], `u16` limit, `bytes16` data): never past
//!   the limit; a compress round trip at and below the exact limit.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use p2p_grpc::wire::compression::{compress, decompress};
use p2p_grpc::wire::metadata::{is_reserved, MetadataError};
use p2p_grpc::wire::status::{decode_grpc_message, encode_grpc_message};
use p2p_grpc::wire::timeout::{format_timeout, parse_timeout};
use p2p_grpc::{Code, CompressionEncoding, MetadataMap, Status};

use crate::input::{Input, Output};

/// Number of opcodes.
pub const OPS: u8 = 7;

/// Builders for seed inputs.
pub mod ops {
    use super::*;

    pub fn timeout_parse(out: &mut Output, value: &[u8]) {
        out.u8(0).bytes8(value);
    }

    pub fn timeout_format(out: &mut Output, d: Duration) {
        let secs = d.as_secs();
        out.u8(1)
            .u32((secs >> 32) as u32)
            .u32(secs as u32)
            .u32(d.subsec_nanos());
    }

    pub fn grpc_message(out: &mut Output, value: &[u8]) {
        out.u8(2).bytes8(value);
    }

    /// `op`: 0 insert, 1 append, 2 insert_bin, 3 append_bin, 4 get, 5 remove.
    pub fn metadata(out: &mut Output, op: u8, key: &[u8], value: &[u8]) {
        out.u8(3).u8(op).bytes8(key).bytes8(value);
    }

    pub fn status(out: &mut Output, pairs: &[(&[u8], &[u8])]) {
        out.u8(4).u8(pairs.len() as u8);
        for (name, value) in pairs {
            out.bytes8(name).bytes8(value);
        }
    }

    pub fn encoding(out: &mut Output, value: &[u8]) {
        out.u8(5).bytes8(value);
    }

    pub fn decompress(out: &mut Output, encoding: CompressionEncoding, limit: u16, data: &[u8]) {
        let index = CompressionEncoding::ALL
            .iter()
            .position(|&e| e == encoding)
            .unwrap();
        out.u8(6).u8(index as u8).u16(limit).bytes16(data);
    }
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mut map = Model::default();
    while !input.is_empty() {
        match input.u8() % OPS {
            0 => timeout_parse(input.bytes8()),
            1 => {
                let secs = (u64::from(input.u32()) << 32) | u64::from(input.u32());
                let nanos = input.u32() % 1_000_000_000;
                timeout_format(Duration::new(secs, nanos));
            }
            2 => grpc_message(input.bytes8()),
            3 => {
                let op = input.u8();
                let key = input.bytes8();
                let value = input.bytes8();
                map.apply(op, key, value);
            }
            4 => {
                let count = input.u8() % 32;
                let pairs: Vec<(&[u8], &[u8])> = (0..count)
                    .map(|_| (input.bytes8(), input.bytes8()))
                    .collect();
                status_from_headers(&pairs);
            }
            5 => encoding(input.bytes8()),
            _ => {
                let all = CompressionEncoding::ALL;
                let encoding = all[usize::from(input.u8()) % all.len()];
                let limit = input.u16() as usize;
                let data = input.bytes16();
                decompress_limited(encoding, limit, data);
            }
        }
    }
    map.check_round_trips();
}

fn timeout_parse(value: &[u8]) {
    let parsed = parse_timeout(value);
    // The grammar: 1 to 8 ASCII digits and one unit.
    let valid = value.len() >= 2
        && value.len() <= 9
        && matches!(
            value[value.len() - 1],
            b'H' | b'M' | b'S' | b'm' | b'u' | b'n'
        )
        && value[..value.len() - 1].iter().all(u8::is_ascii_digit);
    assert_eq!(parsed.is_ok(), valid, "{value:?} -> {parsed:?}");
    if let Ok(d) = parsed {
        // A duration that fits one unit in 8 digits formats exactly.
        let text = format_timeout(d);
        assert_eq!(
            parse_timeout(text.as_bytes()),
            Ok(d),
            "{value:?} -> {text:?}"
        );
    }
}

fn timeout_format(d: Duration) {
    let max = parse_timeout(b"99999999H").unwrap();
    let text = format_timeout(d);
    let bytes = text.as_bytes();
    assert!(bytes.len() >= 2 && bytes.len() <= 9, "{d:?} -> {text:?}");
    let back = parse_timeout(bytes).unwrap_or_else(|e| panic!("{d:?} -> {text:?}: {e}"));
    if d > max {
        assert_eq!(back, max, "{d:?} saturates");
        return;
    }
    assert!(
        back >= d,
        "{d:?} -> {text:?} -> {back:?} shortens the deadline"
    );
    // Less than one unit of rounding, and a coarser unit only for values of
    // at least 10^5 of them.
    let err = (back - d).as_nanos();
    assert!(err * 100_000 <= back.as_nanos(), "{d:?} -> {text:?}");
    assert_eq!(format_timeout(back), text);
}

fn grpc_message(value: &[u8]) {
    let decoded = decode_grpc_message(value);
    let encoded = encode_grpc_message(&decoded);
    assert!(
        encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "encoding is printable ASCII"
    );
    HeaderValue::from_str(&encoded).expect("an encoded grpc-message is a valid header value");
    assert_eq!(decode_grpc_message(encoded.as_bytes()), decoded);
    if let Ok(text) = std::str::from_utf8(value) {
        let encoded = encode_grpc_message(text);
        assert_eq!(decode_grpc_message(encoded.as_bytes()), text);
        if !text
            .bytes()
            .any(|b| b == b'%' || !(0x20..=0x7e).contains(&b))
        {
            assert_eq!(encoded, text, "printable text without % is left alone");
        }
    }
}

/// The key rules of the metadata module, restated.
fn key_is_valid(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !is_reserved(key)
}

fn is_bin(key: &str) -> bool {
    key.len() >= 4 && key.as_bytes()[key.len() - 4..].eq_ignore_ascii_case(b"-bin")
}

/// A metadata map and a plain model of what it should hold.
#[derive(Default)]
struct Model {
    map: MetadataMap,
    /// Lowercase key -> values, as the map should return them.
    model: Vec<(String, Vec<Vec<u8>>)>,
}

impl Model {
    fn values(&mut self, key: &str) -> &mut Vec<Vec<u8>> {
        let key = key.to_ascii_lowercase();
        if let Some(i) = self.model.iter().position(|(k, _)| *k == key) {
            return &mut self.model[i].1;
        }
        self.model.push((key, Vec::new()));
        &mut self.model.last_mut().unwrap().1
    }

    fn apply(&mut self, op: u8, key: &[u8], value: &[u8]) {
        let key = String::from_utf8_lossy(key);
        let key: &str = &key;
        let key_ok = key_is_valid(key);
        match op % 6 {
            op @ (0 | 1) => {
                let value = String::from_utf8_lossy(value);
                let result = if op == 0 {
                    self.map.insert(key, &value)
                } else {
                    self.map.append(key, &value)
                };
                let value_ok = value.bytes().all(|b| (0x20..=0x7e).contains(&b));
                let expected_ok = key_ok && !is_bin(key) && value_ok;
                assert_eq!(result.is_ok(), expected_ok, "{key:?}={value:?}: {result:?}");
                match result {
                    Ok(()) => {
                        let values = self.values(key);
                        if op == 0 {
                            values.clear();
                        }
                        values.push(value.as_bytes().to_vec());
                        let want = self.values(key).clone();
                        let got: Vec<Vec<u8>> = self
                            .map
                            .get_all(key)
                            .map(|s| s.as_bytes().to_vec())
                            .collect();
                        assert_eq!(got, want);
                        assert_eq!(self.map.get(key).map(str::as_bytes), Some(&want[0][..]));
                    }
                    Err(err) => check_error(key, &err),
                }
            }
            op @ (2 | 3) => {
                let result = if op == 2 {
                    self.map.insert_bin(key, value)
                } else {
                    self.map.append_bin(key, value)
                };
                assert_eq!(result.is_ok(), key_ok && is_bin(key), "{key:?}: {result:?}");
                match result {
                    Ok(()) => {
                        let values = self.values(key);
                        if op == 2 {
                            values.clear();
                        }
                        values.push(value.to_vec());
                        let got: Vec<Bytes> = self
                            .map
                            .get_all_bin(key)
                            .map(|v| v.expect("a stored binary value decodes"))
                            .collect();
                        let want = self.values(key).clone();
                        assert_eq!(got, want);
                        assert_eq!(self.map.get(key), None, "no ASCII view of -bin keys");
                    }
                    Err(err) => check_error(key, &err),
                }
            }
            4 => {
                // Lookups never panic, whatever the key.
                let _ = self.map.get(key);
                let _ = self.map.get_all(key).count();
                let _ = self.map.get_bin(key);
                let _ = self.map.contains_key(key);
            }
            _ => {
                let had = self.map.remove(key);
                if key_ok {
                    let lower = key.to_ascii_lowercase();
                    let before = self.model.len();
                    self.model.retain(|(k, _)| *k != lower);
                    assert_eq!(had, before != self.model.len(), "remove({key:?})");
                }
            }
        }
        let count: usize = self.model.iter().map(|(_, v)| v.len()).sum();
        assert_eq!(self.map.len(), count);
    }

    fn check_round_trips(&self) {
        // Sent as headers and received again: the same map.
        let headers = self.map.clone().into_headers();
        assert_eq!(MetadataMap::from_headers(headers.clone()), self.map);
        assert_eq!(MetadataMap::from_headers_ref(&headers), self.map);
        // iter() yields every value, binary ones decoded (one per value:
        // stored values never contain a comma).
        assert_eq!(self.map.iter().count(), self.map.len());
        // As the metadata of a status.
        let mut status = Status::new(Code::Aborted, "m");
        status.metadata_mut().extend(self.map.clone());
        let back = Status::from_header_map(&status.to_header_map()).unwrap();
        assert_eq!(back.metadata(), &self.map);
    }
}

fn check_error(key: &str, err: &MetadataError) {
    let _ = err.to_string();
    if let MetadataError::ReservedKey(k) = err {
        assert!(is_reserved(k), "{key:?}");
    }
}

fn status_from_headers(pairs: &[(&[u8], &[u8])]) {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        else {
            continue;
        };
        headers.append(name, value);
    }
    let from_owned = MetadataMap::from_headers(headers.clone());
    let from_ref = MetadataMap::from_headers_ref(&headers);
    assert_eq!(from_owned, from_ref);
    for (key, _) in from_ref.iter() {
        assert!(!is_reserved(key));
    }
    for (name, _) in from_ref.as_headers() {
        let _ = from_ref.get_all_bin(name.as_str()).count();
    }

    let status = Status::from_header_map(&headers);
    let Some(grpc_status) = headers.get("grpc-status") else {
        assert!(status.is_none());
        return;
    };
    let status = status.expect("grpc-status present");
    assert_eq!(status.code(), Code::from_bytes(grpc_status.as_bytes()));
    let _ = (status.to_string(), format!("{status:?}"));
    // Sent again and received: the same status.
    let back = Status::from_header_map(&status.to_header_map()).unwrap();
    assert_eq!(back.code(), status.code());
    assert_eq!(back.message(), status.message());
    assert_eq!(back.details(), status.details());
    assert_eq!(back.metadata(), status.metadata());
}

fn encoding(value: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let result = CompressionEncoding::from_encoding_header(Some(&value));
    let name = value.as_bytes().trim_ascii();
    // The reference: identity, or an exact lowercase name of a supported
    // encoding; anything else is UNIMPLEMENTED.
    let named = CompressionEncoding::ALL
        .iter()
        .copied()
        .find(|e| e.as_str().as_bytes() == name);
    if name == b"identity" {
        assert_eq!(result.unwrap(), None);
    } else if let Some(encoding) = named {
        assert_eq!(result.unwrap(), Some(encoding), "{value:?}");
    } else {
        assert_eq!(result.unwrap_err().code(), Code::Unimplemented, "{value:?}");
    }
    for &encoding in CompressionEncoding::ALL {
        let accepted = encoding.is_accepted_by(Some(&value));
        let expected = value.as_bytes().split(|&b| b == b',').any(|name| {
            name.trim_ascii()
                .eq_ignore_ascii_case(encoding.as_str().as_bytes())
        });
        assert_eq!(accepted, expected, "{encoding:?} in {value:?}");
    }
}

fn decompress_limited(encoding: CompressionEncoding, limit: usize, data: &[u8]) {
    match decompress(encoding, data, limit) {
        Ok(out) => assert!(out.len() <= limit, "{encoding:?}: {} > {limit}", out.len()),
        Err(status) => assert!(
            matches!(status.code(), Code::Internal | Code::ResourceExhausted),
            "{encoding:?}: {status:?}"
        ),
    }
    let mut compressed = BytesMut::new();
    compress(encoding, data, &mut compressed).unwrap();
    let back = decompress(encoding, &compressed, data.len()).unwrap();
    assert_eq!(back, data, "{encoding:?}");
    if !data.is_empty() {
        let err = decompress(encoding, &compressed, data.len() - 1).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{encoding:?}");
    }
}
