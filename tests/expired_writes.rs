//! Writes whose expiry has already passed, and the 16 ns grain of stored deadlines.
//!
//! A value set with an expiry at or before now can never be read, so the engine does not store
//! it: it removes the key's old value and tells the listener of both, but takes no room, where
//! storing it evicted live entries of a bounded cache for it. Deadlines that are stored are kept
//! to 16 ns, rounded down, so a value is never served at or after its deadline.

mod support;

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use epochcache::{
    BaseCache, ByteCache, Computed, Expires, MockClock, Op, RemovalCause, SeparateBodyCache,
    ShardedCache,
};
use support::stats_add_up;

fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// Past expiries of every kind, for a clock at `MockClock::new()`.
fn past() -> [Expires; 3] {
    [
        Expires::After(Duration::ZERO),
        Expires::At(UNIX_EPOCH + Duration::from_secs(1)),
        Expires::UnixSeconds(0),
    ]
}

#[test]
fn a_write_already_expired_evicts_no_live_entry() {
    for expires in past() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&heard);
        let cache: ShardedCache<u64, u64> = ShardedCache::builder()
            .shards(1)
            .max_entries(2)
            .clock(Arc::new(MockClock::new()))
            .eviction_listener(move |k: &u64, v: &u64, cause| {
                log.lock().unwrap().push((*k, *v, cause))
            })
            .build();
        cache.insert(1, 1).unwrap();
        cache.insert(2, 2).unwrap();
        cache.insert(3, 3).unwrap(); // evicts one of them: the cache is full
        let before: Vec<(u64, u64)> = cache.iter().collect();
        heard.lock().unwrap().clear();

        for k in 10..14 {
            cache.insert_with_expiry(k, k, Some(expires)).unwrap();
        }
        let mut after: Vec<(u64, u64)> = cache.iter().collect();
        after.sort_unstable();
        let mut before = before;
        before.sort_unstable();
        assert_eq!(
            after, before,
            "{expires:?}: live entries evicted for expired ones"
        );
        let expired: Vec<_> = (10..14).map(|k| (k, k, RemovalCause::Expired)).collect();
        assert_eq!(*heard.lock().unwrap(), expired, "{expires:?}");

        // Over a stored key: the old value goes, replaced, and nothing is stored.
        let (k, _) = after[0];
        cache.insert_with_expiry(k, 99, Some(expires)).unwrap();
        assert_eq!(cache.get(&k), None);
        assert_eq!(cache.len(), 1);
        assert_eq!(
            heard.lock().unwrap()[4..],
            [
                (k, k, RemovalCause::Replaced),
                (k, 99, RemovalCause::Expired)
            ]
        );
        stats_add_up(&cache);
        cache.validate().unwrap();
    }
}

#[test]
fn a_byte_cache_set_already_expired_keeps_other_keys_metadata_and_body() {
    let cache = ByteCache::builder()
        .shards(1)
        .max_weight(2_000)
        .max_entry_weight(2_000)
        .clock(Arc::new(MockClock::new()))
        .build();
    cache.set("a", Bytes::from(vec![1; 800]), None).unwrap();
    cache.set_body("a", Bytes::from(vec![2; 800])).unwrap();
    for expires in past() {
        cache
            .set("dead", Bytes::from(vec![0; 1_500]), Some(expires))
            .unwrap();
        assert_eq!(cache.get("dead").unwrap(), None);
        assert!(
            cache.get("a").unwrap().is_some(),
            "{expires:?} evicted a's metadata"
        );
        assert!(
            cache.get_body("a").unwrap().is_some(),
            "{expires:?} evicted a's body"
        );
    }
}

/// To a clock a few nanoseconds past the Unix epoch, a past expiry still lies before it; rounded
/// up to the smallest stored deadline (16 ns, since 0 means never) it would be served.
#[test]
fn a_past_expiry_near_the_epoch_is_not_served() {
    let clock = MockClock::at(UNIX_EPOCH + Duration::from_nanos(5));
    let cache = ByteCache::builder().clock(Arc::new(clock.clone())).build();
    for expires in [
        Expires::UnixSeconds(0),
        Expires::At(UNIX_EPOCH + Duration::from_nanos(5)),
    ] {
        cache.set("k", bytes("old"), None).unwrap();
        cache.set("k", bytes("v"), Some(expires)).unwrap();
        assert_eq!(cache.get("k").unwrap(), None, "{expires:?}");
    }
}

/// Whatever the clock's alignment, a stored value is served until at most its deadline less
/// the 16 ns grain, and never at or after its deadline.
#[test]
fn a_stored_deadline_is_never_late_and_at_most_15_ns_early() {
    let base = MockClock::new().now();
    for offset in 0..32u64 {
        for lifetime in 1..40u64 {
            let clock = MockClock::at(base + Duration::from_nanos(offset));
            let cache = ByteCache::builder().clock(Arc::new(clock.clone())).build();
            cache
                .set("k", bytes("v"), Some(Duration::from_nanos(lifetime).into()))
                .unwrap();
            let mut served_until = None;
            for elapsed in 0..lifetime + 2 {
                if cache.get("k").unwrap().is_some() {
                    served_until = Some(elapsed);
                }
                clock.advance(Duration::from_nanos(1));
            }
            let case = format!("written at +{offset} ns, for {lifetime} ns");
            if let Some(last) = served_until {
                assert!(last < lifetime, "{case}: served {last} ns in");
            }
            // Served at least until 16 ns before its deadline.
            if lifetime > 16 {
                assert!(
                    served_until.is_some_and(|last| last + 16 >= lifetime - 1),
                    "{case}: last served at {served_until:?}"
                );
            }
        }
    }
}

