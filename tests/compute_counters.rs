//! Per-key counters written only through `compute`, while other threads evict (noise keys in a
//! shared budget), retain, clear, purge and advance the clock. Every successful compute
//! result is a step of one counter generation: counts 1..=n, each once; every count but the
//! last heard replaced; the last present or heard removed; no thread reads a count go back.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use epochcache::{Computed, Expires, MockClock, Op, RemovalCause, ShardedCache};
use support::{count_from_env, failing_seeds, stats_add_up, SplitMix};

const TICK: Duration = Duration::from_micros(1);
const COUNTERS: u64 = 4;

/// (generation, count); noise values use generation 0.
type V = (u64, u64);
type Heard = Arc<Mutex<HashMap<V, Vec<(u64, RemovalCause)>>>>;

#[derive(Clone, Copy, Debug)]
struct Cfg {
    shards: usize,
    max_entries: Option<u64>,
    max_weight: Option<u64>,
    ttl: Option<u64>,
    seed: u64,
    ops: usize,
}

fn run(cfg: Cfg) -> Vec<String> {
    let heard: Heard = Arc::default();
    let clock = MockClock::new();
    let gens = Arc::new(AtomicU64::new(1));
    let noise = Arc::new(AtomicU64::new(1));
    let mut b = ShardedCache::<u64, V>::builder()
        .shards(cfg.shards)
        .clock(Arc::new(clock.clone()));
    {
        let heard = Arc::clone(&heard);
        b = b.eviction_listener(move |k: &u64, v: &V, cause| {
            heard
                .lock()
                .unwrap()
                .entry(*v)
                .or_default()
                .push((*k, cause));
        });
    }
    if let Some(n) = cfg.max_entries {
        b = b.max_entries(n);
    }
    if let Some(w) = cfg.max_weight {
        b = b
            .max_weight(w)
            .max_entry_weight(3)
            .weigher(|_k: &u64, v: &V| 1 + (v.1 % 3));
    }
    if let Some(t) = cfg.ttl {
        b = b.time_to_live(TICK * t as u32);
    }
    let cache = Arc::new(b.build());
    let stop = Arc::new(AtomicBool::new(false));
    // Computing threads.
    let computers: Vec<_> = (0..3)
        .map(|t| {
            let (cache, gens, clock) = (Arc::clone(&cache), Arc::clone(&gens), clock.clone());
            thread::spawn(move || {
                let mut rng = SplitMix(cfg.seed * 100 + t);
                let mut results: Vec<(u64, Computed<V>)> = Vec::new();
                let mut last_seen: HashMap<u64, V> = HashMap::new();
                let mut errors = Vec::new();
                for _ in 0..cfg.ops {
                    let k = rng.below(COUNTERS);
                    let r = rng.next();
                    let res = cache.compute(k, |cur| {
                        let next = match cur {
                            Some(&(g, c)) => {
                                if r % 11 == 0 {
                                    return Op::Remove;
                                }
                                if r % 13 == 0 {
                                    return Op::Nop;
                                }
                                (g, c + 1)
                            }
                            None => (gens.fetch_add(1, SeqCst), 1),
                        };
                        match r % 5 {
                            0 => Op::PutWithExpiry(next, Expires::After(TICK * 3)),
                            1 if r % 7 == 0 => Op::PutWithExpiry(
                                next,
                                Expires::At(std::time::UNIX_EPOCH + Duration::from_secs(1)),
                            ),
                            _ => Op::Put(next),
                        }
                    });
                    match res {
                        Ok(c) => results.push((k, c)),
                        Err(e) => errors.push(format!("compute error {e:?}")),
                    }
                    if rng.below(8) == 0 {
                        clock.advance(TICK);
                    }
                    if let Some(v) = cache.get(&k) {
                        if let Some(prev) = last_seen.get(&k) {
                            if prev.0 == v.0 && v.1 < prev.1 {
                                errors.push(format!("key {k}: read {v:?} after {prev:?}"));
                            }
                        }
                        last_seen.insert(k, v);
                    }
                }
                (results, errors)
            })
        })
        .collect();
    // Disturbing threads.
    let disturbers: Vec<_> = (0..2)
        .map(|t| {
            let (cache, noise, clock, stop) = (
                Arc::clone(&cache),
                Arc::clone(&noise),
                clock.clone(),
                Arc::clone(&stop),
            );
            thread::spawn(move || {
                let mut rng = SplitMix(cfg.seed * 100 + 50 + t);
                let mut stored = Vec::new();
                while !stop.load(SeqCst) {
                    match rng.below(100) {
                        0..=59 => {
                            let v = (0, noise.fetch_add(1, SeqCst));
                            if cache.insert(COUNTERS + rng.below(8), v).is_ok() {
                                stored.push(v);
                            }
                        }
                        60..=69 => {
                            let m = 2 + rng.below(5);
                            cache.retain(|_, v| v.1 % m != 0);
                        }
                        70..=72 => cache.clear(),
                        73..=82 => cache.purge_expired(),
                        83..=92 => clock.advance(TICK),
                        _ => {
                            let _ = cache.iter().count();
                        }
                    }
                }
                stored
            })
        })
        .collect();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for h in computers {
        let (r, e) = h.join().unwrap();
        results.extend(r);
        errors.extend(e);
    }
    stop.store(true, SeqCst);
    let mut noise_stored = Vec::new();
    for h in disturbers {
        noise_stored.extend(h.join().unwrap());
    }
    if let Err(e) = cache.validate() {
        errors.push(format!("validate: {e}"));
    }
    if let Err(e) = support::quiet(|| stats_add_up(&cache)) {
        errors.push(format!("stats {e:?}"));
    }
    cache.purge_expired();
    let present: HashMap<V, u64> = cache.iter().map(|(k, v)| (v, k)).collect();
    let heard = heard.lock().unwrap().clone();
    // Steps of each generation.
    let mut steps: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut stored: Vec<V> = noise_stored;
    for (k, c) in &results {
        match c {
            Computed::Inserted(v) => {
                if v.1 != 1 {
                    errors.push(format!("key {k}: inserted {v:?}"));
                }
                steps.entry(v.0).or_default().push(v.1);
                stored.push(*v);
            }
            Computed::Updated { old, new } => {
                if old.0 != new.0 || new.1 != old.1 + 1 {
                    errors.push(format!("key {k}: {old:?} -> {new:?}"));
                }
                steps.entry(new.0).or_default().push(new.1);
                stored.push(*new);
                match heard.get(old).map(|h| h[0].1) {
                    Some(RemovalCause::Replaced) => {}
                    other => errors.push(format!("{old:?} updated, heard {other:?}")),
                }
            }
            Computed::Removed(old) => match heard.get(old).map(|h| h[0].1) {
                Some(RemovalCause::Deleted) => {}
                other => errors.push(format!("{old:?} computed removed, heard {other:?}")),
            },
            _ => {}
        }
    }
    for (g, mut counts) in steps {
        counts.sort();
        let expect: Vec<u64> = (1..=counts.len() as u64).collect();
        if counts != expect {
            errors.push(format!("generation {g}: counts {counts:?}"));
        }
    }
    for v in &stored {
        let h = heard.get(v).map_or(0, |h| h.len());
        let p = usize::from(present.contains_key(v));
        if h + p != 1 {
            errors.push(format!("{v:?}: heard {:?}, present {p}", heard.get(v)));
        }
    }
    errors
}

