//! Model-based property tests of the engine.
//!
//! proptest generates random sequences of operations over a small key space (so that probe
//! chains, tombstones, table rebuilds and expiry sweeps all happen within a few dozen steps), runs
//! each sequence against the engine and against a reference, and after every step compares what
//! the two returned and calls the engine's `validate()`, which checks every internal invariant of
//! every shard table.
//!
//! - [`ByteCache`] (unbounded) against [`DictCache`], both reading one [`MockClock`]: `set` with
//!   and without expiry (zero, past, future, absolute, Unix seconds), `get`, `delete`,
//!   `set_body`, `get_body`, clock advances and, rarely, `close`. Every few steps the whole key
//!   space is compared, not only the key just touched.
//! - [`ShardedCache<u16, u32>`] against a `HashMap`: `insert`, `remove` (its `bool` too), `get`,
//!   `get_with`, a pinned `get`, `compute` (what it did, too), and `len()`, which must be exact
//!   for an unbounded cache.
//! - A bounded [`ShardedCache<u16, u32>`]: eviction may drop any entry, but a read must return
//!   either nothing or the last value written for the key, never an older or another key's one,
//!   and `len()` stays within `max_entries`.
//!
//! Clock advances are whole milliseconds: the engine stores deadlines rounded up to 4 ns (see
//! `raw/entry.rs`), so at nanosecond resolution it may keep a value up to 3 ns longer than the
//! reference, by design.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use epochcache::{
    BaseCache, ByteCache, CacheError, Computed, DictCache, Expires, MockClock, Op,
    SeparateBodyCache, ShardedCache,
};
use proptest::prelude::*;

/// Keys `k0` to `k39`.
const KEYS: u16 = 40;

/// An expiry as generated; turned into an [`Expires`] against the clock at the time of the set.
#[derive(Debug, Clone)]
enum Expiry {
    After(Duration),
    /// This long before now (already expired).
    AtPast(Duration),
    /// This long after now.
    AtFuture(Duration),
    /// A Unix timestamp this many seconds from now's whole second (0: already expired unless now
    /// is on the second).
    UnixSecondsFromNow(u64),
    /// A Unix timestamp long past.
    UnixZero,
}

impl Expiry {
    fn resolve(&self, clock: &MockClock) -> Expires {
        match *self {
            Expiry::After(d) => Expires::After(d),
            Expiry::AtPast(d) => Expires::At(clock.now() - d),
            Expiry::AtFuture(d) => Expires::At(clock.now() + d),
            Expiry::UnixSecondsFromNow(s) => {
                let now = clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs();
                Expires::UnixSeconds(now + s)
            }
            Expiry::UnixZero => Expires::UnixSeconds(0),
        }
    }
}

#[derive(Debug, Clone)]
enum ByteOp {
    Set(u16, u8, Option<Expiry>),
    Get(u16),
    Delete(u16),
    SetBody(u16, u8),
    GetBody(u16),
    Advance(Duration),
    Close,
}

fn millis(max: u64) -> impl Strategy<Value = Duration> {
    (0..=max).prop_map(Duration::from_millis)
}

fn expiry() -> impl Strategy<Value = Expiry> {
    prop_oneof![
        3 => millis(3_000).prop_map(Expiry::After),
        1 => Just(Expiry::After(Duration::ZERO)),
        1 => millis(10_000).prop_map(Expiry::AtPast),
        1 => millis(3_000).prop_map(Expiry::AtFuture),
        1 => (0..4u64).prop_map(Expiry::UnixSecondsFromNow),
        1 => Just(Expiry::UnixZero),
    ]
}

