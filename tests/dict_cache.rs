//! DictCache against the conformance suite, and the behaviour only it has (initial data).

mod conformance;

use std::sync::Arc;

use bytes::Bytes;
use epochcache::{BaseCache, DictCache, MockClock};

conformance::base_cache_suite!(|clock: MockClock| DictCache::new().with_clock(Arc::new(clock)));
conformance::separate_body_suite!(|clock: MockClock| DictCache::new().with_clock(Arc::new(clock)));

#[test]
fn initial_data_is_served_and_never_expires() {
    let clock = MockClock::new();
    let data = (0..100).map(|i| (format!("k{i}"), Bytes::from(vec![i as u8; i])));
    let cache = DictCache::with_data(data).with_clock(Arc::new(clock.clone()));
    clock.advance(std::time::Duration::from_secs(u32::MAX.into()));
    assert_eq!(cache.len(), 100);
    for i in 0..100 {
        assert_eq!(
            cache.get(&format!("k{i}")).unwrap(),
            Some(Bytes::from(vec![i as u8; i]))
        );
    }
}
