//! Bodies, metadata and their two namespaces in `ByteCache`, as the object API's docs describe
//! them: body streams that stay whole whatever happens to the entry, `BodyReader` keeping the
//! `Read` and `BufRead` contracts, the budget counting each record once, the listener telling a
//! body from metadata, and keys around the inline limit never meeting in the other namespace.
//! Time is a `MockClock`; nothing sleeps.

use std::io::{BufRead, ErrorKind, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use epochcache::{
    BaseCache, BodyReader, ByteCache, CacheError, MockClock, RemovalCause, SeparateBodyCache,
};

/// A body whose every byte depends on its position and on `seed`, so that a stream that mixed two
/// bodies, lost a piece or repeated one is caught.
fn patterned(seed: u8, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// Keys of the lengths and bytes the inline packing is most likely to get wrong.
fn hard_keys() -> Vec<String> {
    let mut keys = vec![
        String::new(),
        "\0".into(),
        "\u{ff}".into(),
        "\u{7f}\u{80}".into(),
        "k".repeat(38) + "é", // 40 bytes, a two-byte char across the limit
        "k".repeat(37) + "é", // 39 bytes, the char ends exactly at it
        "k".repeat(38) + "\u{1F600}", // 42 bytes
    ];
    for len in [1, 7, 8, 9, 38, 39, 40, 41, 255, 256] {
        keys.push("a".repeat(len));
        keys.push("\0".repeat(len));
        keys.push("\u{ff}".repeat(len / 2) + &"x".repeat(len % 2));
        // The body namespace's header byte, spelled out at the key's start.
        keys.push(format!("\u{1}{}", "b".repeat(len.saturating_sub(1))));
    }
    keys.sort();
    keys.dedup();
    keys
}

fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

/// What the budget counts for one record, as `ByteCacheBuilder::max_weight` documents it.
fn doc_weight(key: &str, value_len: usize) -> u64 {
    let key_weight = if key.len() > 39 { key.len() + 1 } else { 0 };
    (value_len + key_weight) as u64 + 112
}

#[test]
fn body_reader_keeps_the_read_and_bufread_contracts() {
    let body = patterned(3, 1000);
    let mut r = BodyReader::new(body.clone());
    let mut got = Vec::new();
    // Odd chunk sizes, the empty buffer among them, then ones larger than what is left.
    for size in [0usize, 1, 0, 7, 13, 256, 0, 1, 600, 5000] {
        let before = r.remaining();
        let mut buf = vec![0xAAu8; size];
        let n = r.read(&mut buf).unwrap();
        assert_eq!(n, size.min(before), "read({size}) with {before} left");
        assert_eq!(r.remaining(), before - n);
        got.extend_from_slice(&buf[..n]);
        assert!(
            buf[n..].iter().all(|&b| b == 0xAA),
            "wrote past what it read"
        );
    }
    assert_eq!(got, &body[..]);
    // After the end: 0 every time, for any buffer, and never an error.
    for size in [0, 1, 10] {
        assert_eq!(r.read(&mut vec![0; size]).unwrap(), 0);
    }
    assert!(r.fill_buf().unwrap().is_empty());
    r.consume(10); // past the end: nothing happens
    assert_eq!(r.remaining(), 0);

    // read_exact past the end fails with UnexpectedEof.
    let mut r = BodyReader::new(Bytes::from_static(b"abc"));
    let err = r.read_exact(&mut [0; 4]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);

    // BufRead: fill_buf shows the rest, consume moves on, lines read across.
    let mut r = BodyReader::new(Bytes::from_static(b"one\ntwo\nthree"));
    assert_eq!(r.fill_buf().unwrap(), b"one\ntwo\nthree");
    r.consume(0);
    assert_eq!(r.remaining(), 13);
    let lines: Vec<String> = r.lines().map(Result::unwrap).collect();
    assert_eq!(lines, ["one", "two", "three"]);

    // A clone reads on from where the original was, independently of it.
    let mut a = BodyReader::new(Bytes::from_static(b"abcdef"));
    a.read_exact(&mut [0; 2]).unwrap();
    let b = a.clone();
    assert_eq!(read_all(&mut a), b"cdef");
    assert_eq!(b.remaining(), 4);
    assert_eq!(&b.into_bytes()[..], b"cdef");
    assert_eq!(a.remaining(), 0);
}

#[test]
fn a_stream_stays_whole_while_the_entry_is_replaced_deleted_cleared_and_closed() {
    let cache = ByteCache::builder().max_weight(64 << 20).build();
    let body = patterned(9, 300_000);
    cache.set("k", Bytes::from_static(b"meta"), None).unwrap();
    cache.set_body("k", body.clone()).unwrap();
    let mut readers: Vec<BodyReader> = (0..5)
        .map(|_| cache.get_body("k").unwrap().unwrap())
        .collect();
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); readers.len()];
    let step = |readers: &mut [BodyReader], got: &mut [Vec<u8>], size: usize| {
        for (r, g) in readers.iter_mut().zip(got.iter_mut()) {
            let mut buf = vec![0; size];
            let n = r.read(&mut buf).unwrap();
            g.extend_from_slice(&buf[..n]);
        }
    };
    step(&mut readers, &mut got, 1);
    cache.set_body("k", patterned(1, 10)).unwrap();
    step(&mut readers, &mut got, 0);
    cache.set("k", Bytes::from_static(b"meta2"), None).unwrap();
    step(&mut readers, &mut got, 4097);
    cache.delete("k").unwrap();
    step(&mut readers, &mut got, 3);
    cache.set_body("k", patterned(2, 20)).unwrap();
    cache.clear().unwrap();
    step(&mut readers, &mut got, 100_000);
    cache.close().unwrap();
    drop(cache);
    for (r, mut g) in readers.into_iter().zip(got) {
        g.extend(read_all(r));
        assert!(g == body[..], "a stream changed under its reader");
    }
}

