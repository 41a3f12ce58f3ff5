//! The workloads that only hit (hot-get, hot-read, get, zipf-get, mix) need every cache to hold
//! the whole data set: a cache that evicted some of it would answer misses where the others hit.

use epochcache_bench::systems::quick_cache_for;
use epochcache_bench::{Config, Contender, DataSet, Sizing, System};

/// The hot set, and the sizing the comparison builds it with (no bound: no eviction wanted).
fn hot_set() -> (DataSet, Sizing) {
    let cfg = Config::default();
    let data = DataSet::generate(0, cfg.hot_keys, cfg.value_size);
    let sizing = Sizing {
        entries: data.len(),
        bound: None,
    };
    (data, sizing)
}

fn held(c: &dyn Contender, data: &DataSet) -> usize {
    data.keys.iter().filter(|k| c.get(k).is_some()).count()
}

/// quick_cache bounds each shard on its own; with as many shards as 16 cores (64, floored by
/// quick_cache to 32 for this size) or more give it, and a quarter more room than the hot set,
/// some shards overflowed and evicted (the 16-core run held 99.0 to 99.9% of the hot set).
/// Each build hashes with a fresh random seed, so a few are tried.
#[test]
fn quick_cache_holds_the_whole_hot_set_on_any_core_count() {
    let (data, sizing) = hot_set();
    for shards in [1, 8, 64, 256] {
        for _ in 0..10 {
            let c = quick_cache_for(sizing, Some(shards));
            for (k, v) in data.entries() {
                Contender::set(&c, &k, v);
            }
            assert_eq!(held(&c, &data), data.len(), "{shards} shards");
        }
    }
}

#[test]
fn every_system_holds_the_whole_hot_set() {
    let (data, sizing) = hot_set();
    for system in System::ALL {
        let c = system.build(sizing, data.entries());
        assert_eq!(held(&*c, &data), data.len(), "{}", system.name());
    }
}
