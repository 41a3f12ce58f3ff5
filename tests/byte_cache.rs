//! ByteCache (the engine behind the cache object API) against the conformance suite, unbounded
//! and bounded.

mod conformance;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use bytes::Bytes;
use epochcache::{BaseCache, ByteCache, RemovalCause, SeparateBodyCache};

conformance::base_cache_suite!(|clock: MockClock| ByteCache::builder()
    .clock(Arc::new(clock))
    .build());
conformance::separate_body_suite!(|clock: MockClock| ByteCache::builder()
    .clock(Arc::new(clock))
    .build());

mod bounded {
    use super::*;

    // A budget large enough for every conformance check (the 16 MiB value included), so that
    // no check loses an entry to eviction, but small enough that eviction code runs.
    conformance::base_cache_suite!(|clock: MockClock| ByteCache::builder()
        .clock(Arc::new(clock))
        .shards(4)
        .max_weight(160 << 20)
        .max_entry_weight(32 << 20)
        .build());
}

/// `ByteCache::delete` is two removals with the listener (user code, no lock held) between them.
/// A writer following the seed's pattern (`set` then `set_body`) that ran in that gap, when the
/// metadata went first, left the key with its new metadata and no body, for good, which no
/// atomic delete (DictCache's) can end with. The body goes first now.
#[test]
fn a_delete_racing_set_then_set_body_leaves_no_metadata_without_its_body() {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let hook = Arc::new(Mutex::new(Some((go_tx, done_rx))));
    let h = Arc::clone(&hook);
    let cache = Arc::new(
        ByteCache::builder()
            // On the delete's first removal of "page", let the writer run, and wait for it.
            .eviction_listener(move |key: &str, _v: &Bytes, _is_body, cause| {
                if key == "page" && cause == RemovalCause::Deleted {
                    if let Some((go, done)) = h.lock().unwrap().take() {
                        go.send(()).unwrap();
                        done.recv().unwrap();
                    }
                }
            })
            .build(),
    );
    cache
        .set("page", Bytes::from_static(b"meta-v1"), None)
        .unwrap();
    cache
        .set_body("page", Bytes::from_static(b"body-v1"))
        .unwrap();
    let writer = {
        let cache = Arc::clone(&cache);
        thread::spawn(move || {
            go_rx.recv().unwrap();
            cache
                .set("page", Bytes::from_static(b"meta-v2"), None)
                .unwrap();
            cache
                .set_body("page", Bytes::from_static(b"body-v2"))
                .unwrap();
            done_tx.send(()).unwrap();
        })
    };
    cache.delete("page").unwrap();
    writer.join().unwrap();
    // An atomic delete and `set; set_body` end with both v2, only body-v2, or nothing.
    let meta = cache.get("page").unwrap();
    let body = cache.get_body("page").unwrap();
    assert!(
        !(meta.is_some() && body.is_none()),
        "metadata {meta:?} left without a body after delete"
    );
}

/// `clear` racing a writer that stores metadata then body (the seed's `set` then `set_body`)
/// never leaves metadata without its body: a key's two records live in different shards, and
/// a clear shard by shard could drop the body after keeping the metadata (found by a bug hunt:
/// 58 such keys after one clear). Bodies go in a first sweep, metadata in a second.
#[test]
fn a_clear_racing_set_then_set_body_leaves_no_metadata_without_its_body() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    for round in 0..20 {
        let cache = Arc::new(ByteCache::builder().shards(64).build());
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicUsize::new(0));
        let writer = {
            let (cache, stop, written) =
                (Arc::clone(&cache), Arc::clone(&stop), Arc::clone(&written));
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("page:{n}");
                    cache.set(&key, Bytes::from_static(b"meta"), None).unwrap();
                    cache.set_body(&key, Bytes::from_static(b"body")).unwrap();
                    n += 1;
                    written.store(n, Ordering::Relaxed);
                }
                n
            })
        };
        while written.load(Ordering::Relaxed) < 2_000 {
            std::thread::yield_now();
        }
        cache.clear().unwrap(); // racing the writer
        stop.store(true, Ordering::Relaxed);
        let n = writer.join().unwrap();
        let orphans: Vec<String> = (0..n)
            .map(|i| format!("page:{i}"))
            .filter(|key| {
                cache.get(key).unwrap().is_some() && cache.get_body(key).unwrap().is_none()
            })
            .collect();
        assert!(
            orphans.is_empty(),
            "round {round}: {} keys kept metadata without a body, e.g. {:?}",
            orphans.len(),
            &orphans[..orphans.len().min(3)]
        );
        cache.validate().unwrap();
    }
}

/// `clear` removes expired entries too (its sweeps of live entries pass over them), so the
/// cache is empty afterwards, and the listener hears of them as expired.
#[test]
fn clear_removes_expired_entries_too() {
    let clock = epochcache::MockClock::new();
    let heard: Arc<Mutex<Vec<RemovalCause>>> = Arc::default();
    let told = Arc::clone(&heard);
    let cache = ByteCache::builder()
        .clock(Arc::new(clock.clone()))
        .eviction_listener(move |_, _, _, cause| told.lock().unwrap().push(cause))
        .build();
    let soon = Some(std::time::Duration::from_secs(1).into());
    cache.set("gone", Bytes::from_static(b"m"), soon).unwrap();
    cache.set("kept", Bytes::from_static(b"m"), None).unwrap();
    clock.advance(std::time::Duration::from_secs(2));
    cache.clear().unwrap();
    assert_eq!(cache.len(), 0);
    let mut heard = heard.lock().unwrap().clone();
    heard.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(heard, [RemovalCause::Deleted, RemovalCause::Expired]);
}

/// A listener that panics while `clear` sweeps bodies does not stop the sweeps: both run to the
/// end and the panic goes on after (a review found the first two-sweep `clear` stopping at the
/// panicking shard, leaving metadata without bodies).
#[test]
fn clear_with_a_panicking_listener_still_leaves_no_metadata_without_its_body() {
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let a = Arc::clone(&armed);
    let cache = ByteCache::builder()
        .eviction_listener(move |_k: &str, _v: &Bytes, is_body, _cause| {
            if is_body && a.swap(false, std::sync::atomic::Ordering::SeqCst) {
                panic!("listener fails once");
            }
        })
        .build();
    for i in 0..4 {
        let key = format!("k{i}");
        cache.set(&key, Bytes::from_static(b"meta"), None).unwrap();
        cache.set_body(&key, Bytes::from_static(b"body")).unwrap();
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cache.clear()));
    assert!(r.is_err(), "the listener's panic goes on");
    let orphans: Vec<String> = (0..4)
        .map(|i| format!("k{i}"))
        .filter(|k| cache.get(k).unwrap().is_some() && cache.get_body(k).unwrap().is_none())
        .collect();
    assert!(
        orphans.is_empty(),
        "metadata left without its body: {orphans:?}"
    );
    assert_eq!(cache.len(), 0, "clear left entries behind");
}