#[test]
fn streams_read_while_other_threads_replace_delete_clear_and_close_are_each_one_whole_body() {
    let cache = Arc::new(ByteCache::builder().shards(4).max_weight(256 << 20).build());
    let lens = [0usize, 1, 39, 40, 4096, 70_001];
    cache.set_body("k", patterned(0, lens[0])).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(4));
    let writers: Vec<_> = (0..2u8)
        .map(|w| {
            let (cache, stop, start) = (Arc::clone(&cache), Arc::clone(&stop), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let seed = (i % 100) as u8 * 2 + w;
                    let _ = cache.set_body("k", patterned(seed, lens[i % lens.len()]));
                    let _ = cache.set("k", Bytes::from(vec![seed; 3]), None);
                    match i % 7 {
                        0 => drop(cache.delete("k")),
                        3 => drop(cache.clear()),
                        _ => {}
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (cache, start) = (Arc::clone(&cache), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                let mut checked = 0;
                let mut round = 0usize;
                // Until 300 streams were read whole: the writers may be descheduled with the key
                // deleted for a while, so misses yield instead of counting.
                while checked < 300 {
                    let Ok(Some(mut r)) = cache.get_body("k") else {
                        thread::yield_now();
                        continue;
                    };
                    round += 1;
                    let len = r.remaining();
                    let mut got = Vec::with_capacity(len);
                    let mut buf = vec![0; 2001];
                    loop {
                        let n = r.read(&mut buf[..round % 3 * 1000 + 1]).unwrap();
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                    assert!(lens.contains(&got.len()), "a body of {} bytes", got.len());
                    if let Some(&first) = got.first() {
                        assert!(got == patterned(first, got.len())[..], "a mixed body");
                    }
                    checked += 1;
                }
                checked
            })
        })
        .collect();
    let checked: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(checked, 600);
    // Every replacement and removal gave its weight back once: what is left weighs what is
    // stored.
    let meta = cache
        .get("k")
        .unwrap()
        .map_or(0, |m| doc_weight("k", m.len()));
    let body = cache
        .get_body("k")
        .unwrap()
        .map_or(0, |b| doc_weight("k", b.remaining()));
    assert_eq!(cache.weight(), meta + body);
    cache.close().unwrap();
    assert!(cache.is_empty());
    assert_eq!(cache.weight(), 0);
}

#[test]
fn the_budget_counts_each_record_once_as_documented_and_gives_it_back_once() {
    for key in hard_keys() {
        let cache = ByteCache::builder().max_weight(1 << 20).build();
        cache.set(&key, Bytes::from(vec![1; 10]), None).unwrap();
        assert_eq!(cache.weight(), doc_weight(&key, 10), "{key:?}");
        cache.set_body(&key, Bytes::from(vec![2; 1000])).unwrap();
        let both = doc_weight(&key, 10) + doc_weight(&key, 1000);
        assert_eq!(cache.weight(), both, "{key:?}");
        // Metadata set again: the body's weight is not counted again.
        cache.set(&key, Bytes::from(vec![3; 10]), None).unwrap();
        assert_eq!(cache.weight(), both, "{key:?}");
        // A body above the entry limit is refused, the old one kept and counted as it was.
        let err = cache
            .set_body(&key, Bytes::from(vec![4; 200_000]))
            .unwrap_err();
        assert!(matches!(err, CacheError::TooLarge { .. }), "{err}");
        assert_eq!(
            read_all(cache.get_body(&key).unwrap().unwrap()),
            vec![2; 1000]
        );
        assert_eq!(cache.weight(), both, "{key:?}");
        cache.set_body(&key, Bytes::from(vec![5; 7])).unwrap();
        assert_eq!(
            cache.weight(),
            doc_weight(&key, 10) + doc_weight(&key, 7),
            "{key:?}"
        );
        cache.delete(&key).unwrap();
        assert_eq!((cache.weight(), cache.len()), (0, 0), "{key:?}");
        cache.delete(&key).unwrap();
        assert_eq!(cache.weight(), 0, "deleted twice, given back once: {key:?}");
        let stats = cache.stats();
        assert_eq!((stats.weight, stats.entries, stats.deleted), (0, 0, 2));
        assert_eq!(stats.replaced, 2);
        cache.set_body(&key, Bytes::from(vec![6; 5])).unwrap();
        cache.set(&key, Bytes::new(), None).unwrap();
        cache.clear().unwrap();
        assert_eq!(cache.weight(), 0, "{key:?}");
        cache.set_body(&key, Bytes::from(vec![6; 5])).unwrap();
        cache.close().unwrap();
        assert_eq!(cache.weight(), 0, "{key:?}");
        cache.validate().unwrap();
    }
}

#[test]
fn metadata_and_bodies_never_meet_whatever_the_key() {
    let keys = hard_keys();
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    let cache = ByteCache::builder()
        .shards(2)
        .eviction_listener(move |k: &str, v: &Bytes, is_body, cause| {
            log.lock()
                .unwrap()
                .push((k.to_string(), v.clone(), is_body, cause));
        })
        .build();
    for k in &keys {
        cache.set(k, Bytes::from(format!("m:{k}")), None).unwrap();
    }
    for k in keys.iter().step_by(2) {
        cache.set_body(k, Bytes::from(format!("b:{k}"))).unwrap();
    }
    assert!(
        events.lock().unwrap().is_empty(),
        "no write replaced another key's record"
    );
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            cache.get(k).unwrap(),
            Some(Bytes::from(format!("m:{k}"))),
            "{k:?}"
        );
        let body = cache.get_body(k).unwrap().map(read_all);
        let want = (i % 2 == 0).then(|| format!("b:{k}").into_bytes());
        assert_eq!(body, want, "{k:?}");
    }
    cache.close().unwrap();
    let mut seen = events.lock().unwrap().clone();
    assert_eq!(seen.len(), keys.len() + keys.len().div_ceil(2));
    seen.sort_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2)));
    for (k, v, is_body, cause) in seen {
        assert_eq!(cause, RemovalCause::Closed);
        let prefix = if is_body { "b" } else { "m" };
        assert_eq!(
            v,
            Bytes::from(format!("{prefix}:{k}")),
            "the listener's key and namespace"
        );
    }
}

