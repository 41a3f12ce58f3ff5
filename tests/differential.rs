//! Differential tests of the three `BaseCache` implementations (`DictCache`, the reference, and
//! `ByteCache` unbounded and bounded with room to spare) driven by the same random operation
//! sequences, and clocks that misbehave: going back, jumping to the extremes, receding on every
//! read. Time is a `MockClock` or a clock of the test's own; nothing sleeps.

mod support;
use support::stats_add_up;

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use epochcache::{
    BaseCache, ByteCache, CacheError, Clock, DictCache, Expires, MockClock, SeparateBodyCache,
    ShardedCache,
};
use proptest::prelude::*;

// =============================================================================================
// 1. Differential testing: DictCache vs ByteCache (unbounded) vs ByteCache (bounded, roomy).
// =============================================================================================

const KEYS: usize = 9;

fn key(i: usize) -> String {
    match i {
        0 => String::new(),
        1 => "a".into(),
        2 => "a\0".into(),
        3 => "k".repeat(39),
        4 => "k".repeat(40),
        5 => "x".repeat(300),
        6 => "\0".into(),
        7 => "ключ".into(),
        _ => "k".repeat(38) + "é", // 40 bytes, a two-byte char across the inline limit
    }
}

#[derive(Debug, Clone)]
enum Exp {
    None,
    After(u64),   // 16 ns units
    AtRel(i64),   // 16 ns units from now
    UnixRel(i64), // seconds from now (whole seconds)
    AfterMax,
    UnixZero,
    BeforeEpoch,
    UnixMax,
}

#[derive(Debug, Clone)]
enum Op {
    Set(usize, Vec<u8>, Exp),
    Get(usize),
    GetWith(usize),
    Delete(usize),
    SetBody(usize, Vec<u8>),
    GetBody(usize),
    Close,
    Advance(u64), // nanoseconds, a multiple of 16
    Purge,
}

fn exp_strategy() -> impl Strategy<Value = Exp> {
    prop_oneof![
        3 => Just(Exp::None),
        3 => (0u64..20).prop_map(Exp::After),
        2 => (-20i64..20).prop_map(Exp::AtRel),
        2 => (-3i64..4).prop_map(Exp::UnixRel),
        1 => Just(Exp::AfterMax),
        1 => Just(Exp::UnixZero),
        1 => Just(Exp::BeforeEpoch),
        1 => Just(Exp::UnixMax),
    ]
}

fn value_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        5 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => (0usize..5000).prop_map(|n| vec![7u8; n]),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..KEYS, value_strategy(), exp_strategy()).prop_map(|(k, v, e)| Op::Set(k, v, e)),
        6 => (0..KEYS).prop_map(Op::Get),
        2 => (0..KEYS).prop_map(Op::GetWith),
        2 => (0..KEYS).prop_map(Op::Delete),
        3 => (0..KEYS, value_strategy()).prop_map(|(k, v)| Op::SetBody(k, v)),
        3 => (0..KEYS).prop_map(Op::GetBody),
        1 => Just(Op::Close),
        4 => prop_oneof![
            (0u64..40).prop_map(|n| n * 16),
            Just(1_000_000_000u64),
            Just(1_000_000_000u64 * 86_400 * 365 * 30),
        ]
        .prop_map(Op::Advance),
        1 => Just(Op::Purge),
    ]
}

fn to_expires(e: &Exp, now: u64) -> Option<Expires> {
    let at = |ns: i128| {
        let ns = ns.max(0) as u64;
        Expires::At(UNIX_EPOCH + Duration::from_nanos(ns))
    };
    match *e {
        Exp::None => None,
        Exp::After(u) => Some(Expires::After(Duration::from_nanos(u * 16))),
        Exp::AtRel(u) => Some(at(now as i128 + 16 * u as i128)),
        Exp::UnixRel(s) => Some(Expires::UnixSeconds(
            ((now / 1_000_000_000) as i64 + s).max(0) as u64,
        )),
        Exp::AfterMax => Some(Expires::After(Duration::MAX)),
        Exp::UnixZero => Some(Expires::UnixSeconds(0)),
        Exp::BeforeEpoch => Some(Expires::At(UNIX_EPOCH - Duration::from_secs(1))),
        Exp::UnixMax => Some(Expires::UnixSeconds(u64::MAX)),
    }
}

