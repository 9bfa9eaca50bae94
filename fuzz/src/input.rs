//! A tiny byte format for structured fuzz inputs, readable and writable.
//!
//! The fuzzer's bytes are read with [`Input`]: every read succeeds (past the
//! end it yields zeros and empty slices), so any byte string is a valid input
//! and the mutator never wastes runs on parse failures. Seeds are written
//! with [`Output`], the exact inverse, so that they describe meaningful
//! scenarios (a valid call, a compressed response, ...).

/// Reads fuzz bytes.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// A byte string with a one-byte length.
    pub fn bytes8(&mut self) -> &'a [u8] {
        let n = self.u8() as usize;
        self.take(n)
    }

    /// A byte string with a two-byte length.
    pub fn bytes16(&mut self) -> &'a [u8] {
        let n = self.u16() as usize;
        self.take(n)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.data;
        self.data = &[];
        rest
    }
}

/// Writes inputs in the format [`Input`] reads (for seeds).
#[derive(Debug, Default, Clone)]
pub struct Output {
    pub data: Vec<u8>,
}

impl Output {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn u8(&mut self, b: u8) -> &mut Self {
        self.data.push(b);
        self
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.u8(b as u8)
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.data.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.data.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.data.extend_from_slice(b);
        self
    }

    pub fn bytes8(&mut self, b: &[u8]) -> &mut Self {
        let n = u8::try_from(b.len()).expect("bytes8: at most 255 bytes");
        self.u8(n).raw(b)
    }

    pub fn bytes16(&mut self, b: &[u8]) -> &mut Self {
        let n = u16::try_from(b.len()).expect("bytes16: at most 65535 bytes");
        self.u16(n).raw(b)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_the_inverse_of_input() {
        let data = Output::new()
            .u8(7)
            .bool(true)
            .u16(0x1234)
            .u32(0xdead_beef)
            .bytes8(b"abc")
            .bytes16(b"defg")
            .raw(b"tail")
            .finish();
        let mut input = Input::new(&data);
        assert_eq!(input.u8(), 7);
        assert!(input.bool());
        assert_eq!(input.u16(), 0x1234);
        assert_eq!(input.u32(), 0xdead_beef);
        assert_eq!(input.bytes8(), b"abc");
        assert_eq!(input.bytes16(), b"defg");
        assert_eq!(input.rest(), b"tail");
        assert!(input.is_empty());
        assert_eq!(input.u32(), 0);
        assert_eq!(input.bytes16(), b"");
    }
}
