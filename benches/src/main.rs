//! The main job. Until the benchmark comparison lands, a small program that exercises the cache
//! and prints what it did.

use std::time::{Duration, Instant};

use bytes::Bytes;
use epochcache::{BaseCache, DictCache};

fn main() -> Result<(), epochcache::CacheError> {
    let cache = DictCache::new();
    let n = 100_000;
    let start = Instant::now();
    for i in 0..n {
        cache.set(&format!("key-{i}"), Bytes::from(vec![0u8; 64]), None)?;
    }
    let set_time = start.elapsed();
    let start = Instant::now();
    let mut hits = 0;
    for i in 0..2 * n {
        hits += usize::from(cache.get(&format!("key-{i}"))?.is_some());
    }
    let get_time = start.elapsed();
    cache.set(
        "short-lived",
        Bytes::from_static(b"x"),
        Some(Duration::ZERO.into()),
    )?;
    println!(
        "DictCache: {n} sets in {set_time:?}, {} gets in {get_time:?}, {hits} hits",
        2 * n
    );
    println!(
        "a value set with an expiry in the past reads as {:?}",
        cache.get("short-lived")?
    );
    cache.close()?;
    println!(
        "after close, get returns {:?}",
        cache.get("key-1").unwrap_err()
    );
    Ok(())
}