type Obs = Result<Option<Vec<u8>>, String>;

fn err_name(e: &CacheError) -> String {
    match e {
        CacheError::Closed => "Closed".into(),
        CacheError::TooLarge { .. } => "TooLarge".into(),
        other => format!("{other:?}"),
    }
}

fn obs_unit(r: Result<(), CacheError>) -> Obs {
    r.map(|()| None).map_err(|e| err_name(&e))
}

fn obs_val(r: Result<Option<Bytes>, CacheError>) -> Obs {
    r.map(|v| v.map(|b| b.to_vec())).map_err(|e| err_name(&e))
}

fn obs_body<B: Read>(r: Result<Option<B>, CacheError>) -> Obs {
    match r {
        Ok(Some(mut b)) => {
            let mut out = Vec::new();
            b.read_to_end(&mut out).unwrap();
            Ok(Some(out))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(err_name(&e)),
    }
}

fn apply<C: SeparateBodyCache>(c: &C, op: &Op, now: u64) -> Obs {
    match op {
        Op::Set(k, v, e) => obs_unit(c.set(&key(*k), Bytes::from(v.clone()), to_expires(e, now))),
        Op::Get(k) | Op::GetWith(k) => obs_val(c.get(&key(*k))),
        Op::Delete(k) => obs_unit(c.delete(&key(*k))),
        Op::SetBody(k, v) => obs_unit(c.set_body(&key(*k), Bytes::from(v.clone()))),
        Op::GetBody(k) => obs_body(c.get_body(&key(*k))),
        Op::Close => obs_unit(c.close()),
        Op::Advance(_) | Op::Purge => Ok(None),
    }
}

fn run_differential(ops: &[Op]) {
    let clock = MockClock::new();
    let arc: Arc<dyn Clock> = Arc::new(clock.clone());
    let dict = DictCache::new().with_clock(arc.clone());
    let unbounded = ByteCache::builder().clock(arc.clone()).build();
    let bounded = ByteCache::builder()
        .max_weight(1 << 40)
        .max_entries(1 << 20)
        .shards(2)
        .clock(arc.clone())
        .build();
    for (i, op) in ops.iter().enumerate() {
        if let Op::Advance(ns) = op {
            clock.advance(Duration::from_nanos(*ns));
            continue;
        }
        if let Op::Purge = op {
            unbounded.purge_expired();
            bounded.purge_expired();
        }
        let now = clock.now_nanos();
        let want = apply(&dict, op, now);
        let got_u = apply(&unbounded, op, now);
        let got_b = apply(&bounded, op, now);
        assert_eq!(
            got_u, want,
            "unbounded ByteCache, op {i} {op:?}\nops: {ops:?}"
        );
        assert_eq!(
            got_b, want,
            "bounded ByteCache, op {i} {op:?}\nops: {ops:?}"
        );
        if let Op::GetWith(k) = op {
            let w = |c: &ByteCache| {
                c.get_with(&key(*k), |v| v.to_vec())
                    .map_err(|e| err_name(&e))
            };
            assert_eq!(w(&unbounded), want, "get_with, op {i}");
            assert_eq!(w(&bounded), want, "get_with, op {i}");
        }
        unbounded.validate().unwrap();
        bounded.validate().unwrap();
    }
    // Finally every key, both namespaces, after a purge.
    unbounded.purge_expired();
    bounded.purge_expired();
    let now = clock.now_nanos();
    for k in 0..KEYS {
        for op in [Op::Get(k), Op::GetBody(k)] {
            let want = apply(&dict, &op, now);
            assert_eq!(apply(&unbounded, &op, now), want, "final {op:?}");
            assert_eq!(apply(&bounded, &op, now), want, "final {op:?}");
        }
    }
    unbounded.validate().unwrap();
    bounded.validate().unwrap();
    if !unbounded.is_closed_probe() {
        // Bounded cache: nothing was evicted with this budget.
        assert_eq!(bounded.stats().evicted, 0);
    }
}

trait ClosedProbe {
    fn is_closed_probe(&self) -> bool;
}
impl ClosedProbe for ByteCache {
    fn is_closed_probe(&self) -> bool {
        matches!(self.get("probe"), Err(CacheError::Closed))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn differential_dict_vs_byte_caches(ops in proptest::collection::vec(op_strategy(), 1..80)) {
        run_differential(&ops);
    }
}

/// Long seeded runs, with closes rare, so that long histories are compared.
#[test]
fn differential_long_seeded_runs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    for seed in 0..40u8 {
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
        );
        let ops = proptest::collection::vec(op_strategy(), 2000)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let ops: Vec<Op> = ops
            .into_iter()
            .enumerate()
            .filter(|(i, op)| !matches!(op, Op::Close) || *i > 1900)
            .map(|(_, op)| op)
            .collect();
        run_differential(&ops);
    }
}

