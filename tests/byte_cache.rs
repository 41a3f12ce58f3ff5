//! ByteCache (the engine behind the cache object API) against the conformance suite, unbounded
//! and bounded.

mod conformance;

use std::sync::Arc;

use epochcache::ByteCache;

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
