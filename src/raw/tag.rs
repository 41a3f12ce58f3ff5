//! Control bytes: one byte a slot, eight to a word, compared eight at a time.
//!
//! Each group of the table has one `u64` of control bytes, one byte for each of its seven slots
//! (the eighth byte is unused and always [`Tag::EMPTY`]). A byte is [`Tag::EMPTY`] (0x00, never
//! used), [`Tag::TOMBSTONE`] (0x01, used then deleted) or a full tag: 0x80 with seven bits of the
//! key's hash. A reader compares the word against a tag with a few integer operations ("SWAR",
//! SIMD within a register) and looks at the entry of a slot only when its byte matches, so a probe
//! rejects almost every other key without touching its entry.
//!
//! ```text
//!  byte:   7      6      5      4      3      2      1      0
//!        [0x00] [tag6] [tag5] [tag4] [tag3] [tag2] [tag1] [tag0]    one AtomicU64 a group
//! ```

/// The control byte of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tag(pub(crate) u8);

impl Tag {
    /// A slot never used since the table was built: a probe for a key ends at a group that has one.
    pub(crate) const EMPTY: Tag = Tag(0x00);
    /// A slot whose entry was deleted: probes go on past it, inserts may reuse it.
    pub(crate) const TOMBSTONE: Tag = Tag(0x01);

    /// The full tag for a hash: bits 32..38, which neither the shard (the top bits) nor the
    /// group (the low bits) uses, so keys of one group differ in their tags.
    #[inline]
    pub(crate) fn full(hash: u64) -> Tag {
        Tag(0x80 | ((hash >> 32) as u8 & 0x7f))
    }

    /// Whether this byte holds an entry.
    #[inline]
    pub(crate) fn is_full(self) -> bool {
        self.0 & 0x80 != 0
    }
}