#[test]
fn a_computed_put_already_expired_takes_no_room_and_replaces_the_value() {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(1)
        .max_entries(2)
        .clock(Arc::new(MockClock::new()))
        .build();
    cache.insert(1, 1).unwrap();
    cache.insert(2, 2).unwrap();
    let dead = |v: Option<&u64>| Op::PutWithExpiry(v.map_or(0, |v| v + 1), Duration::ZERO.into());
    assert_eq!(cache.compute(3, dead).ok(), Some(Computed::Inserted(0)));
    assert_eq!(
        (cache.get(&1), cache.get(&2), cache.get(&3)),
        (Some(1), Some(2), None)
    );
    assert_eq!(
        cache.compute(1, dead).ok(),
        Some(Computed::Updated { old: 1, new: 2 })
    );
    assert_eq!((cache.get(&1), cache.len()), (None, 1));
    stats_add_up(&cache);
    cache.validate().unwrap();
}

/// `delete` is two removals (metadata, then body); a listener that panics on the first must not
/// leave the body behind.
#[test]
fn a_listener_that_panics_on_delete_leaves_no_body_behind() {
    let cache = ByteCache::builder()
        .eviction_listener(|_: &str, _: &Bytes, is_body, _| assert!(is_body, "listener panics"))
        .build();
    cache.set("k", bytes("metadata"), None).unwrap();
    cache.set_body("k", bytes("body")).unwrap();
    let deleted = panic::catch_unwind(AssertUnwindSafe(|| cache.delete("k")));
    assert!(deleted.is_err(), "the listener's panic goes on");
    assert_eq!(cache.get("k").unwrap(), None);
    assert!(cache.get_body("k").unwrap().is_none());
}

/// A deadline less than 16 ns ahead may round down to the write's own time: such a value could
/// never be read either, so it must not take room from live entries.
#[test]
fn a_write_expiring_within_the_deadline_grain_evicts_no_live_entry() {
    for lifetime in 1..=15 {
        let clock = MockClock::new();
        let cache: ShardedCache<u64, u64> = ShardedCache::builder()
            .shards(1)
            .max_entries(2)
            .clock(Arc::new(clock.clone()))
            .build();
        cache.insert(1, 1).unwrap();
        cache.insert(2, 2).unwrap();
        let expires = Duration::from_nanos(lifetime).into();
        cache.insert_with_expiry(3, 3, Some(expires)).unwrap();
        let got = (cache.get(&1), cache.get(&2));
        assert_eq!(
            got,
            (Some(1), Some(2)),
            "{lifetime} ns: a live entry was evicted"
        );
        if cache.get(&3).is_some() {
            // Stored after all (its deadline kept beyond now): then it expires in time.
            clock.advance(Duration::from_nanos(lifetime));
            assert_eq!(cache.get(&3), None, "{lifetime} ns");
        }
        cache.validate().unwrap();
    }
}

/// To a clock at the Unix epoch itself, an expiry at or before the epoch has passed: the
/// deadline kept from 0 (which means never) must not make it live.
#[test]
fn a_past_expiry_is_not_served_to_a_clock_at_the_epoch() {
    let clock = MockClock::at(UNIX_EPOCH);
    let cache = ByteCache::builder().clock(Arc::new(clock)).build();
    for expires in [
        Expires::After(Duration::ZERO),
        Expires::At(UNIX_EPOCH),
        Expires::At(UNIX_EPOCH - Duration::from_secs(1)),
        Expires::UnixSeconds(0),
    ] {
        cache.set("k", bytes("old"), None).unwrap();
        cache.set("k", bytes("v"), Some(expires)).unwrap();
        assert_eq!(cache.get("k").unwrap(), None, "{expires:?}");
    }
}

/// A write whose expiry has passed stores nothing, so it is not weighed either: a value over
/// the cache's limit for one entry does not make it `TooLarge` while the old value stays served.
/// It replaces the old value as any past-expiry write does, in a bounded `ByteCache` as in
/// `DictCache`.
#[test]
fn a_past_expiry_write_too_large_to_store_still_hides_the_old_value() {
    let clock = MockClock::new();
    let bounded = ByteCache::builder()
        .clock(Arc::new(clock.clone()))
        .max_weight(1 << 16)
        .build();
    let dict = epochcache::DictCache::new().with_clock(Arc::new(clock));
    for c in [&bounded as &dyn BaseCache, &dict] {
        c.set("k", bytes("old"), None).unwrap();
        c.set(
            "k",
            Bytes::from(vec![0; 1 << 20]),
            Some(Expires::After(Duration::ZERO)),
        )
        .unwrap();
        assert_eq!(c.get("k").unwrap(), None, "the old value is replaced");
    }
    // A live value that large is still refused, and the old one then stays.
    bounded.set("k", bytes("old"), None).unwrap();
    let refused = bounded.set("k", Bytes::from(vec![0; 1 << 20]), None);
    assert!(
        matches!(refused, Err(epochcache::CacheError::TooLarge { .. })),
        "{refused:?}"
    );
    assert_eq!(bounded.get("k").unwrap(), Some(bytes("old")));
}
