//! `ByteCache`'s stored keys: a namespace (metadata or body) and the key's bytes, packed into
//! the entry when short, and the borrowed form that lookups hash and compare as the stored one.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU64;

use crate::equivalent::Equivalent;

pub(super) const METADATA: u8 = 0;
pub(super) const BODY: u8 = 1;

/// Keys up to this many bytes are stored inside the entry, not in an allocation of their own.
pub(super) const INLINE_KEY: usize = 39;
/// An inline key's words: the header byte (namespace and length), the key, zero padding.
type Packed = [u64; 5];

/// A stored key.
///
/// A short key (up to [`INLINE_KEY`] bytes, which covers most service keys) is packed into five
/// words inside the entry, so a hit reads no memory beyond the entry and compares five words with
/// no call to `memcmp`. A longer key is one allocation holding the namespace byte and the key.
///
/// The first word is never 0 (its header byte is at least 1), so `Heap` lives in that niche and
/// the key is 40 bytes with no separate discriminant. The entry is then 80 bytes, which matters
/// more than its size suggests: allocator blocks are 16-byte aligned, and an 80-byte entry never
/// spans more than two cache lines, where an 88- or 96-byte one spans three when it starts 48
/// bytes into a line (measured in the benchmark's process: about half of 88-byte entries, a
/// quarter of 96-byte ones), and a hit reads all of it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum ByteKey {
    Inline(NonZeroU64, [u64; 4]),
    Heap(Box<[u8]>),
}

/// `key` packed as an inline key, if it fits.
///
/// Word `i` holds bytes `8i..8i + 8` of `[header, key..., 0...]`, so it is the key's bytes
/// `8i - 1..8i + 7` (word 0 has the header byte below them). The header is
/// `(len << 1 | namespace) + 1`: at most 80, and never 0. Each word is computed whole in a
/// register from loads of the key itself and stored once, with the five indices known
/// at compile time: a word assembled by read-modify-writes on the stack and then copied out with
/// wider loads stalled store forwarding for a fifth of a hit's time.
#[inline(always)]
fn pack(namespace: u8, key: &str) -> Option<Packed> {
    let bytes = key.as_bytes();
    if bytes.len() > INLINE_KEY {
        return None;
    }
    debug_assert!(namespace <= BODY, "two namespaces, one bit");
    let header = ((bytes.len() as u64) << 1 | u64::from(namespace & 1)) + 1;
    Some([
        header | key_chunk(bytes, 0) << 8,
        key_chunk(bytes, 7),
        key_chunk(bytes, 15),
        key_chunk(bytes, 23),
        key_chunk(bytes, 31),
    ])
}

/// The key's bytes `from..from + 8` as a little-endian word, zero past the key's end.
///
/// For a key of eight bytes or more there is no branch on `from`: the eight bytes loaded start
/// at `from` or, near the end, at the key's last eight, and are shifted down past those before
/// `from` (a shift of 64 or more, past the end, gives 0). Service keys of mixed lengths made the
/// three-way branch this replaces mispredict.
#[inline(always)]
fn key_chunk(bytes: &[u8], from: usize) -> u64 {
    let len = bytes.len();
    if len >= 8 {
        let start = from.min(len - 8);
        let shift = u32::try_from(8 * (from - start)).unwrap_or(u32::MAX);
        load_word(&bytes[start..start + 8])
            .checked_shr(shift)
            .unwrap_or(0)
    } else {
        bytes
            .get(from..)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .fold(0, |w, (i, &b)| w | u64::from(b) << (8 * i))
    }
}

/// Eight bytes as a little-endian word.
#[inline(always)]
fn load_word(eight: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&eight[..8]);
    u64::from_le_bytes(word)
}

/// Whether a stored inline key equals packed words: five compares folded into one branch, no
/// `memcmp` call.
#[inline]
fn packed_eq(first: NonZeroU64, rest: &[u64; 4], packed: &Packed) -> bool {
    rest.iter()
        .zip(&packed[1..])
        .fold(first.get() ^ packed[0], |diff, (x, y)| diff | (x ^ y))
        == 0
}

