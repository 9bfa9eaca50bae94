//! Custom metadata of a call: the application's own request headers,
//! response headers and trailers.
//!
//! gRPC metadata keys are lowercase and made of `0-9 a-z _ - .`. A key ending
//! in `-bin` carries binary data, sent base64 encoded (standard alphabet, no
//! padding); any other key carries printable ASCII (`0x20..=0x7E`).
//!
//! Headers that belong to the protocol (`grpc-*`, `content-type`, `te`,
//! HTTP/1 connection headers...) are *reserved*: they can neither be set
//! through a [`MetadataMap`] nor are they shown in one built from received
//! headers, see [`is_reserved`].

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// Base64 as gRPC uses it: standard alphabet, written without padding, read
/// with or without padding (peers differ), lenient about trailing bits.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The suffix that marks binary metadata keys.
const BIN_SUFFIX: &str = "-bin";

/// HTTP/1 connection-specific headers, forbidden in HTTP/2, plus headers the
/// transport owns.
const RESERVED_EXACT: &[&str] = &[
    "content-type",
    "te",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Whether a header name belongs to the protocol and so cannot be custom
/// metadata.
///
/// Reserved are: pseudo-headers (starting with `:`), every name starting with
/// `grpc-`, `content-type`, `te`, `content-length` (h2 would enforce it
/// against the DATA frames) and the HTTP/1 connection headers `connection`,
/// `keep-alive`, `proxy-connection`, `transfer-encoding`, `upgrade` and
/// `host`. `user-agent` is *not* reserved. The comparison ignores ASCII case.
pub fn is_reserved(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.first() == Some(&b':') {
        return true;
    }
    if bytes.len() >= 5 && bytes[..5].eq_ignore_ascii_case(b"grpc-") {
        return true;
    }
    RESERVED_EXACT.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// [`is_reserved`] for a header name, which is lowercase already (so no
/// case folding), and never a pseudo-header.
fn is_reserved_name(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("grpc-") || RESERVED_EXACT.contains(&name)
}

/// Whether a (lowercase) key names binary metadata, i.e. ends in `-bin`.
fn is_bin_key(key: &str) -> bool {
    key.len() >= BIN_SUFFIX.len()
        && key.as_bytes()[key.len() - BIN_SUFFIX.len()..]
            .eq_ignore_ascii_case(BIN_SUFFIX.as_bytes())
}

/// Whether every byte of an ASCII metadata value is printable ASCII.
fn is_valid_ascii_value(value: &[u8]) -> bool {
    value.iter().all(|&b| (0x20..=0x7e).contains(&b))
}

/// Checks and lowercases a key.
fn parse_key(key: &str) -> Result<HeaderName, MetadataError> {
    if key.is_empty() {
        return Err(MetadataError::InvalidKey(key.to_owned()));
    }
    let mut lower = Vec::with_capacity(key.len());
    for &b in key.as_bytes() {
        let b = b.to_ascii_lowercase();
        if !matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'_' | b'-' | b'.') {
            return Err(MetadataError::InvalidKey(key.to_owned()));
        }
        lower.push(b);
    }
    if is_reserved(key) {
        return Err(MetadataError::ReservedKey(key.to_ascii_lowercase()));
    }
    HeaderName::from_bytes(&lower).map_err(|_| MetadataError::InvalidKey(key.to_owned()))
}

fn parse_ascii_entry(key: &str, value: &str) -> Result<(HeaderName, HeaderValue), MetadataError> {
    let name = parse_key(key)?;
    if is_bin_key(name.as_str()) {
        return Err(MetadataError::AsciiKeyExpected(name.as_str().to_owned()));
    }
    if !is_valid_ascii_value(value.as_bytes()) {
        return Err(MetadataError::InvalidValue {
            key: name.as_str().to_owned(),
        });
    }
    let value = HeaderValue::from_str(value).map_err(|_| MetadataError::InvalidValue {
        key: name.as_str().to_owned(),
    })?;
    Ok((name, value))
}

fn parse_bin_entry(key: &str, value: &[u8]) -> Result<(HeaderName, HeaderValue), MetadataError> {
    let name = parse_key(key)?;
    if !is_bin_key(name.as_str()) {
        return Err(MetadataError::BinaryKeyExpected(name.as_str().to_owned()));
    }
    let encoded = BASE64.encode(value);
    let value = HeaderValue::from_maybe_shared(Bytes::from(encoded)).map_err(|_| {
        MetadataError::InvalidValue {
            key: name.as_str().to_owned(),
        }
    })?;
    Ok((name, value))
}

/// Decodes one binary header value, which may hold several comma-separated
/// base64 values (grpc-go joins repeated `-bin` headers with `,`).
fn decode_bin_value<'a>(
    key: &'a str,
    value: &'a HeaderValue,
) -> impl Iterator<Item = Result<Bytes, MetadataError>> + 'a {
    value.as_bytes().split(|&b| b == b',').map(move |part| {
        let part = part.trim_ascii();
        BASE64
            .decode(part)
            .map(Bytes::from)
            .map_err(|_| MetadataError::InvalidBase64 {
                key: key.to_owned(),
            })
    })
}

