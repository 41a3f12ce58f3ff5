//! The conformance suite: one set of behaviours every cache in the crate must have.
//!
//! Each check is a generic function over [`BaseCache`] or [`SeparateBodyCache`]; the
//! [`conformance_suite!`] macro turns them into `#[test]`s for one implementation, given a
//! constructor that takes the [`MockClock`] the cache must read. An implementation joins the suite
//! with one line in its own test file:
//!
//! ```ignore
//! mod conformance;
//! conformance::conformance_suite!(|clock: MockClock| DictCache::new().with_clock(Arc::new(clock)));
//! ```
#![allow(dead_code)]

use std::io::Read;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use epochcache::{BaseCache, CacheError, Clock, Expires, MockClock, SeparateBodyCache};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn read_all<R: Read>(mut r: R) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out)
        .expect("a body stream does not fail");
    out
}

pub fn get_of_a_missing_key_is_none<C: BaseCache>(c: &C, _clock: &MockClock) {
    assert_eq!(c.get("missing").unwrap(), None);
    c.set("present", b("v"), None).unwrap();
    assert_eq!(c.get("missing").unwrap(), None);
    assert_eq!(c.get("presen").unwrap(), None);
    assert_eq!(c.get("present2").unwrap(), None);
}

pub fn set_then_get<C: BaseCache>(c: &C, _clock: &MockClock) {
    c.set("k1", b("value1"), None).unwrap();
    c.set("k2", b("value2"), None).unwrap();
    assert_eq!(c.get("k1").unwrap(), Some(b("value1")));
    assert_eq!(c.get("k2").unwrap(), Some(b("value2")));
}

pub fn set_overwrites<C: BaseCache>(c: &C, _clock: &MockClock) {
    c.set("k", b("old"), None).unwrap();
    c.set("k", b("new"), None).unwrap();
    assert_eq!(c.get("k").unwrap(), Some(b("new")));
    c.set("k", b("newer"), None).unwrap();
    assert_eq!(c.get("k").unwrap(), Some(b("newer")));
}

pub fn delete_removes_and_tolerates_missing<C: BaseCache>(c: &C, _clock: &MockClock) {
    c.delete("never-set").unwrap();
    c.set("a", b("1"), None).unwrap();
    c.set("b", b("2"), None).unwrap();
    c.delete("a").unwrap();
    assert_eq!(c.get("a").unwrap(), None);
    assert_eq!(c.get("b").unwrap(), Some(b("2")));
    c.delete("a").unwrap();
    c.set("a", b("3"), None).unwrap();
    assert_eq!(c.get("a").unwrap(), Some(b("3")));
}

pub fn relative_expiry<C: BaseCache>(c: &C, clock: &MockClock) {
    c.set("k", b("v"), Some(Duration::from_secs(10).into()))
        .unwrap();
    clock.advance(Duration::from_secs(9));
    assert_eq!(c.get("k").unwrap(), Some(b("v")));
    clock.advance(Duration::from_millis(999));
    assert_eq!(c.get("k").unwrap(), Some(b("v")));
    clock.advance(Duration::from_millis(1));
    assert_eq!(c.get("k").unwrap(), None, "expired at its deadline");
    c.set("k", b("again"), None).unwrap();
    clock.advance(Duration::from_secs(1_000_000));
    assert_eq!(c.get("k").unwrap(), Some(b("again")), "no expiry is never");
}

pub fn absolute_expiry<C: BaseCache>(c: &C, clock: &MockClock) {
    let at = clock.now() + Duration::from_secs(5);
    c.set("k", b("v"), Some(Expires::At(at))).unwrap();
    clock.advance(Duration::from_secs(4));
    assert_eq!(c.get("k").unwrap(), Some(b("v")));
    clock.advance(Duration::from_secs(1));
    assert_eq!(c.get("k").unwrap(), None);
}