// =============================================================================================
// 2. Clock anomalies.
// =============================================================================================

/// A clock set by hand to any value, backwards included.
#[derive(Debug, Clone, Default)]
struct SetClock(Arc<AtomicU64>);

impl SetClock {
    fn at(ns: u64) -> Self {
        SetClock(Arc::new(AtomicU64::new(ns)))
    }
    fn set(&self, ns: u64) {
        self.0.store(ns, Ordering::SeqCst);
    }
}

impl Clock for SetClock {
    fn now_nanos(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A clock that goes backwards on every read.
#[derive(Debug)]
struct Receding(AtomicU64);

impl Clock for Receding {
    fn now_nanos(&self) -> u64 {
        self.0.fetch_sub(7_777, Ordering::SeqCst)
    }
}

const T0: u64 = 1_704_067_200 * 1_000_000_000;
const SEC: u64 = 1_000_000_000;

#[test]
fn clock_going_backwards_after_expiry() {
    let clock = SetClock::at(T0);
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(1)
        .max_entries(100)
        .clock(Arc::new(clock.clone()))
        .build();
    cache
        .insert_with_expiry(1, 1, Some(Duration::from_secs(10).into()))
        .unwrap();
    cache
        .insert_with_expiry(2, 2, Some(Duration::from_secs(10).into()))
        .unwrap();
    clock.set(T0 + 10 * SEC);
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get(&2), None);
    clock.set(T0 + 20 * SEC);
    assert_eq!(cache.get(&1), None);
    // Entry 2 is swept (purge); entry 1 is left in the table.
    cache.purge_expired();
    assert_eq!(cache.len(), 0);
    clock.set(T0 + 5 * SEC);
    // Both were removed by the purge, so neither comes back when the clock goes back.
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.get(&2), None);
    cache.validate().unwrap();

    // Without a sweep in between, an entry observed expired is served again after the clock
    // goes back before its deadline (the documented consequence of a clock going backwards).
    cache
        .insert_with_expiry(
            3,
            3,
            Some(Expires::At(
                UNIX_EPOCH + Duration::from_nanos(T0 + 10 * SEC),
            )),
        )
        .unwrap();
    clock.set(T0 + 10 * SEC);
    assert_eq!(cache.get(&3), None);
    clock.set(T0 + 9 * SEC);
    assert_eq!(cache.get(&3), Some(3), "served again: the clock went back");
    cache.validate().unwrap();
    stats_add_up(&cache);
}