fn byte_op() -> impl Strategy<Value = ByteOp> {
    let key = 0..KEYS;
    prop_oneof![
        12 => (key.clone(), 0..4u8, proptest::option::weighted(0.5, expiry()))
            .prop_map(|(k, len, e)| ByteOp::Set(k, len, e)),
        10 => key.clone().prop_map(ByteOp::Get),
        5 => key.clone().prop_map(ByteOp::Delete),
        4 => (key.clone(), 0..4u8).prop_map(|(k, len)| ByteOp::SetBody(k, len)),
        4 => key.prop_map(ByteOp::GetBody),
        3 => millis(1_500).prop_map(ByteOp::Advance),
        // Rare: the rest of the sequence then checks that both caches refuse everything.
        1 => Just(ByteOp::Close),
    ]
}

/// Key `k`'s name: short for most keys, longer than any inline key for every fifth one, and
/// empty for key 0, so that every way a key may be stored is exercised.
fn key_name(k: u16) -> String {
    match k {
        0 => String::new(),
        k if k % 5 == 0 => format!("k{k}-{}", "long".repeat(20)),
        k => format!("k{k}"),
    }
}

/// A value unique to the step that wrote it, of a length chosen by the test (empty included).
fn value_for(step: usize, len: u8) -> Bytes {
    if len == 0 {
        return Bytes::new();
    }
    let mut v = format!("{step}:").into_bytes();
    v.resize(v.len() + usize::from(len) * 7, b'.');
    Bytes::from(v)
}

fn body_bytes(body: Option<epochcache::BodyReader>) -> Option<Vec<u8>> {
    body.map(|mut r| {
        let mut out = Vec::new();
        r.read_to_end(&mut out)
            .expect("a body stream does not fail");
        out
    })
}

/// Whether two results are the same: equal values, or the same error kind.
fn same<T: PartialEq + std::fmt::Debug>(
    got: &Result<T, CacheError>,
    want: &Result<T, CacheError>,
) -> bool {
    match (got, want) {
        (Ok(a), Ok(b)) => a == b,
        (Err(CacheError::Closed), Err(CacheError::Closed)) => true,
        _ => false,
    }
}

/// Whether a read of a bounded cache agrees with the unbounded reference: the same, or nothing
/// where the reference has something (evicted), never another value.
fn agrees<T: PartialEq + std::fmt::Debug>(
    got: &Result<Option<T>, CacheError>,
    want: &Result<Option<T>, CacheError>,
    bounded: bool,
) -> bool {
    same(got, want) || (bounded && matches!((got, want), (Ok(None), Ok(Some(_)))))
}