impl ByteKey {
    pub(super) fn new(namespace: u8, key: &str) -> Self {
        match pack(namespace, key).map(split) {
            Some((first, rest)) => ByteKey::Inline(first, rest),
            None => {
                let mut bytes = Vec::with_capacity(key.len() + 1);
                bytes.push(namespace);
                bytes.extend_from_slice(key.as_bytes());
                ByteKey::Heap(bytes.into_boxed_slice())
            }
        }
    }

    /// The namespace byte and the key's bytes (into `buf` for an inline key).
    pub(super) fn parts<'a>(&'a self, buf: &'a mut [u8; 40]) -> (u8, &'a [u8]) {
        match self {
            ByteKey::Inline(first, rest) => {
                buf[..8].copy_from_slice(&first.get().to_le_bytes());
                for (i, w) in rest.iter().enumerate() {
                    buf[i * 8 + 8..i * 8 + 16].copy_from_slice(&w.to_le_bytes());
                }
                let header = buf[0] - 1;
                (header & 1, &buf[1..1 + usize::from(header >> 1)])
            }
            ByteKey::Heap(bytes) => (bytes[0], &bytes[1..]),
        }
    }

    /// The namespace byte: [`METADATA`] or [`BODY`].
    pub(super) fn namespace(&self) -> u8 {
        match self {
            // The header byte, the key's first, holds the namespace in its low bit, plus one.
            ByteKey::Inline(first, _) => (first.get() as u8 - 1) & 1,
            ByteKey::Heap(bytes) => bytes[0],
        }
    }

    /// The bytes the budget counts for this key.
    pub(super) fn weight(&self) -> usize {
        match self {
            ByteKey::Inline(..) => 0,
            ByteKey::Heap(bytes) => bytes.len(),
        }
    }
}

/// Packed words as an inline key's two fields. The first word is never 0 (its header byte is at
/// least 1); were it ever, storing the key as `Heap` instead would make it unfindable, since a
/// lookup of a short key compares packed words only, so that case stops loudly.
#[inline(always)]
fn split(words: Packed) -> (NonZeroU64, [u64; 4]) {
    let [first, rest @ ..] = words;
    let first = NonZeroU64::new(first).expect("an inline key's header byte is never 0");
    (first, rest)
}

impl Hash for ByteKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut buf = [0u8; 40];
        let (namespace, key) = self.parts(&mut buf);
        state.write_u8(namespace);
        state.write(key);
    }
}

impl fmt::Debug for ByteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 40];
        let (namespace, key) = self.parts(&mut buf);
        write!(f, "{namespace}:{}", String::from_utf8_lossy(key))
    }
}

/// A borrowed key for lookups, hashing exactly as the [`ByteKey`] it stands for.
pub(super) struct KeyRef<'a> {
    namespace: u8,
    key: &'a str,
    packed: Option<Packed>,
}

impl<'a> KeyRef<'a> {
    #[inline]
    pub(super) fn new(namespace: u8, key: &'a str) -> Self {
        KeyRef {
            namespace,
            key,
            packed: pack(namespace, key),
        }
    }
}

impl Hash for KeyRef<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u8(self.namespace);
        state.write(self.key.as_bytes());
    }
}

impl Equivalent<ByteKey> for KeyRef<'_> {
    #[inline]
    fn equivalent(&self, stored: &ByteKey) -> bool {
        match (stored, &self.packed) {
            (ByteKey::Inline(first, rest), Some(packed)) => packed_eq(*first, rest, packed),
            (ByteKey::Heap(bytes), None) => {
                bytes[0] == self.namespace && &bytes[1..] == self.key.as_bytes()
            }
            _ => false,
        }
    }
}

#[inline]
pub(super) fn meta_key(key: &str) -> KeyRef<'_> {
    KeyRef::new(METADATA, key)
}

pub(super) fn body_key(key: &str) -> KeyRef<'_> {
    KeyRef::new(BODY, key)
}