#[test]
fn clock_extremes_zero_and_max() {
    let clock = SetClock::at(T0);
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(2)
        .max_entries(64)
        .clock(Arc::new(clock.clone()))
        .build();
    for k in 0..32 {
        let e = match k % 4 {
            0 => None,
            1 => Some(Duration::from_secs(k).into()),
            2 => Some(Expires::UnixSeconds(u64::MAX)),
            _ => Some(Duration::MAX.into()),
        };
        cache.insert_with_expiry(k, k, e).unwrap();
    }
    // Years forward.
    clock.set(T0 + 200 * 365 * 86_400 * SEC);
    for k in 0..32 {
        let want = if k % 4 == 1 { None } else { Some(k) };
        assert_eq!(cache.get(&k), want, "key {k}");
    }
    // u64::MAX: everything with a deadline has passed it (deadlines round down 16 ns).
    clock.set(u64::MAX);
    for k in 0..32 {
        let want = if k % 4 == 0 { Some(k) } else { None };
        assert_eq!(cache.get(&k), want, "key {k} at u64::MAX");
    }
    // Writes at u64::MAX: an expiry "after" anything is already expired.
    for k in 100..140 {
        cache
            .insert_with_expiry(k, k, Some(Duration::from_secs(1).into()))
            .unwrap();
        assert_eq!(cache.get(&k), None);
    }
    cache.purge_expired();
    cache.validate().unwrap();
    assert_eq!(cache.len(), 8);
    // 0: nothing has expired; writes with deadlines still work.
    clock.set(0);
    for k in 200..260 {
        cache
            .insert_with_expiry(k, k, Some(Duration::from_secs(1).into()))
            .unwrap();
    }
    cache.purge_expired();
    cache.validate().unwrap();
    assert!(cache.len() <= 64);
    clock.set(u64::MAX);
    cache.purge_expired();
    cache.validate().unwrap();
    assert_eq!(cache.len(), 8);
    stats_add_up(&cache);
}

#[test]
fn a_clock_that_recedes_on_every_read_does_not_hang_or_panic() {
    let clock = Arc::new(Receding(AtomicU64::new(T0)));
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(4)
        .max_entries(50)
        .clock(clock.clone())
        .build();
    let bytes = ByteCache::builder()
        .max_weight(1 << 16)
        .clock(clock.clone())
        .build();
    for i in 0..20_000u64 {
        let e = Some(Expires::After(Duration::from_nanos(i % 50_000)));
        cache.insert_with_expiry(i % 300, i, e).unwrap();
        let _ = cache.get(&(i % 7));
        if i % 97 == 0 {
            cache.purge_expired();
        }
        bytes
            .set(&format!("k{}", i % 300), Bytes::from(vec![0; 40]), e)
            .unwrap();
        if i % 113 == 0 {
            bytes.purge_expired();
        }
    }
    cache.validate().unwrap();
    bytes.validate().unwrap();
    assert!(cache.len() <= 50);
    stats_add_up(&cache);
}

/// A forward-only clock with random jumps: once an entry that was not rewritten reads expired,
/// it never reads live again, whatever sweeps and evictions run.
#[test]
fn forward_clock_expired_stays_expired() {
    let clock = SetClock::at(T0);
    let cache: ShardedCache<u64, u64> = ShardedCache::builder()
        .shards(2)
        .max_entries(40)
        .clock(Arc::new(clock.clone()))
        .build();
    let mut seen_expired = std::collections::HashSet::new();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut now = T0;
    for _ in 0..50_000 {
        let r = next();
        let k = r % 60;
        match (r >> 8) % 4 {
            0 => {
                let d = (r >> 16) % 1000;
                cache
                    .insert_with_expiry(k, k, Some(Duration::from_nanos(d).into()))
                    .unwrap();
                seen_expired.remove(&k);
            }
            1 => {
                now = now.saturating_add((r >> 16) % 300);
                clock.set(now);
            }
            _ => match cache.get(&k) {
                Some(_) => assert!(!seen_expired.contains(&k), "key {k} came back"),
                None => {
                    seen_expired.insert(k);
                }
            },
        }
    }
    cache.validate().unwrap();
}
