//! The data every system is measured on: keys, values and pre-generated index streams.
//!
//! Everything here is generated before any clock starts, from fixed seeds, so that two runs (and
//! two systems in one run) see exactly the same keys in exactly the same order.
//!
//! # Keys
//!
//! A key is a realistic cache key of 20 to 40 bytes (`key:…`, `user:…:v…`, `session:…:profile`, …),
//! the lengths the engine issue names, in five shapes of 20, 25, 32, 36 and 40 bytes, built from
//! a 64-bit mix of its index. The mix is a bijection, so keys with different indices differ:
//! indices `0..n` are a data set, and indices from `n` on are keys that the data set lacks (the
//! misses and the fresh inserts).
//!
//! # Streams
//!
//! A stream is a `Vec<u32>` of key indices that a thread walks in order, wrapping around. Zipf
//! ranks are spread over the key space through a fixed permutation, so that the hot keys are not
//! neighbours in memory. A set is marked by [`SET_BIT`].

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// The bit of a stream entry that makes the operation a set instead of a get.
pub const SET_BIT: u32 = 1 << 31;

/// The index part of a stream entry.
pub const INDEX_MASK: u32 = SET_BIT - 1;

/// A 64-bit mixing function (a bijection), used to make keys look like hashes.
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The key with index `i`: between 20 and 40 bytes, unique per index.
///
/// ```
/// let k = epochcache_bench::data::key(7);
/// assert!((20..=40).contains(&k.len()));
/// ```
pub fn key(i: u64) -> String {
    let h = mix64(i);
    match i % 5 {
        0 => format!("key:{h:016x}"),
        1 => format!("user:{h:016x}:v{:02}", h % 100),
        2 => format!("session:{h:016x}:profile"),
        3 => format!("tenant:{:04}:item:{h:016x}:en", h % 10_000),
        _ => format!("tenant:{:04}:cart:{h:016x}:v{:05}", h % 10_000, h % 100_000),
    }
}

/// The keys with indices `start..start + n`.
pub fn keys(start: u64, n: usize) -> Vec<String> {
    (start..start + n as u64).map(key).collect()
}

/// The value for key index `i`: `size` bytes in an allocation of its own.
///
/// Each value owns its buffer, so that reading many keys touches many reference counts and
/// cache lines, as real values would. It is cloned once here: the first clone of a `Bytes` made
/// from a `Vec` allocates its shared reference count (about 23 ns more than a later clone), and
/// left to the timed loop that cost would fall on whichever system stores the value first.
pub fn value(i: u64, size: usize) -> Bytes {
    let value = Bytes::from(vec![(i % 251) as u8; size]);
    drop(value.clone());
    value
}

/// The values for key indices `0..n`.
pub fn values(n: usize, size: usize) -> Vec<Bytes> {
    (0..n as u64).map(|i| value(i, size)).collect()
}

/// A stream of `len` key indices drawn uniformly from `0..n`.
pub fn uniform_stream(n: usize, len: usize, seed: u64) -> Vec<u32> {
    assert!(n > 0 && n <= INDEX_MASK as usize, "key space out of range");
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(0..n as u32)).collect()
}

/// A stream of `len` key indices over `0..n` whose ranks follow Zipf's law with exponent `s`.
///
/// Rank 1 is the hottest key; ranks are mapped to indices through a permutation fixed by `seed`
/// (the same for every thread of a run, so that every thread agrees on which keys are hot).
pub fn zipf_stream(n: usize, s: f64, len: usize, seed: u64, thread: u64) -> Vec<u32> {
    assert!(n > 0 && n <= INDEX_MASK as usize, "key space out of range");
    let mut perm: Vec<u32> = (0..n as u32).collect();
    perm.shuffle(&mut StdRng::seed_from_u64(seed));
    let zipf = Zipf::new(n as f64, s).expect("valid Zipf parameters");
    let mut rng = StdRng::seed_from_u64(seed ^ mix64(thread + 1));
    (0..len)
        .map(|_| {
            let rank = zipf.sample(&mut rng) as usize; // 1..=n
            perm[rank.clamp(1, n) - 1]
        })
        .collect()
}

/// Marks a fraction `set_ratio` of a stream's entries, chosen at random, as sets.
pub fn mark_sets(stream: &mut [u32], set_ratio: f64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for op in stream.iter_mut() {
        if rng.random_bool(set_ratio) {
            *op |= SET_BIT;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_are_unique_and_20_to_40_bytes() {
        let ks = keys(0, 20_000);
        assert!(ks.iter().all(|k| (20..=40).contains(&k.len())), "{ks:?}");
        let lengths: std::collections::BTreeSet<usize> = ks.iter().map(String::len).collect();
        assert_eq!(
            lengths.into_iter().collect::<Vec<_>>(),
            [20, 25, 32, 36, 40]
        );
        let distinct: HashSet<&String> = ks.iter().collect();
        assert_eq!(distinct.len(), ks.len());
        // A later range (misses, fresh inserts) shares no key with the data set.
        let later: HashSet<String> = keys(20_000, 1_000).into_iter().collect();
        assert!(ks.iter().all(|k| !later.contains(k)));
    }

    #[test]
    fn values_have_their_size() {
        assert_eq!(value(3, 64).len(), 64);
        assert_eq!(
            values(10, 4096).iter().map(Bytes::len).sum::<usize>(),
            40_960
        );
    }

    #[test]
    fn zipf_stream_is_skewed_and_in_range() {
        let n = 10_000;
        let s = zipf_stream(n, 0.99, 100_000, 1, 0);
        assert!(s.iter().all(|&i| (i as usize) < n));
        let mut counts = vec![0u32; n];
        for &i in &s {
            counts[i as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        // Under Zipf 0.99 over 10k keys the top 1% of keys takes roughly half of the draws;
        // under a uniform draw it would take 1%.
        let top: u32 = counts[..100].iter().sum();
        assert!(top > 30_000, "top 100 keys got {top} of 100000 draws");
        // Threads agree on the hot key.
        let other = zipf_stream(n, 0.99, 100_000, 1, 1);
        let hottest = |s: &[u32]| {
            let mut c = vec![0u32; n];
            s.iter().for_each(|&i| c[i as usize] += 1);
            (0..n).max_by_key(|&i| c[i]).unwrap()
        };
        assert_eq!(hottest(&s), hottest(&other));
    }

    #[test]
    fn uniform_stream_and_set_marks() {
        let mut s = uniform_stream(1_000, 50_000, 7);
        assert!(s.iter().all(|&i| i < 1_000));
        mark_sets(&mut s, 0.1, 8);
        let sets = s.iter().filter(|&&op| op & SET_BIT != 0).count();
        assert!((4_000..6_000).contains(&sets), "{sets} sets");
        assert!(s.iter().all(|&op| op & INDEX_MASK < 1_000));
    }
}