/// Custom metadata of a call (request headers, response headers or
/// trailers): ASCII values and binary `-bin` values.
///
/// A thin wrapper over an [`http::HeaderMap`] that holds only non-reserved
/// entries, binary values stored base64 encoded as they go on the wire. Keys
/// may have several values; [`len`](Self::len) counts values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataMap {
    headers: HeaderMap,
}

/// Why a metadata key or value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataError {
    /// The key is empty or has a character outside `0-9 a-z A-Z _ - .`.
    InvalidKey(String),
    /// The key is reserved by the protocol, see [`is_reserved`].
    ReservedKey(String),
    /// An ASCII value has a byte outside printable ASCII (`0x20..=0x7E`).
    InvalidValue {
        /// The key of the value.
        key: String,
    },
    /// A binary value was given for a key that does not end in `-bin`.
    BinaryKeyExpected(String),
    /// An ASCII value was given for a key that ends in `-bin`.
    AsciiKeyExpected(String),
    /// A received binary value is not valid base64.
    InvalidBase64 {
        /// The key of the value.
        key: String,
    },
}

impl MetadataError {
    /// The key the error is about.
    pub fn key(&self) -> &str {
        match self {
            MetadataError::InvalidKey(k)
            | MetadataError::ReservedKey(k)
            | MetadataError::BinaryKeyExpected(k)
            | MetadataError::AsciiKeyExpected(k)
            | MetadataError::InvalidValue { key: k }
            | MetadataError::InvalidBase64 { key: k } => k,
        }
    }
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::InvalidKey(k) => write!(f, "invalid metadata key {k:?}"),
            MetadataError::ReservedKey(k) => write!(f, "metadata key {k:?} is reserved"),
            MetadataError::InvalidValue { key } => write!(
                f,
                "invalid value for metadata key {key:?}: only printable ASCII is allowed"
            ),
            MetadataError::BinaryKeyExpected(k) => write!(
                f,
                "binary metadata needs a key ending in \"-bin\", got {k:?}"
            ),
            MetadataError::AsciiKeyExpected(k) => write!(
                f,
                "metadata key {k:?} ends in \"-bin\" and takes binary values"
            ),
            MetadataError::InvalidBase64 { key } => {
                write!(f, "value of metadata key {key:?} is not valid base64")
            }
        }
    }
}

impl std::error::Error for MetadataError {}

/// One metadata value, as [`MetadataMap::iter`] yields it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataValue<'a> {
    /// The value of an ASCII key.
    Ascii(&'a str),
    /// The decoded value of a binary (`-bin`) key.
    Binary(Bytes),
}

