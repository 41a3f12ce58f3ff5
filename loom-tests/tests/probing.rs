//! Loom models of probing across groups: a table of two groups whose first group is full, so
//! that a key lies past its home group and a removal there leaves a tombstone. The models of
//! `models.rs` use the smallest table, one group that is rebuilt before it fills, so none of
//! them removes from a full group, reuses a tombstone, or reads a key past its home group.

#![cfg(epochcache_loom)]

use epochcache::ShardedCache;
use epochcache_loom_tests::{flush, model, s};
use loom::sync::Arc;

/// Places every key in home group 0 with a tag of its own: the engine's spread hash of key `k`
/// is `k << 32` (low 32 bits 0: group 0 of any table; bits 32..38: the tag; top bits: shard 0).
/// The engine spreads a hash (a fold, a multiply by `0x9E37_79B9_7F4A_7C15`, a fold) before
/// using it, so `finish` undoes that spread, as this package's `ShardByParity` does.
#[derive(Default)]
struct HomeGroupZero(u64);

impl std::hash::Hasher for HomeGroupZero {
    fn finish(&self) -> u64 {
        epochcache::hash_spreading_to(self.0 << 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0 << 8 | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Cache = ShardedCache<u64, String, std::hash::BuildHasherDefault<HomeGroupZero>>;

/// Model 28: a reader of a key that lies past its full home group, racing a removal from that
/// group and an insert that reuses the slot the removal freed. Keys 0 to 6 fill group 0 of a
/// two-group table and key 7 lies in group 1. The writer removes key 0 (group 0 never had an
/// empty slot since it filled, so the slot becomes a tombstone, which probes pass over) and
/// inserts key 8, which takes that tombstone. The reader always finds key 7 (a removal that
/// marked the slot empty would end its probe in group 0) and key 6, in group 0 beside the
/// slot rewritten twice, and finds key 0 with its value or not at all (the slot may hold key 8
/// by the time the reader follows key 0's control byte there).
#[test]
fn a_key_past_its_full_home_group_read_across_a_tombstone_and_its_reuse() {
    model(|| {
        let cache: Arc<Cache> = Arc::new(
            ShardedCache::<u64, String>::builder()
                .shards(1)
                // Two groups of seven slots, room for 12 entries before a rebuild.
                .initial_capacity(7)
                .hasher(std::hash::BuildHasherDefault::<HomeGroupZero>::default())
                .build(),
        );
        for k in 0..8 {
            cache.insert(k, format!("v{k}")).unwrap();
        }

        let writer = {
            let cache = Arc::clone(&cache);
            loom::thread::spawn(move || {
                assert!(cache.remove(&0));
                cache.insert(8, s("v8")).unwrap();
                flush();
            })
        };

        for k in [7, 6] {
            assert_eq!(
                cache.get(&k),
                Some(format!("v{k}")),
                "key {k}, never removed, went missing"
            );
        }
        let zero = cache.get(&0);
        assert!(
            zero.is_none() || zero.as_deref() == Some("v0"),
            "key 0 read as {zero:?}"
        );

        writer.join().unwrap();
        assert_eq!(cache.get(&0), None);
        for k in 1..9 {
            assert_eq!(cache.get(&k), Some(format!("v{k}")), "key {k}");
        }
        assert_eq!(cache.len(), 8);
        cache.validate().unwrap();
    });
}
