//! Unit tests of `ByteCache`'s key packing: keys of every length around the inline limit, with
//! every byte value in play, pack, unpack and are found as themselves.

use super::*;
use crate::equivalent::Equivalent;

/// Keys of every length around the inline limit, with every byte value in play.
fn keys() -> Vec<String> {
    let mut keys = Vec::new();
    for len in 0..=INLINE_KEY + 3 {
        // `char`s below 128 are one byte each, so `len` chars are `len` bytes.
        keys.push(
            (0..len)
                .map(|i| char::from((i * 37 + len) as u8 % 128))
                .collect(),
        );
        keys.push("\0".repeat(len));
    }
    keys
}

#[test]
fn a_packed_key_unpacks_to_itself_and_only_short_keys_pack() {
    for key in keys() {
        for namespace in [METADATA, BODY] {
            let stored = ByteKey::new(namespace, &key);
            assert_eq!(
                matches!(stored, ByteKey::Inline(..)),
                key.len() <= INLINE_KEY
            );
            let mut buf = [0u8; 40];
            assert_eq!(stored.parts(&mut buf), (namespace, key.as_bytes()));
        }
    }
}

#[test]
fn a_key_is_40_bytes_and_an_entry_80_as_the_overhead_counts() {
    assert_eq!(std::mem::size_of::<ByteKey>(), 40);
    assert_eq!(std::mem::size_of::<crate::raw::Entry<ByteKey, Bytes>>(), 80);
}

#[test]
fn distinct_keys_pack_differently_and_lookups_find_exactly_their_own() {
    let hasher = ahash::RandomState::new();
    let keys = keys();
    for a in &keys {
        for namespace in [METADATA, BODY] {
            let stored = ByteKey::new(namespace, a);
            let lookup = KeyRef::new(namespace, a);
            assert_eq!(hasher.hash_one(&stored), hasher.hash_one(&lookup), "{a:?}");
            for b in &keys {
                for other in [METADATA, BODY] {
                    let same = a == b && namespace == other;
                    let probe = KeyRef::new(other, b);
                    assert_eq!(probe.equivalent(&stored), same, "{a:?} {b:?}");
                    assert_eq!(ByteKey::new(other, b) == stored, same, "{a:?} {b:?}");
                }
            }
        }
    }
}
