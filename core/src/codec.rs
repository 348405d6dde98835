//! A bounds-checked reader for decoding untrusted bytes.
//!
//! Every decoder in the core reads through [`Reader`], so a short or
//! oversized input is an error, never a panic or an out-of-bounds slice.

/// Why bytes could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The input ended before a field was complete.
    #[error("truncated: needed {needed} more bytes, {left} left")]
    Truncated {
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        left: usize,
    },
    /// Bytes were left after the last field.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Reads big-endian fields from a byte slice, front to back.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        if n > self.buf.len() {
            return Err(ReadError::Truncated {
                needed: n,
                left: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        Ok(self.take(N)?.try_into().expect("took exactly N bytes"))
    }

    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.array::<1>()?[0])
    }
    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, ReadError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, ReadError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, ReadError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Fails if any bytes are left.
    pub fn expect_empty(&self) -> Result<(), ReadError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(ReadError::Trailing(n)),
        }
    }
}
