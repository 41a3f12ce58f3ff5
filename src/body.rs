//! A stream over a stored body that shares the body's memory instead of copying it.
//!
//! Bodies are stored as [`Bytes`], which is reference-counted: the reader holds one reference, so
//! it reads the body in place, and it keeps reading the same bytes after the cache replaces or
//! deletes the body (the cache drops its reference; the memory lives until the reader's goes).

use std::io::{self, BufRead, Read};

use bytes::{Buf, Bytes};

/// A [`Read`] over a body returned by [`get_body`](crate::SeparateBodyCache::get_body).
///
/// ```
/// use std::io::Read;
/// use bytes::Bytes;
/// use epochcache::BodyReader;
///
/// let mut reader = BodyReader::new(Bytes::from_static(b"abc"));
/// let mut first = [0u8; 2];
/// reader.read_exact(&mut first).unwrap();
/// assert_eq!(&first, b"ab");
/// assert_eq!(reader.remaining(), 1);
/// ```
#[derive(Clone)]
pub struct BodyReader {
    rest: Bytes,
}

/// How much is left, not the bytes themselves: a body may be hundreds of megabytes, and a
/// reader printed in a log line should not print it.
impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("remaining", &self.rest.len())
            .finish_non_exhaustive()
    }
}

impl BodyReader {
    /// A reader over `body`, from its first byte.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::BodyReader;
    /// assert_eq!(BodyReader::new(Bytes::from_static(b"xy")).remaining(), 2);
    /// ```
    pub fn new(body: Bytes) -> Self {
        BodyReader { rest: body }
    }

    /// How many bytes are left to read.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::BodyReader;
    /// assert_eq!(BodyReader::new(Bytes::new()).remaining(), 0);
    /// ```
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The bytes not yet read, without copying them.
    ///
    /// ```
    /// # use bytes::Bytes;
    /// # use epochcache::BodyReader;
    /// let body = BodyReader::new(Bytes::from_static(b"all")).into_bytes();
    /// assert_eq!(&body[..], b"all");
    /// ```
    pub fn into_bytes(self) -> Bytes {
        self.rest
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.rest.len());
        self.rest.copy_to_slice(&mut buf[..n]);
        Ok(n)
    }
}

impl BufRead for BodyReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(&self.rest)
    }

    fn consume(&mut self, amt: usize) {
        self.rest.advance(amt.min(self.rest.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_pieces_and_shares_memory() {
        let body = Bytes::from(vec![7u8; 1000]);
        let mut reader = BodyReader::new(body.clone());
        assert_eq!(reader.fill_buf().unwrap().as_ptr(), body.as_ptr());
        let mut buf = [0u8; 300];
        let mut total = 0;
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|&b| b == 7));
            total += n;
        }
        assert_eq!(total, 1000);
        reader.consume(5);
        assert_eq!(reader.remaining(), 0);
    }

    #[test]
    fn debug_shows_what_is_left_not_the_bytes() {
        let mut reader = BodyReader::new(Bytes::from(vec![b'x'; 10_000]));
        reader.consume(1_000);
        let shown = format!("{reader:?}");
        assert_eq!(shown, "BodyReader { remaining: 9000, .. }");
    }
}
