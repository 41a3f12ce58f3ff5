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