#[test]
fn the_listener_tells_bodies_from_metadata_for_every_cause() {
    let clock = MockClock::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    let cache = ByteCache::builder()
        .clock(Arc::new(clock.clone()))
        .time_to_live(Duration::from_secs(10))
        .record_stats()
        .eviction_listener(move |k: &str, _: &Bytes, is_body, cause| {
            log.lock().unwrap().push((k.to_string(), is_body, cause));
        })
        .build();
    let long = "L".repeat(300);
    for key in ["k", long.as_str()] {
        cache
            .set(
                key,
                Bytes::from_static(b"m1"),
                Some(Duration::from_secs(60).into()),
            )
            .unwrap();
        cache.set_body(key, Bytes::from_static(b"b1")).unwrap();
        cache
            .set(
                key,
                Bytes::from_static(b"m2"),
                Some(Duration::from_secs(60).into()),
            )
            .unwrap();
        cache.set_body(key, Bytes::from_static(b"b2")).unwrap();
        let take = || std::mem::take(&mut *events.lock().unwrap());
        assert_eq!(
            take(),
            [
                (key.to_string(), false, RemovalCause::Replaced),
                (key.to_string(), true, RemovalCause::Replaced)
            ]
        );
        // The body lives by the builder's time to live; the metadata, set for longer, outlives it.
        clock.advance(Duration::from_secs(10));
        assert!(cache.get_body(key).unwrap().is_none(), "the body expired");
        assert_eq!(cache.get(key).unwrap(), Some(Bytes::from_static(b"m2")));
        cache.purge_expired();
        assert_eq!(take(), [(key.to_string(), true, RemovalCause::Expired)]);
        cache.set_body(key, Bytes::from_static(b"b3")).unwrap();
        cache.delete(key).unwrap();
        assert_eq!(
            take(),
            [
                (key.to_string(), true, RemovalCause::Deleted),
                (key.to_string(), false, RemovalCause::Deleted)
            ]
        );
        // Metadata written already expired is told as expired, and leaves the body be.
        cache.set_body(key, Bytes::from_static(b"b4")).unwrap();
        cache
            .set(key, Bytes::from_static(b"m3"), Some(Duration::ZERO.into()))
            .unwrap();
        assert_eq!(take(), [(key.to_string(), false, RemovalCause::Expired)]);
        assert_eq!(read_all(cache.get_body(key).unwrap().unwrap()), b"b4");
        cache.delete(key).unwrap();
        take();
    }
    // Body reads count as reads; contains_key does not.
    let before = cache.stats();
    cache.set_body("s", Bytes::new()).unwrap();
    assert!(cache.get_body("s").unwrap().is_some());
    assert!(cache.get_body("none").unwrap().is_none());
    assert!(
        !cache.contains_key("s").unwrap(),
        "a body alone is no metadata"
    );
    let after = cache.stats();
    assert_eq!(
        (after.hits - before.hits, after.misses - before.misses),
        (1, 1)
    );
}