impl MetadataMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        MetadataMap {
            headers: HeaderMap::with_capacity(n),
        }
    }

    /// Takes the non-reserved entries of an HTTP header map (received headers
    /// or trailers). ASCII entries whose values are not printable ASCII are
    /// dropped (logged at debug level); binary entries are kept as they are
    /// and decoded on access.
    pub fn from_headers(headers: HeaderMap) -> Self {
        Self::from_headers_taking(headers, |_, _| {})
    }

    /// [`from_headers`](Self::from_headers), handing `reserved` the first
    /// value of each reserved header it drops: the server reads the gRPC
    /// headers of a request from there instead of looking each one up
    /// (`benches/README.md`, finding 16).
    pub(crate) fn from_headers_taking(
        mut headers: HeaderMap,
        mut reserved: impl FnMut(&HeaderName, HeaderValue),
    ) -> Self {
        // A received map usually holds a few reserved entries (content-type,
        // te, grpc-*) and nothing invalid: removing those in place costs
        // less than building a new map. Anything else (an invalid value, or
        // many reserved keys) takes the general path.
        const FEW: usize = 8;
        let mut names: [Option<HeaderName>; FEW] = Default::default();
        let mut found = 0;
        let mut in_place = true;
        for (name, value) in headers.iter() {
            if is_reserved_name(name) {
                if names[..found].iter().flatten().any(|seen| seen == name) {
                    continue;
                }
                if found == FEW {
                    in_place = false;
                    break;
                }
                names[found] = Some(name.clone());
                found += 1;
            } else if !is_bin_key(name.as_str()) && !is_valid_ascii_value(value.as_bytes()) {
                in_place = false;
                break;
            }
        }
        if !in_place {
            return Self::rebuilt(headers, reserved);
        }
        for name in names.iter().flatten() {
            if let Some(value) = headers.remove(name) {
                reserved(name, value);
            }
        }
        MetadataMap { headers }
    }

    /// [`from_headers_taking`](Self::from_headers_taking) by copying the
    /// entries to keep.
    fn rebuilt(headers: HeaderMap, mut reserved: impl FnMut(&HeaderName, HeaderValue)) -> Self {
        let mut map = MetadataMap::with_capacity(headers.len());
        let mut current: Option<HeaderName> = None;
        for (name, value) in headers {
            // `None`: another value of the name before.
            let first = name.is_some();
            if let Some(name) = name {
                current = Some(name);
            }
            let Some(name) = &current else { continue };
            if is_reserved_name(name) {
                if first {
                    reserved(name, value);
                }
            } else {
                map.push_received(name, value);
            }
        }
        map
    }

    /// Like [`from_headers`](Self::from_headers), copying the entries out of a
    /// borrowed header map.
    pub fn from_headers_ref(headers: &HeaderMap) -> Self {
        let mut map = MetadataMap::new();
        for (name, value) in headers {
            map.push_received(name, value.clone());
        }
        map
    }

    fn push_received(&mut self, name: &HeaderName, value: HeaderValue) {
        let key = name.as_str();
        if is_reserved_name(name) {
            return;
        }
        if !is_bin_key(key) && !is_valid_ascii_value(value.as_bytes()) {
            tracing::debug!(key, "dropping metadata value that is not printable ASCII");
            return;
        }
        self.headers.append(name.clone(), value);
    }

    /// Appends every entry to `headers` (to send them).
    pub fn append_to(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
    }

    /// The entries as an HTTP header map (binary values base64 encoded).
    pub fn into_headers(self) -> HeaderMap {
        self.headers
    }

    /// The entries as an HTTP header map (binary values base64 encoded).
    pub fn as_headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Sets an ASCII value, replacing every value the key had.
    ///
    /// The key is lowercased; it must not end in `-bin` nor be reserved. The
    /// value must be printable ASCII (`0x20..=0x7E`).
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        let (name, value) = parse_ascii_entry(key, value)?;
        self.headers.insert(name, value);
        Ok(())
    }

    /// Adds an ASCII value, keeping the values the key had. Same rules as
    /// [`insert`](Self::insert).
    pub fn append(&mut self, key: &str, value: &str) -> Result<(), MetadataError> {
        let (name, value) = parse_ascii_entry(key, value)?;
        self.headers.append(name, value);
        Ok(())
    }

    /// Sets a binary value, replacing every value the key had. The key must
    /// end in `-bin`; the value is stored base64 encoded without padding.
    pub fn insert_bin(&mut self, key: &str, value: impl AsRef<[u8]>) -> Result<(), MetadataError> {
        let (name, value) = parse_bin_entry(key, value.as_ref())?;
        self.headers.insert(name, value);
        Ok(())
    }

    /// Adds a binary value, keeping the values the key had. Same rules as
    /// [`insert_bin`](Self::insert_bin).
    pub fn append_bin(&mut self, key: &str, value: impl AsRef<[u8]>) -> Result<(), MetadataError> {
        let (name, value) = parse_bin_entry(key, value.as_ref())?;
        self.headers.append(name, value);
        Ok(())
    }

    /// The first value of an ASCII key; `None` when absent or for `-bin` keys.
    pub fn get(&self, key: &str) -> Option<&str> {
        if is_bin_key(key) {
            return None;
        }
        self.headers.get(key).and_then(|v| v.to_str().ok())
    }

    /// Every value of an ASCII key, in order; nothing for `-bin` keys.
    pub fn get_all(&self, key: &str) -> impl Iterator<Item = &str> {
        let bin = is_bin_key(key);
        self.headers
            .get_all(key)
            .iter()
            .filter(move |_| !bin)
            .filter_map(|v| v.to_str().ok())
    }

    /// The first value of a binary key, decoded (padded and unpadded base64
    /// are both accepted); `None` when absent or for ASCII keys.
    pub fn get_bin(&self, key: &str) -> Option<Result<Bytes, MetadataError>> {
        self.get_all_bin(key).next()
    }

    /// Every value of a binary key, decoded, in order. A header value holding
    /// several comma-separated base64 values yields each of them.
    pub fn get_all_bin<'a>(
        &'a self,
        key: &'a str,
    ) -> impl Iterator<Item = Result<Bytes, MetadataError>> + 'a {
        let bin = is_bin_key(key);
        self.headers
            .get_all(key)
            .iter()
            .filter(move |_| bin)
            .flat_map(move |v| decode_bin_value(key, v))
    }

    /// Whether the key has at least one value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.headers.contains_key(key)
    }

    /// Removes every value of a key; returns whether there was any.
    pub fn remove(&mut self, key: &str) -> bool {
        self.headers.remove(key).is_some()
    }

    /// The number of values (a key with two values counts twice).
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The number of distinct keys.
    pub fn keys_len(&self) -> usize {
        self.headers.keys_len()
    }

    /// Every entry, binary values decoded (one item per comma-separated
    /// part). Binary values that fail to decode are skipped.
    pub fn iter(&self) -> impl Iterator<Item = (&str, MetadataValue<'_>)> {
        self.headers.iter().flat_map(|(name, value)| {
            let key = name.as_str();
            let bin = is_bin_key(key);
            let ascii = if bin {
                None
            } else {
                value.to_str().ok().map(|s| (key, MetadataValue::Ascii(s)))
            };
            let binary = value
                .as_bytes()
                .split(|&b| b == b',')
                .filter(move |_| bin)
                .filter_map(|part| BASE64.decode(part.trim_ascii()).ok())
                .map(move |b| (key, MetadataValue::Binary(Bytes::from(b))));
            ascii.into_iter().chain(binary)
        })
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.headers.clear();
    }

    /// Appends every entry of `other`, keeping the values already present
    /// (keys in both end up with the values of both).
    pub fn extend(&mut self, other: MetadataMap) {
        let mut current: Option<HeaderName> = None;
        for (name, value) in other.headers {
            if let Some(name) = name {
                current = Some(name);
            }
            if let Some(name) = &current {
                self.headers.append(name.clone(), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_insert_get() {
        let mut m = MetadataMap::new();
        assert!(m.is_empty());
        m.insert("x-user", "alice").unwrap();
        assert_eq!(m.get("x-user"), Some("alice"));
        m.insert("x-user", "bob").unwrap();
        assert_eq!(m.get_all("x-user").collect::<Vec<_>>(), ["bob"]);
        m.append("x-user", "carol").unwrap();
        assert_eq!(m.get_all("x-user").collect::<Vec<_>>(), ["bob", "carol"]);
        assert_eq!(m.len(), 2);
        assert_eq!(m.keys_len(), 1);
        assert!(m.contains_key("x-user"));
        assert!(m.remove("x-user"));
        assert!(!m.remove("x-user"));
        assert!(m.is_empty());
        assert_eq!(m.get("missing"), None);
    }

    #[test]
    fn uppercase_keys_are_lowercased() {
        let mut m = MetadataMap::new();
        m.insert("X-Request-ID", "1").unwrap();
        assert_eq!(m.get("x-request-id"), Some("1"));
        assert_eq!(m.get("X-REQUEST-ID"), Some("1"));
        assert_eq!(
            m.as_headers().keys().next().unwrap().as_str(),
            "x-request-id"
        );
    }

    #[test]
    fn key_validation() {
        let mut m = MetadataMap::new();
        assert_eq!(
            m.insert("", "v"),
            Err(MetadataError::InvalidKey(String::new()))
        );
        assert!(matches!(
            m.insert("a b", "v"),
            Err(MetadataError::InvalidKey(_))
        ));
        assert!(matches!(
            m.insert("a:b", "v"),
            Err(MetadataError::InvalidKey(_))
        ));
        assert!(matches!(
            m.insert("é", "v"),
            Err(MetadataError::InvalidKey(_))
        ));
        assert!(matches!(
            m.insert(":path", "v"),
            Err(MetadataError::InvalidKey(_))
        ));
        m.insert("a_b-c.d09", "v").unwrap();
        for reserved in [
            "grpc-status",
            "grpc-anything",
            "Grpc-Timeout",
            "content-type",
            "te",
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "upgrade",
            "host",
            "content-length",
        ] {
            let err = m.insert(reserved, "v").unwrap_err();
            assert!(
                matches!(err, MetadataError::ReservedKey(_)),
                "{reserved}: {err}"
            );
            assert_eq!(err.key(), reserved.to_ascii_lowercase());
        }
        assert!(matches!(
            m.insert_bin("grpc-status-details-bin", b"x"),
            Err(MetadataError::ReservedKey(_))
        ));
        m.insert("user-agent", "me").unwrap();
    }

    #[test]
    fn value_validation() {
        let mut m = MetadataMap::new();
        for bad in ["a\nb", "tab\there", "nul\0", "del\x7f", "é"] {
            assert_eq!(
                m.insert("k", bad),
                Err(MetadataError::InvalidValue { key: "k".into() }),
                "{bad:?}"
            );
        }
        m.insert("k", "").unwrap();
        m.insert("k", " all printable ~!@#$%^&*() ").unwrap();
        assert_eq!(m.get("k"), Some(" all printable ~!@#$%^&*() "));
    }

    #[test]
    fn bin_and_ascii_keys_are_distinct() {
        let mut m = MetadataMap::new();
        assert_eq!(
            m.insert("trace-bin", "x"),
            Err(MetadataError::AsciiKeyExpected("trace-bin".into()))
        );
        assert_eq!(
            m.insert_bin("trace", b"x"),
            Err(MetadataError::BinaryKeyExpected("trace".into()))
        );
        m.insert_bin("trace-bin", b"x").unwrap();
        m.insert("trace", "y").unwrap();
        assert_eq!(m.get("trace-bin"), None);
        assert_eq!(m.get_all("trace-bin").count(), 0);
        assert!(m.get_bin("trace").is_none());
        assert_eq!(m.get_all_bin("trace").count(), 0);
    }

    #[test]
    fn binary_round_trip() {
        let mut m = MetadataMap::new();
        let value: Vec<u8> = (0..=255u8).collect();
        m.insert_bin("data-bin", &value).unwrap();
        assert_eq!(m.get_bin("data-bin").unwrap().unwrap(), value);
        // Stored without padding.
        let raw = m.as_headers().get("data-bin").unwrap().to_str().unwrap();
        assert!(!raw.ends_with('='));
        m.append_bin("data-bin", b"\x00").unwrap();
        m.append_bin("Data-Bin", b"").unwrap();
        let all: Vec<_> = m.get_all_bin("data-bin").map(Result::unwrap).collect();
        assert_eq!(
            all,
            [Bytes::from(value), Bytes::from_static(b"\0"), Bytes::new()]
        );
        m.insert_bin("data-bin", b"new").unwrap();
        assert_eq!(m.get_all_bin("data-bin").count(), 1);
    }

    fn received(entries: &[(&'static str, &'static [u8])]) -> MetadataMap {
        let mut h = HeaderMap::new();
        for (k, v) in entries {
            h.append(*k, HeaderValue::from_bytes(v).unwrap());
        }
        MetadataMap::from_headers(h)
    }

    #[test]
    fn reserved_entries_go_whichever_way_the_map_is_filtered() {
        // Valid entries only: filtered in place.
        let m = received(&[
            ("content-type", b"application/grpc"),
            ("te", b"trailers"),
            ("grpc-timeout", b"1S"),
            ("grpc-accept-encoding", b"gzip"),
            ("grpc-accept-encoding", b"identity"),
            ("user-agent", b"agent/1"),
            ("x-ok", b"one"),
            ("x-ok", b"two"),
            ("x-data-bin", b"/w"),
        ]);
        let mut keys: Vec<_> = m.as_headers().keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["user-agent", "x-data-bin", "x-ok"]);
        assert_eq!(m.get_all("x-ok").collect::<Vec<_>>(), ["one", "two"]);
        assert_eq!(m.len(), 4);
        // More reserved keys than the in-place path takes: the same result.
        let mut entries: Vec<(&'static str, &'static [u8])> = vec![
            ("grpc-a", b"1"),
            ("grpc-b", b"1"),
            ("grpc-c", b"1"),
            ("grpc-d", b"1"),
            ("grpc-e", b"1"),
            ("grpc-f", b"1"),
            ("grpc-g", b"1"),
            ("grpc-h", b"1"),
            ("grpc-i", b"1"),
            ("content-length", b"5"),
        ];
        entries.extend([("x-ok", &b"one"[..]), ("x-ok", &b"two"[..])]);
        let m = received(&entries);
        assert_eq!(m.len(), 2);
        assert_eq!(m.get_all("x-ok").collect::<Vec<_>>(), ["one", "two"]);
    }

    #[test]
    fn the_first_value_of_each_reserved_header_is_handed_over_either_way() {
        // In place (valid entries only), then rebuilt (an invalid value).
        for invalid in [None, Some(&b"caf\xc3\xa9"[..])] {
            let mut h = HeaderMap::new();
            h.append("content-type", HeaderValue::from_static("application/grpc"));
            h.append("grpc-timeout", HeaderValue::from_static("1S"));
            h.append("grpc-timeout", HeaderValue::from_static("2S"));
            h.append("te", HeaderValue::from_static("trailers"));
            h.append("x-ok", HeaderValue::from_static("one"));
            if let Some(bad) = invalid {
                h.append("x-bad", HeaderValue::from_bytes(bad).unwrap());
            }
            let mut taken = Vec::new();
            let m = MetadataMap::from_headers_taking(h, |name, value| {
                taken.push((name.as_str().to_owned(), value));
            });
            taken.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(
                taken,
                [
                    ("content-type".to_owned(), "application/grpc"),
                    ("grpc-timeout".to_owned(), "1S"),
                    ("te".to_owned(), "trailers"),
                ]
                .map(|(name, value)| (name, HeaderValue::from_static(value))),
                "invalid value: {invalid:?}"
            );
            assert_eq!(m.len(), 1);
            assert_eq!(m.get("x-ok"), Some("one"));
        }
    }

    #[test]
    fn padded_and_unpadded_base64_accepted() {
        let m = received(&[
            ("a-bin", b"AQ=="),
            ("b-bin", b"AQ"),
            ("c-bin", b"AQI="),
            ("d-bin", b"AQI"),
            ("e-bin", b"not base64!"),
        ]);
        assert_eq!(m.get_bin("a-bin").unwrap().unwrap(), &[1][..]);
        assert_eq!(m.get_bin("b-bin").unwrap().unwrap(), &[1][..]);
        assert_eq!(m.get_bin("c-bin").unwrap().unwrap(), &[1, 2][..]);
        assert_eq!(m.get_bin("d-bin").unwrap().unwrap(), &[1, 2][..]);
        assert_eq!(
            m.get_bin("e-bin").unwrap(),
            Err(MetadataError::InvalidBase64 {
                key: "e-bin".into()
            })
        );
    }

    #[test]
    fn comma_joined_binary_values_are_split() {
        let m = received(&[("x-bin", b"AQ==,AQI, AwQ"), ("x-bin", b"BQ")]);
        let all: Vec<_> = m.get_all_bin("x-bin").map(Result::unwrap).collect();
        assert_eq!(
            all,
            [
                Bytes::from_static(&[1]),
                Bytes::from_static(&[1, 2]),
                Bytes::from_static(&[3, 4]),
                Bytes::from_static(&[5]),
            ]
        );
        assert_eq!(m.get_bin("x-bin").unwrap().unwrap(), &[1][..]);
    }

    #[test]
    fn from_headers_filters_reserved_and_invalid() {
        let m = received(&[
            ("grpc-status", b"0"),
            ("grpc-message", b"hi"),
            ("grpc-status-details-bin", b"AQ"),
            ("content-type", b"application/grpc"),
            ("te", b"trailers"),
            ("connection", b"close"),
            ("host", b"example"),
            ("user-agent", b"agent/1"),
            ("x-ok", b"fine"),
            ("x-ok", b"twice"),
            ("x-bad", b"caf\xc3\xa9"),
            ("x-tab", b"a\tb"),
            ("x-data-bin", b"/w"),
        ]);
        assert_eq!(m.get("user-agent"), Some("agent/1"));
        assert_eq!(m.get_all("x-ok").collect::<Vec<_>>(), ["fine", "twice"]);
        assert!(!m.contains_key("x-bad"));
        assert!(!m.contains_key("x-tab"));
        assert_eq!(m.get_bin("x-data-bin").unwrap().unwrap(), &[0xff][..]);
        let mut keys: Vec<_> = m.as_headers().keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["user-agent", "x-data-bin", "x-ok"]);
        assert_eq!(m.len(), 4);

        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static("0"));
        h.append("x-ok", HeaderValue::from_static("1"));
        assert_eq!(MetadataMap::from_headers_ref(&h).len(), 1);
    }

    #[test]
    fn iter_decodes_binary_and_skips_bad() {
        let mut m = received(&[("bad-bin", b"!!"), ("two-bin", b"AQ,Ag")]);
        m.insert("a", "1").unwrap();
        let mut items: Vec<_> = m.iter().collect();
        items.sort_by_key(|(k, _)| *k);
        assert_eq!(
            items,
            [
                ("a", MetadataValue::Ascii("1")),
                ("two-bin", MetadataValue::Binary(Bytes::from_static(&[1]))),
                ("two-bin", MetadataValue::Binary(Bytes::from_static(&[2]))),
            ]
        );
    }

    #[test]
    fn append_to_extend_clear() {
        let mut a = MetadataMap::new();
        a.insert("k", "1").unwrap();
        let mut b = MetadataMap::new();
        b.insert("k", "2").unwrap();
        b.append("k", "3").unwrap();
        b.insert_bin("d-bin", [9u8]).unwrap();
        a.extend(b);
        assert_eq!(a.get_all("k").collect::<Vec<_>>(), ["1", "2", "3"]);
        assert_eq!(a.get_bin("d-bin").unwrap().unwrap(), &[9][..]);

        let mut h = HeaderMap::new();
        h.insert("k", HeaderValue::from_static("0"));
        a.append_to(&mut h);
        assert_eq!(h.get_all("k").iter().count(), 4);
        assert_eq!(h.get("d-bin").unwrap(), "CQ");
        assert_eq!(a.clone().into_headers().len(), 4);
        a.clear();
        assert!(a.is_empty());
    }

    #[test]
    fn invalid_lookup_keys_do_not_panic() {
        let m = MetadataMap::new();
        assert_eq!(m.get("bad key\n"), None);
        assert_eq!(m.get_all("bad key").count(), 0);
        assert!(m.get_bin("bad key-bin").is_none());
        assert!(!m.contains_key(""));
        let mut m = m;
        assert!(!m.remove("bad key"));
    }

    #[test]
    fn is_reserved_cases() {
        assert!(is_reserved(":authority"));
        assert!(is_reserved("grpc-"));
        assert!(is_reserved("GRPC-X"));
        assert!(is_reserved("Content-Type"));
        assert!(!is_reserved("grpc"));
        assert!(!is_reserved("user-agent"));
        assert!(!is_reserved("x-grpc-foo"));
        assert!(!is_reserved("tea"));
    }
}