pub fn unix_timestamp_expiry<C: BaseCache>(c: &C, clock: &MockClock) {
    let now_secs = clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    c.set("k", b("v"), Some(Expires::UnixSeconds(now_secs + 3)))
        .unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(c.get("k").unwrap(), Some(b("v")));
    clock.advance(Duration::from_secs(1));
    assert_eq!(c.get("k").unwrap(), None);
}

pub fn past_expiry_replaces_and_hides<C: BaseCache>(c: &C, clock: &MockClock) {
    let pasts = [
        Expires::After(Duration::ZERO),
        Expires::At(clock.now() - Duration::from_secs(1)),
        Expires::At(UNIX_EPOCH - Duration::from_secs(100)),
        Expires::UnixSeconds(0),
    ];
    for (i, past) in pasts.into_iter().enumerate() {
        let key = format!("k{i}");
        c.set(&key, b("old"), None).unwrap();
        c.set(&key, b("new"), Some(past)).unwrap();
        assert_eq!(c.get(&key).unwrap(), None, "{past:?} is already expired");
    }
    // To a clock at the Unix epoch, too, where an expiry at or before it keeps a deadline
    // after now (deadlines are kept from 0, which means never).
    clock.set(UNIX_EPOCH);
    for past in [
        Expires::After(Duration::ZERO),
        Expires::At(UNIX_EPOCH - Duration::from_secs(100)),
        Expires::UnixSeconds(0),
    ] {
        c.set("epoch", b("old"), None).unwrap();
        c.set("epoch", b("new"), Some(past)).unwrap();
        assert_eq!(
            c.get("epoch").unwrap(),
            None,
            "{past:?}, clock at the epoch"
        );
    }
}

pub fn set_without_expiry_clears_an_expiry<C: BaseCache>(c: &C, clock: &MockClock) {
    c.set("k", b("v1"), Some(Duration::from_secs(1).into()))
        .unwrap();
    c.set("k", b("v2"), None).unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(c.get("k").unwrap(), Some(b("v2")));
}

pub fn unusual_keys_and_values<C: BaseCache>(c: &C, _clock: &MockClock) {
    let unicode = ["ключ", "キー", "🔑🗝️", "e\u{301}", "é", "\0nul\0"];
    for (i, key) in unicode.iter().enumerate() {
        c.set(key, Bytes::from(vec![i as u8; 3]), None).unwrap();
    }
    for (i, key) in unicode.iter().enumerate() {
        assert_eq!(
            c.get(key).unwrap(),
            Some(Bytes::from(vec![i as u8; 3])),
            "{key}"
        );
    }
    let long_key: String = "k".repeat(64 * 1024);
    let long_key_2 = format!("{}x", &long_key[1..]);
    c.set(&long_key, b("long"), None).unwrap();
    c.set(&long_key_2, b("long2"), None).unwrap();
    assert_eq!(c.get(&long_key).unwrap(), Some(b("long")));
    assert_eq!(c.get(&long_key_2).unwrap(), Some(b("long2")));

    c.set("", b("empty key"), None).unwrap();
    assert_eq!(c.get("").unwrap(), Some(b("empty key")));
    c.set("empty value", Bytes::new(), None).unwrap();
    assert_eq!(c.get("empty value").unwrap(), Some(Bytes::new()));

    let big: Bytes = (0..16 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    c.set("big", big.clone(), None).unwrap();
    assert_eq!(c.get("big").unwrap(), Some(big));
    c.delete("").unwrap();
    assert_eq!(c.get("").unwrap(), None);
    assert_eq!(c.get("empty value").unwrap(), Some(Bytes::new()));
}

pub fn many_keys<C: BaseCache>(c: &C, _clock: &MockClock) {
    let n = 20_000;
    for i in 0..n {
        c.set(&format!("key-{i}"), Bytes::from(format!("value-{i}")), None)
            .unwrap();
    }
    for i in (0..n).step_by(2) {
        c.delete(&format!("key-{i}")).unwrap();
    }
    for i in 0..n {
        let got = c.get(&format!("key-{i}")).unwrap();
        if i % 2 == 0 {
            assert_eq!(got, None, "key-{i} was deleted");
        } else {
            assert_eq!(got, Some(Bytes::from(format!("value-{i}"))), "key-{i}");
        }
    }
    for i in (0..n).step_by(2) {
        c.set(&format!("key-{i}"), Bytes::from(format!("again-{i}")), None)
            .unwrap();
    }
    for i in (0..n).step_by(2) {
        let want = Bytes::from(format!("again-{i}"));
        assert_eq!(c.get(&format!("key-{i}")).unwrap(), Some(want));
    }
}

pub fn close_semantics<C: BaseCache>(c: &C, _clock: &MockClock) {
    c.set("k", b("v"), None).unwrap();
    c.close().unwrap();
    assert!(matches!(c.get("k"), Err(CacheError::Closed)));
    assert!(matches!(c.set("k", b("w"), None), Err(CacheError::Closed)));
    assert!(matches!(c.delete("k"), Err(CacheError::Closed)));
    c.close().unwrap();
    assert!(matches!(c.get("other"), Err(CacheError::Closed)));
}

pub fn works_as_a_trait_object<C: BaseCache + 'static>(c: C, _clock: &MockClock) {
    let shared: Arc<dyn BaseCache> = Arc::new(c);
    let boxed: Box<dyn BaseCache> = Box::new(Arc::clone(&shared));
    boxed.set("k", b("v"), None).unwrap();
    assert_eq!(shared.get("k").unwrap(), Some(b("v")));
}