#[test]
fn every_operation_fails_closed_after_close_and_a_held_stream_still_reads() {
    let clock = MockClock::new();
    let cache = ByteCache::builder().clock(Arc::new(clock)).build();
    cache.set_body("k", Bytes::from_static(b"body")).unwrap();
    let held = cache.get_body("k").unwrap().unwrap();
    cache.close().unwrap();
    let closed = |r: Result<(), CacheError>| matches!(r, Err(CacheError::Closed));
    assert!(closed(cache.set("k", Bytes::new(), None)));
    assert!(closed(cache.set(
        "k",
        Bytes::new(),
        Some(Duration::ZERO.into())
    )));
    assert!(closed(cache.set_body("k", Bytes::new())));
    assert!(closed(cache.delete("k")));
    assert!(closed(cache.clear()));
    assert!(matches!(cache.get("k"), Err(CacheError::Closed)));
    assert!(matches!(cache.get_body("k"), Err(CacheError::Closed)));
    assert!(matches!(
        cache.get_with("k", |v| v.len()),
        Err(CacheError::Closed)
    ));
    assert!(matches!(cache.contains_key("k"), Err(CacheError::Closed)));
    assert!(cache.close().is_ok());
    assert_eq!(read_all(held), b"body");
}

/// `delete` removes the body, then the metadata, and a listener panic on the first must not keep
/// the second from happening; when the listener panics on both, the first panic (the body's) goes
/// on, as everywhere in the crate, and the second is dropped.
#[test]
fn delete_lets_the_first_of_two_listener_panics_go_on() {
    let cache = ByteCache::builder()
        .eviction_listener(|_: &str, _: &Bytes, is_body, cause| {
            if cause == RemovalCause::Deleted {
                panic!("{}", if is_body { "body" } else { "metadata" });
            }
        })
        .build();
    cache.set("k", Bytes::from_static(b"meta"), None).unwrap();
    cache.set_body("k", Bytes::from_static(b"body")).unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cache.delete("k")));
    let payload = outcome.expect_err("the listener panicked on both removals");
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or("(not a string)");
    assert_eq!(message, "body", "the first removal's panic goes on");
    assert!(cache.get("k").unwrap().is_none(), "the metadata went too");
    assert!(cache.get_body("k").unwrap().is_none(), "the body went");
}