/// A hash as the cache uses it when its hasher is not the default ahash: every bit of the
/// hasher's output moved into the bits the home group, the tag and the shard take (a fold, a
/// multiply and a fold again: a bijection, so keys that collide here collided in full). Without
/// it a hasher that leaves its high bits or its low bits alike (an identity hash of small
/// integers, as `nohash-hasher` gives, or keys shifted left) put every key in one home group with
/// one tag, and the table's probes grew with its length: 16,000 sequential integers took 450 ms
/// to insert and read against 5 ms with ahash. The second fold brings the product's high bits
/// down, without which a hash whose two halves are equal folded to a low half of 0. ahash's
/// output is uniform already, so the cache skips this for it: spreading cost a hot `get` about
/// 1.5 ns (4%) in a scratch loop.
#[inline]
pub(crate) fn spread(hash: u64) -> u64 {
    let x = (hash ^ (hash >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^ (x >> 32)
}

/// The hash whose `spread` is `spread`: what a hasher returns to place a key in a chosen
/// shard, home group and tag, for tests and loom models that must know where each key lies.
/// Kept beside `spread` so that the two change together.
pub fn hash_spreading_to(spread: u64) -> u64 {
    // Each fold is its own inverse; then the multiplier's inverse modulo 2^64.
    let x = (spread ^ (spread >> 32)).wrapping_mul(0xF1DE_83E1_9937_733D);
    x ^ (x >> 32)
}

/// Slots in a group: seven control bytes and seven pointers make one 64-byte line.
pub(crate) const GROUP_SLOTS: usize = 7;

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
const SEVEN_BITS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
/// The high bit of each of the seven used bytes.
const SLOT_HIGH_BITS: u64 = HIGH_BITS & !(0xff << 56);

/// The high bit of every byte of `word` that is zero, and of no other byte (exact, no false
/// positives: the 7-bit add cannot carry across bytes).
#[inline]
fn zero_bytes(word: u64) -> u64 {
    !(((word & SEVEN_BITS) + SEVEN_BITS) | word | SEVEN_BITS)
}

/// The slots of a group whose byte is `tag`.
#[inline]
pub(crate) fn matching(word: u64, tag: Tag) -> SlotIter {
    SlotIter(zero_bytes(word ^ (LOW_BITS * u64::from(tag.0))) & SLOT_HIGH_BITS)
}

/// Whether a group has an [`Tag::EMPTY`] slot, which ends every probe.
#[inline]
pub(crate) fn has_empty(word: u64) -> bool {
    zero_bytes(word) & SLOT_HIGH_BITS != 0
}

/// The first slot of a group that is empty or a tombstone, if any.
#[inline]
pub(crate) fn first_vacant(word: u64) -> Option<usize> {
    // Full tags have their high bit set; empty and tombstone bytes do not.
    SlotIter(!word & SLOT_HIGH_BITS).next()
}

/// The byte of `slot` in `word`.
#[inline]
pub(crate) fn tag_at(word: u64, slot: usize) -> Tag {
    Tag((word >> (slot * 8)) as u8)
}

/// `word` with the byte of `slot` set to `tag`.
#[inline]
pub(crate) fn with_tag(word: u64, slot: usize, tag: Tag) -> u64 {
    let shift = slot * 8;
    (word & !(0xff << shift)) | (u64::from(tag.0) << shift)
}

/// The slots of a group whose tag is full (an entry is linked there, or being unlinked).
#[inline]
pub(crate) fn full_slots(word: u64) -> SlotIter {
    // Full tags have their high bit set; empty and tombstone bytes do not.
    SlotIter(word & SLOT_HIGH_BITS)
}

/// The slot indices whose bit is set in a mask of byte high bits, lowest first.
pub(crate) struct SlotIter(u64);

impl Iterator for SlotIter {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let slot = self.0.trailing_zeros() as usize / 8;
        self.0 &= self.0 - 1;
        Some(slot)
    }
}

#[cfg(all(test, not(epochcache_loom)))]
mod tests {
    use super::*;

    fn word(tags: [u8; 7]) -> u64 {
        tags.iter()
            .enumerate()
            .fold(0, |w, (i, &t)| with_tag(w, i, Tag(t)))
    }

    #[test]
    fn hash_spreading_to_undoes_spread() {
        let mut x = 0x0123_4567_89AB_CDEFu64;
        for _ in 0..10_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            assert_eq!(spread(hash_spreading_to(x)), x);
            assert_eq!(hash_spreading_to(spread(x)), x);
        }
    }

    #[test]
    fn matching_is_exact() {
        let w = word([0x85, 0x00, 0x85, 0x01, 0x86, 0x85, 0x04]);
        assert_eq!(matching(w, Tag(0x85)).collect::<Vec<_>>(), [0, 2, 5]);
        assert_eq!(matching(w, Tag(0x86)).collect::<Vec<_>>(), [4]);
        assert_eq!(matching(w, Tag(0x87)).count(), 0);
        assert_eq!(matching(w, Tag::TOMBSTONE).collect::<Vec<_>>(), [3]);
        assert_eq!(first_vacant(w), Some(1));
        assert!(has_empty(w));
    }

    #[test]
    fn the_unused_eighth_byte_never_counts() {
        let full = word([0x81; 7]);
        assert!(!has_empty(full));
        assert_eq!(first_vacant(full), None);
        assert_eq!(matching(full, Tag::EMPTY).count(), 0);
    }

    #[test]
    fn every_byte_value_matches_only_itself() {
        for t in 0..=255u8 {
            let w = word([
                t,
                t ^ 1,
                t ^ 0x80,
                t.wrapping_add(1),
                t.wrapping_sub(1),
                0,
                0xff,
            ]);
            let expected: Vec<usize> = (0..7).filter(|&i| tag_at(w, i) == Tag(t)).collect();
            assert_eq!(
                matching(w, Tag(t)).collect::<Vec<_>>(),
                expected,
                "tag {t:#x}"
            );
        }
    }

    #[test]
    fn full_tags_are_full() {
        for h in [0u64, u64::MAX, 0x1234_5678_9abc_def0] {
            assert!(Tag::full(h).is_full());
        }
        assert!(!Tag::EMPTY.is_full() && !Tag::TOMBSTONE.is_full());
    }
}