/// Several threads set and get shared and private keys; every value read must be one that was
/// written for that key, and each private key ends with its thread's last value.
pub fn concurrent_readers_and_writers<C: BaseCache>(c: &C, _clock: &MockClock) {
    const THREADS: usize = 4;
    const ROUNDS: usize = 2_000;
    thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                for i in 0..ROUNDS {
                    let shared = format!("shared-{}", i % 8);
                    let private = format!("private-{t}-{}", i % 16);
                    c.set(&shared, Bytes::from(format!("{shared}={t}:{i}")), None)
                        .unwrap();
                    c.set(&private, Bytes::from(format!("{private}={i}")), None)
                        .unwrap();
                    for key in [&shared, &private, &format!("shared-{}", (i + 3) % 8)] {
                        if let Some(v) = c.get(key).unwrap() {
                            let v = std::str::from_utf8(&v).expect("values are text");
                            let (k, _) = v.split_once('=').expect("values are key=...");
                            assert_eq!(
                                k,
                                key.as_str(),
                                "a value read under {key} was written for {k}"
                            );
                        }
                    }
                    if i % 5 == 0 {
                        c.delete(&shared).unwrap();
                    }
                }
            });
        }
    });
    for t in 0..THREADS {
        for j in 0..16 {
            let key = format!("private-{t}-{j}");
            let last = (0..ROUNDS).rev().find(|i| i % 16 == j).unwrap();
            assert_eq!(
                c.get(&key).unwrap(),
                Some(Bytes::from(format!("{key}={last}")))
            );
        }
    }
}

pub fn body_and_metadata_are_independent<C: SeparateBodyCache>(c: &C, clock: &MockClock) {
    assert!(c.get_body("k").unwrap().is_none());
    c.set_body("k", b("body-1")).unwrap();
    assert_eq!(c.get("k").unwrap(), None, "a body alone is no metadata");
    assert_eq!(read_all(c.get_body("k").unwrap().unwrap()), b"body-1");

    c.set("k", b("meta-1"), Some(Duration::from_secs(5).into()))
        .unwrap();
    assert_eq!(
        read_all(c.get_body("k").unwrap().unwrap()),
        b"body-1",
        "set leaves the body"
    );
    c.set_body("k", b("body-2")).unwrap();
    assert_eq!(
        c.get("k").unwrap(),
        Some(b("meta-1")),
        "set_body leaves the metadata"
    );
    assert_eq!(read_all(c.get_body("k").unwrap().unwrap()), b"body-2");

    clock.advance(Duration::from_secs(5));
    assert_eq!(c.get("k").unwrap(), None, "the metadata expired");
    assert_eq!(
        read_all(c.get_body("k").unwrap().unwrap()),
        b"body-2",
        "a body has no expiry"
    );

    c.set("only-meta", b("m"), None).unwrap();
    assert!(c.get_body("only-meta").unwrap().is_none());

    c.set("k", b("meta-2"), None).unwrap();
    c.delete("k").unwrap();
    assert_eq!(c.get("k").unwrap(), None);
    assert!(
        c.get_body("k").unwrap().is_none(),
        "delete removes the body too"
    );
}