/// Runs `ops` against a ByteCache (bounded to `max_entries` entries if given) and a DictCache.
fn run_byte_model(
    shards: usize,
    max_entries: Option<u64>,
    ops: &[ByteOp],
) -> Result<(), TestCaseError> {
    let clock = MockClock::new();
    let builder = ByteCache::builder()
        .shards(shards)
        .clock(Arc::new(clock.clone()));
    let engine = match max_entries {
        Some(n) => builder.max_entries(n).build(),
        None => builder.build(),
    };
    let bounded = max_entries.is_some();
    let model = DictCache::new().with_clock(Arc::new(clock.clone()));
    for (step, op) in ops.iter().enumerate() {
        match op {
            ByteOp::Set(k, len, e) => {
                let expires = e.as_ref().map(|e| e.resolve(&clock));
                let v = value_for(step, *len);
                let got = engine.set(&key_name(*k), v.clone(), expires);
                let want = model.set(&key_name(*k), v, expires);
                prop_assert!(same(&got, &want), "step {step} {op:?}: {got:?} vs {want:?}");
            }
            ByteOp::Get(k) => {
                let (got, want) = (engine.get(&key_name(*k)), model.get(&key_name(*k)));
                prop_assert!(
                    agrees(&got, &want, bounded),
                    "step {step} {op:?}: {got:?} vs {want:?}"
                );
                // The same entry through the lending read (nothing was written in between).
                let len = engine.get_with(&key_name(*k), |v| v.len());
                let got_len = got.map(|v| v.map(|v| v.len()));
                prop_assert!(same(&len, &got_len), "step {step} get_with {k}");
            }
            ByteOp::Delete(k) => {
                let (got, want) = (engine.delete(&key_name(*k)), model.delete(&key_name(*k)));
                prop_assert!(same(&got, &want), "step {step} {op:?}: {got:?} vs {want:?}");
            }
            ByteOp::SetBody(k, len) => {
                let v = value_for(step, *len);
                let got = engine.set_body(&key_name(*k), v.clone());
                let want = model.set_body(&key_name(*k), v);
                prop_assert!(same(&got, &want), "step {step} {op:?}: {got:?} vs {want:?}");
            }
            ByteOp::GetBody(k) => {
                let got = engine.get_body(&key_name(*k)).map(body_bytes);
                let want = model.get_body(&key_name(*k)).map(body_bytes);
                prop_assert!(
                    agrees(&got, &want, bounded),
                    "step {step} {op:?}: {got:?} vs {want:?}"
                );
            }
            ByteOp::Advance(d) => clock.advance(*d),
            ByteOp::Close => {
                engine.close().unwrap();
                model.close().unwrap();
            }
        }
        if let Err(e) = engine.validate() {
            return Err(TestCaseError::fail(format!("step {step} {op:?}: {e}")));
        }
        if let Some(n) = max_entries {
            prop_assert!(
                engine.len() as u64 <= n,
                "step {step}: {} entries",
                engine.len()
            );
        }
        if step % 8 == 7 || step + 1 == ops.len() {
            for k in 0..KEYS {
                let name = key_name(k);
                let (got, want) = (engine.get(&name), model.get(&name));
                prop_assert!(
                    agrees(&got, &want, bounded),
                    "after step {step}, key {name}: {got:?} vs {want:?}"
                );
                let got = engine.get_body(&name).map(body_bytes);
                let want = model.get_body(&name).map(body_bytes);
                prop_assert!(
                    agrees(&got, &want, bounded),
                    "after step {step}, body {name}: {got:?} vs {want:?}"
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn byte_cache_one_shard_matches_dict_cache(ops in prop::collection::vec(byte_op(), 1..300)) {
        run_byte_model(1, None, &ops)?;
    }

    #[test]
    fn byte_cache_four_shards_matches_dict_cache(ops in prop::collection::vec(byte_op(), 1..300)) {
        run_byte_model(4, None, &ops)?;
    }

    /// Bounded, a ByteCache may have evicted what the reference still has, but it never returns
    /// a value the reference does not (an old one, another key's, a deleted or expired one).
    #[test]
    fn bounded_byte_cache_never_disagrees_with_dict_cache(
        shards in prop_oneof![Just(1usize), Just(4usize)],
        max_entries in 1..30u64,
        ops in prop::collection::vec(byte_op(), 1..300),
    ) {
        run_byte_model(shards, Some(max_entries), &ops)?;
    }
}

#[derive(Debug, Clone)]
enum MapOp {
    Insert(u16, u32),
    Remove(u16),
    Get(u16),
    GetWith(u16),
    PinnedGet(u16),
    ContainsKey(u16),
    /// `retain` keeping the values whose bit `n` is clear.
    Retain(u8),
    Clear,
    /// `iter` and `pin().iter()`, each compared with the model.
    Iter,
    /// `compute` with the function [`answer`] picks by the second number.
    Compute(u16, u8),
}

/// The function of `MapOp::Compute(_, how)`: by `how % 4`, leave the key, add one to its value
/// (or start at `how`), remove it, or put `how` whatever it held.
fn answer(how: u8) -> impl FnMut(Option<&u32>) -> Op<u32> {
    move |v| match how % 4 {
        0 => Op::Nop,
        1 => Op::Put(v.map_or(u32::from(how), |v| v.wrapping_add(1))),
        2 => Op::Remove,
        _ => Op::Put(u32::from(how)),
    }
}

/// What `compute(k, answer(how))` does to a key whose value is `old`, and the key's value after.
fn computed_on(old: Option<u32>, how: u8) -> (Computed<u32>, Option<u32>) {
    match (answer(how)(old.as_ref()), old) {
        (Op::Nop | Op::Remove, None) => (Computed::StillNone, None),
        (Op::Nop, Some(v)) => (Computed::Unchanged(v), Some(v)),
        (Op::Put(new), None) => (Computed::Inserted(new), Some(new)),
        (Op::Put(new), Some(old)) => (Computed::Updated { old, new }, Some(new)),
        (Op::Remove, Some(v)) => (Computed::Removed(v), None),
        (Op::PutWithExpiry(..), _) => unreachable!("answer gives no expiry"),
    }
}

/// The predicate of `MapOp::Retain(bit)`.
fn bit_clear(bit: u8) -> impl Fn(&u32) -> bool {
    move |v| v & (1 << (bit % 32)) == 0
}

/// Every key and value `iter` and `pin().iter()` yield, each sorted: they must be equal, each
/// key once.
fn walk(cache: &ShardedCache<u16, u32, ahash::RandomState>) -> Vec<(u16, u32)> {
    let mut cloned: Vec<(u16, u32)> = cache.iter().collect();
    let pinned = cache.pin();
    let mut lent: Vec<(u16, u32)> = pinned.iter().map(|(k, v)| (*k, *v)).collect();
    cloned.sort_unstable();
    lent.sort_unstable();
    assert_eq!(cloned, lent, "iter and pin().iter() disagree");
    let mut keys: Vec<u16> = cloned.iter().map(|&(k, _)| k).collect();
    keys.dedup();
    assert_eq!(keys.len(), cloned.len(), "a key yielded twice: {cloned:?}");
    cloned
}

fn map_op() -> impl Strategy<Value = MapOp> {
    let key = 0..KEYS;
    prop_oneof![
        24 => (key.clone(), any::<u32>()).prop_map(|(k, v)| MapOp::Insert(k, v)),
        12 => key.clone().prop_map(MapOp::Remove),
        12 => key.clone().prop_map(MapOp::Get),
        4 => key.clone().prop_map(MapOp::GetWith),
        4 => key.clone().prop_map(MapOp::PinnedGet),
        4 => key.clone().prop_map(MapOp::ContainsKey),
        4 => any::<u8>().prop_map(MapOp::Retain),
        4 => Just(MapOp::Iter),
        8 => (key, any::<u8>()).prop_map(|(k, how)| MapOp::Compute(k, how)),
        // Rare, so that the cache mostly holds something.
        1 => Just(MapOp::Clear),
    ]
}

type Seeds = (u64, u64, u64, u64);

fn engine(
    shards: usize,
    seeds: Seeds,
    max_entries: Option<u64>,
) -> ShardedCache<u16, u32, ahash::RandomState> {
    let builder = ShardedCache::<u16, u32>::builder().shards(shards);
    let builder = match max_entries {
        Some(n) => builder.max_entries(n),
        None => builder,
    };
    builder
        .hasher(ahash::RandomState::with_seeds(
            seeds.0, seeds.1, seeds.2, seeds.3,
        ))
        .build()
}

fn run_map_model(shards: usize, seeds: Seeds, ops: &[MapOp]) -> Result<(), TestCaseError> {
    let cache = engine(shards, seeds, None);
    let mut model: HashMap<u16, u32> = HashMap::new();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            MapOp::Insert(k, v) => {
                prop_assert!(cache.insert(k, v).is_ok(), "step {step}: insert refused");
                model.insert(k, v);
            }
            MapOp::Remove(k) => {
                let got = cache.remove(&k);
                prop_assert_eq!(got, model.remove(&k).is_some(), "step {} {:?}", step, op);
            }
            MapOp::Get(k) => prop_assert_eq!(
                cache.get(&k),
                model.get(&k).copied(),
                "step {} {:?}",
                step,
                op
            ),
            MapOp::GetWith(k) => prop_assert_eq!(
                cache.get_with(&k, |v| u64::from(*v) + 1),
                model.get(&k).map(|v| u64::from(*v) + 1),
                "step {} {:?}",
                step,
                op
            ),
            MapOp::PinnedGet(k) => prop_assert_eq!(
                cache.pin().get(&k),
                model.get(&k).copied(),
                "step {} {:?}",
                step,
                op
            ),
            MapOp::ContainsKey(k) => prop_assert_eq!(
                cache.contains_key(&k),
                model.contains_key(&k),
                "step {} {:?}",
                step,
                op
            ),
            MapOp::Retain(bit) => {
                let keep = bit_clear(bit);
                cache.retain(|_, v| keep(v));
                model.retain(|_, v| keep(v));
            }
            MapOp::Clear => {
                cache.clear();
                model.clear();
            }
            MapOp::Iter => {
                let mut expected: Vec<(u16, u32)> = model.iter().map(|(&k, &v)| (k, v)).collect();
                expected.sort_unstable();
                prop_assert_eq!(walk(&cache), expected, "step {}", step);
            }
            MapOp::Compute(k, how) => {
                let (expected, after) = computed_on(model.get(&k).copied(), how);
                prop_assert_eq!(
                    cache.compute(k, answer(how)).ok(),
                    Some(expected),
                    "step {}",
                    step
                );
                match after {
                    Some(v) => model.insert(k, v),
                    None => model.remove(&k),
                };
            }
        }
        if let Err(e) = cache.validate() {
            return Err(TestCaseError::fail(format!("step {step} {op:?}: {e}")));
        }
        prop_assert_eq!(cache.len(), model.len(), "len after step {} {:?}", step, op);
    }
    for k in 0..KEYS {
        prop_assert_eq!(
            cache.get(&k),
            model.get(&k).copied(),
            "final state of key {}",
            k
        );
    }
    Ok(())
}

fn run_bounded_model(
    shards: usize,
    max_entries: u64,
    seeds: Seeds,
    ops: &[MapOp],
) -> Result<(), TestCaseError> {
    let cache = engine(shards, seeds, Some(max_entries));
    // The last value written for each key; a removed key maps to nothing.
    let mut last: HashMap<u16, u32> = HashMap::new();
    for (step, op) in ops.iter().enumerate() {
        let k = match *op {
            MapOp::Insert(k, v) => {
                prop_assert!(cache.insert(k, v).is_ok(), "step {step}: insert refused");
                prop_assert_eq!(
                    cache.get(&k),
                    Some(v),
                    "step {}: a fresh insert is readable",
                    step
                );
                last.insert(k, v);
                k
            }
            MapOp::Remove(k) => {
                let was = cache.remove(&k);
                prop_assert!(
                    !was || last.contains_key(&k),
                    "step {step}: removed a key never written"
                );
                last.remove(&k);
                k
            }
            MapOp::Get(k) | MapOp::GetWith(k) | MapOp::PinnedGet(k) => k,
            MapOp::ContainsKey(k) => {
                prop_assert_eq!(cache.contains_key(&k), cache.get(&k).is_some());
                k
            }
            MapOp::Retain(bit) => {
                let keep = bit_clear(bit);
                cache.retain(|_, v| keep(v));
                last.retain(|_, v| keep(v));
                for (k, v) in walk(&cache) {
                    prop_assert!(keep(&v), "step {step}: retain kept {k} = {v}");
                }
                0
            }
            MapOp::Clear => {
                cache.clear();
                last.clear();
                prop_assert_eq!(cache.len(), 0, "step {}: len after clear", step);
                0
            }
            MapOp::Iter => {
                for (k, v) in walk(&cache) {
                    prop_assert_eq!(
                        Some(v),
                        last.get(&k).copied(),
                        "step {}: iter yielded {} = {}",
                        step,
                        k,
                        v
                    );
                }
                0
            }
            MapOp::Compute(k, how) => {
                // Eviction may have dropped the key, so the function sees what the cache holds,
                // which must be nothing or the last value written.
                let got = cache.compute(k, answer(how));
                prop_assert!(got.is_ok(), "step {step}: compute refused");
                let seen = match got.unwrap() {
                    Computed::StillNone | Computed::Inserted(_) => None,
                    Computed::Unchanged(v)
                    | Computed::Updated { old: v, .. }
                    | Computed::Removed(v) => Some(v),
                };
                prop_assert!(
                    seen.is_none() || seen == last.get(&k).copied(),
                    "step {step}: compute saw {seen:?}, last written {:?}",
                    last.get(&k)
                );
                let (_, after) = computed_on(seen, how);
                match after {
                    Some(v) => {
                        prop_assert_eq!(
                            cache.get(&k),
                            Some(v),
                            "step {}: a computed put is readable",
                            step
                        );
                        last.insert(k, v);
                    }
                    None => {
                        prop_assert_eq!(cache.get(&k), None, "step {}: computed away", step);
                        last.remove(&k);
                    }
                }
                k
            }
        };
        let got = cache.get(&k);
        prop_assert!(
            got.is_none() || got == last.get(&k).copied(),
            "step {} {:?}: read {:?}, last written {:?}",
            step,
            op,
            got,
            last.get(&k)
        );
        if let Err(e) = cache.validate() {
            return Err(TestCaseError::fail(format!("step {step} {op:?}: {e}")));
        }
        prop_assert!(
            cache.len() as u64 <= max_entries,
            "step {step}: len {} over {max_entries}",
            cache.len()
        );
    }
    Ok(())
}

fn seeds() -> impl Strategy<Value = Seeds> {
    (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sharded_one_shard_matches_hash_map(
        seeds in seeds(),
        ops in prop::collection::vec(map_op(), 1..300),
    ) {
        run_map_model(1, seeds, &ops)?;
    }

    #[test]
    fn sharded_four_shards_matches_hash_map(
        seeds in seeds(),
        ops in prop::collection::vec(map_op(), 1..300),
    ) {
        run_map_model(4, seeds, &ops)?;
    }

    #[test]
    fn bounded_sharded_returns_only_the_last_write(
        seeds in seeds(),
        shards in prop_oneof![Just(1usize), Just(4usize)],
        max_entries in 1..24u64,
        ops in prop::collection::vec(map_op(), 1..300),
    ) {
        run_bounded_model(shards, max_entries, seeds, &ops)?;
    }
}

/// The model tests above draw short sequences; this one walks one long deterministic sequence
/// through many rebuilds (growth and tombstone clearing) on both paths, so that a regression
/// there fails even if proptest's draw missed it.
#[test]
fn long_churn_through_rebuilds_matches_hash_map() {
    let mut ops = Vec::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..6_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = (x % 300) as u16;
        ops.push(match (x >> 32) % 4 {
            0 | 1 => MapOp::Insert(k, (x >> 40) as u32),
            2 => MapOp::Remove(k),
            _ => MapOp::Get(k),
        });
    }
    let cache = engine(2, (1, 2, 3, 4), None);
    let mut model = HashMap::new();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            MapOp::Insert(k, v) => {
                cache.insert(k, v).unwrap();
                model.insert(k, v);
            }
            MapOp::Remove(k) => {
                assert_eq!(cache.remove(&k), model.remove(&k).is_some(), "step {step}")
            }
            _ => {
                let k = match *op {
                    MapOp::Get(k) => k,
                    _ => unreachable!(),
                };
                assert_eq!(cache.get(&k), model.get(&k).copied(), "step {step}");
            }
        }
        if step % 50 == 0 {
            cache
                .validate()
                .unwrap_or_else(|e| panic!("step {step}: {e}"));
        }
    }
    cache.validate().unwrap();
    assert_eq!(cache.len(), model.len());
    for k in 0..300 {
        assert_eq!(cache.get(&k), model.get(&k).copied(), "key {k}");
    }
}