fn sweep(base: Cfg) {
    let seeds = count_from_env("EPOCHCACHE_MIXED_SEEDS", 10) as u64;
    let ops = count_from_env("EPOCHCACHE_MIXED_OPS", 5000);
    let failed = failing_seeds(seeds, move |seed| run(Cfg { seed, ops, ..base }));
    assert!(failed.is_empty(), "{base:?}: failed {failed:?} of {seeds}");
}

#[test]
fn counters_entries_bound() {
    sweep(Cfg {
        shards: 2,
        max_entries: Some(4),
        max_weight: None,
        ttl: None,
        seed: 0,
        ops: 0,
    });
}

#[test]
fn counters_entries_bound_ttl() {
    sweep(Cfg {
        shards: 4,
        max_entries: Some(3),
        max_weight: None,
        ttl: Some(4),
        seed: 0,
        ops: 0,
    });
}

#[test]
fn counters_weight_bound() {
    sweep(Cfg {
        shards: 2,
        max_entries: None,
        max_weight: Some(8),
        ttl: None,
        seed: 0,
        ops: 0,
    });
}

#[test]
fn counters_unbounded_ttl() {
    sweep(Cfg {
        shards: 1,
        max_entries: None,
        max_weight: None,
        ttl: Some(2),
        seed: 0,
        ops: 0,
    });
}