pub fn body_stream_survives_replace_and_delete<C: SeparateBodyCache>(c: &C, _clock: &MockClock) {
    let body: Bytes = (0..1024 * 1024).map(|i| (i % 253) as u8).collect();
    c.set_body("k", body.clone()).unwrap();
    let mut reader = c.get_body("k").unwrap().unwrap();
    let mut head = vec![0u8; 1000];
    reader.read_exact(&mut head).unwrap();
    c.set_body("k", b("replacement")).unwrap();
    c.delete("k").unwrap();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    head.extend_from_slice(&rest);
    assert_eq!(head, &body[..]);
}

pub fn body_operations_after_close<C: SeparateBodyCache>(c: &C, _clock: &MockClock) {
    c.set_body("k", b("body")).unwrap();
    c.close().unwrap();
    assert!(matches!(c.set_body("k", b("x")), Err(CacheError::Closed)));
    assert!(matches!(c.get_body("k"), Err(CacheError::Closed)));
}

/// Generates the conformance `#[test]`s for one implementation of [`BaseCache`].
///
/// `$make` is an expression of a function from [`MockClock`] to the cache under test.
macro_rules! base_cache_suite {
    ($make:expr) => {
        mod base_conformance {
            #[allow(unused_imports)]
            use super::*;
            use epochcache::MockClock;

            fn fresh() -> (MockClock, impl epochcache::BaseCache + 'static) {
                let clock = MockClock::new();
                let cache = ($make)(clock.clone());
                (clock, cache)
            }

            crate::conformance::base_cache_suite!(@tests
                get_of_a_missing_key_is_none, set_then_get, set_overwrites,
                delete_removes_and_tolerates_missing, relative_expiry, absolute_expiry,
                unix_timestamp_expiry, past_expiry_replaces_and_hides,
                set_without_expiry_clears_an_expiry, unusual_keys_and_values, many_keys,
                close_semantics, concurrent_readers_and_writers);

            #[test]
            fn works_as_a_trait_object() {
                let (clock, cache) = fresh();
                super::conformance::works_as_a_trait_object(cache, &clock);
            }
        }
    };
    (@tests $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let (clock, cache) = fresh();
                super::conformance::$name(&cache, &clock);
            }
        )*
    };
}

/// Generates the conformance `#[test]`s for one implementation of [`SeparateBodyCache`].
macro_rules! separate_body_suite {
    ($make:expr) => {
        mod body_conformance {
            #[allow(unused_imports)]
            use super::*;
            use epochcache::MockClock;

            fn fresh() -> (MockClock, impl epochcache::SeparateBodyCache + 'static) {
                let clock = MockClock::new();
                let cache = ($make)(clock.clone());
                (clock, cache)
            }

            crate::conformance::separate_body_suite!(@tests body_and_metadata_are_independent,
                body_stream_survives_replace_and_delete, body_operations_after_close);
        }
    };
    (@tests $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let (clock, cache) = fresh();
                super::conformance::$name(&cache, &clock);
            }
        )*
    };
}

#[allow(unused_imports)]
pub(crate) use {base_cache_suite, separate_body_suite};

/// Keeps `Clock` in use for implementations whose constructor only needs `MockClock`.
pub fn clock_of(clock: MockClock) -> Arc<dyn Clock> {
    Arc::new(clock)
}
