//! `close`, `clear` and `purge_expired` free what they remove before they return: a cache closed,
//! cleared or purged and then left alone used to keep every removed value until some later pin of
//! some thread ran the epoch collector (found by a bug hunt: close then drop dropped none of
//! 1,000 values). One test, alone in its binary: another test's thread pinned at the wrong moment
//! could hold the collector back, which the docs allow.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use epochcache::{MockClock, ShardedCache};

static DROPS: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone)]
struct Counted(#[allow(dead_code)] Vec<u8>);

impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

type Cache = ShardedCache<u64, Counted>;

/// A way to remove every entry, by name.
type RemoveAll = (&'static str, fn(&Cache, &MockClock));

fn filled(clock: &MockClock) -> Cache {
    let cache = ShardedCache::builder()
        .shards(4)
        .clock(Arc::new(clock.clone()))
        .build();
    for k in 0..1_000 {
        let ttl = Some(Duration::from_secs(1).into());
        cache
            .insert_with_expiry(k, Counted(vec![0; 256]), ttl)
            .unwrap();
    }
    cache
}

/// The values each call removed are dropped by the time it returns, with no read, write or pin
/// after it.
#[test]
fn close_clear_and_purge_drop_the_values_they_remove_before_returning() {
    let clock = MockClock::new();
    let removals: [RemoveAll; 3] = [
        ("close", |cache, _| cache.close()),
        ("clear", |cache, _| cache.clear()),
        ("purge_expired", |cache, clock| {
            clock.advance(Duration::from_secs(1));
            cache.purge_expired();
        }),
    ];
    for (name, remove_all) in removals {
        let cache = filled(&clock);
        let before = DROPS.load(Ordering::SeqCst);
        remove_all(&cache, &clock);
        let dropped = DROPS.load(Ordering::SeqCst) - before;
        assert_eq!(dropped, 1_000, "{name}: values dropped when it returned");
        assert_eq!(cache.len(), 0, "{name}");
    }
}