#[derive(Debug, Clone)]
enum TtlOp {
    Insert(u16, u32, Option<Duration>),
    Remove(u16),
    Get(u16),
    Advance(Duration),
    PurgeExpired,
}

fn ttl_op() -> impl Strategy<Value = TtlOp> {
    let key = 0..KEYS;
    prop_oneof![
        6 => (key.clone(), any::<u32>(), proptest::option::weighted(0.6, millis(2_000)))
            .prop_map(|(k, v, ttl)| TtlOp::Insert(k, v, ttl)),
        2 => key.clone().prop_map(TtlOp::Remove),
        4 => key.prop_map(TtlOp::Get),
        2 => millis(1_000).prop_map(TtlOp::Advance),
        1 => Just(TtlOp::PurgeExpired),
    ]
}

/// The generic engine with expiry against a map of values and deadlines. An expired entry may or
/// may not still be resident (writes sweep some), so `remove` of one may say either, and `len()`
/// lies between the live and the total count of the model, until `purge_expired` makes it exact.
fn run_ttl_model(shards: usize, seeds: Seeds, ops: &[TtlOp]) -> Result<(), TestCaseError> {
    let clock = MockClock::new();
    let cache: ShardedCache<u16, u32, _> = ShardedCache::builder()
        .shards(shards)
        .clock(Arc::new(clock.clone()))
        .hasher(ahash::RandomState::with_seeds(
            seeds.0, seeds.1, seeds.2, seeds.3,
        ))
        .build();
    // Value and deadline in nanoseconds (`None`: never).
    let mut model: HashMap<u16, (u32, Option<u64>)> = HashMap::new();
    let now = |clock: &MockClock| clock.now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let live = |entry: &(u32, Option<u64>), now: u64| entry.1.map_or(true, |d| d > now);
    for (step, op) in ops.iter().enumerate() {
        let t = now(&clock);
        match *op {
            TtlOp::Insert(k, v, ttl) => {
                cache
                    .insert_with_expiry(k, v, ttl.map(Expires::After))
                    .unwrap();
                model.insert(k, (v, ttl.map(|d| t + d.as_nanos() as u64)));
            }
            TtlOp::Remove(k) => {
                let got = cache.remove(&k);
                match model.remove(&k) {
                    Some(e) if live(&e, t) => prop_assert!(got, "step {step}: a live entry"),
                    Some(_) => {} // expired: swept already, or not
                    None => prop_assert!(!got, "step {step}: nothing to remove"),
                }
            }
            TtlOp::Get(k) => {
                let want = model.get(&k).filter(|e| live(e, t)).map(|e| e.0);
                prop_assert_eq!(cache.get(&k), want, "step {} {:?}", step, op);
            }
            TtlOp::Advance(d) => clock.advance(d),
            TtlOp::PurgeExpired => {
                cache.purge_expired();
                model.retain(|_, e| live(e, t));
                prop_assert_eq!(
                    cache.len(),
                    model.len(),
                    "step {}: after purge_expired",
                    step
                );
            }
        }
        if let Err(e) = cache.validate() {
            return Err(TestCaseError::fail(format!("step {step} {op:?}: {e}")));
        }
        let t = now(&clock);
        let live_count = model.values().filter(|e| live(e, t)).count();
        let len = cache.len();
        prop_assert!(
            live_count <= len && len <= model.len(),
            "step {step}: len {len}, model {live_count} live of {}",
            model.len()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sharded_with_expiry_matches_a_deadline_map(
        seeds in seeds(),
        shards in prop_oneof![Just(1usize), Just(4usize)],
        ops in prop::collection::vec(ttl_op(), 1..300),
    ) {
        run_ttl_model(shards, seeds, &ops)?;
    }
}
