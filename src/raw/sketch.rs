//! A frequency sketch: approximately how often each hash was seen recently, in four bytes a
//! tracked key, or up to four times that in a small shard's sketch, 32 KB at most (see
//! `SMALL_WIDTH_PER_ENTRY`); each row is rounded up to a power of two.
//!
//! Four rows of 4-bit counters (count-min), laid out so that all four counters of a hash share
//! one cache line (as Caffeine lays out its sketch): a hash raises one counter in each row, and its
//! estimate is the smallest of its four. Only the counters at the minimum are raised
//! (conservative update), which keeps collisions from inflating estimates. When the additions
//! reach twenty-five per tracked entry, every counter is halved, so the sketch forgets old
//! popularity and follows the workload (the "aging" of TinyLFU).

/// Counters per `u64` word.
const PER_WORD: usize = 16;
const ROWS: usize = 4;
/// Words in a block: one cache line, holding every counter of a hash (two words a row).
const BLOCK_WORDS: usize = 8;
/// Counters in each row for each entry the sketch is sized for (the policy sizes it for between
/// one and two times the shard's entries: up to eight bytes an entry, as Caffeine spends).
const WIDTH_PER_ENTRY: usize = 2;
/// Counters in each row for each entry a small sketch is sized for, up to [`SMALL_WIDTH_CAP`].
///
/// At `WIDTH_PER_ENTRY`, a counter takes about `SAMPLE_PER_ENTRY / WIDTH_PER_ENTRY`, twelve,
/// additions between two halvings (three at this width), against Caffeine's two or three (its sketch forgets five times sooner), and keys seen
/// once then share counters with keys seen often enough to rate a few points above nothing: a
/// candidate seen once looks as popular as the victim it should displace, or the other way
/// round. Up to four times as many counters (see [`SMALL_WIDTH_CAP`]) was measured over hasher
/// seeds
/// (`epochcache-sim --all --systems epochcache`, eight seeds): the scan at 1,000 entries +0.58
/// points (0.50 below quick_cache before, 0.08 above after), Zipf 0.7 at 10k entries (8 shards of
/// 1,250, twice the counters) +0.37,
/// lirs-sprite at 500 +0.27, lirs-multi3 +0.19, lirs-ps +0.12, no row lower; beyond the table
/// (74 rows from 100 to 50k entries) 13.4 points summed, lirs-ps at 100 entries +4.2, no row
/// lower by more than 0.4 (lirs-sprite at 600). For every shard it would cost about 24 bytes more
/// an entry; twice the counters for every shard (8 more) had given the scan +0.5. So only a
/// small sketch gets it (see [`SMALL_WIDTH_CAP`]).
const SMALL_WIDTH_PER_ENTRY: usize = 8;
/// The widest a row grows at [`SMALL_WIDTH_PER_ENTRY`]: 16,384 counters, a 32 KB sketch. The
/// policy sizes the sketch for twice the entries it holds each time they outgrow it (64, then
/// 130, 262, 526, 1,054, 2,110, 4,222 ...), so a shard of up to about 1,050 entries gets four
/// times the counters it had, one of up to about 2,100 twice, and a larger one the same: the
/// extra is at most 24 KB a shard (about 25 bytes an entry at 1,000 entries). A cache whose
/// shards hold more than about 2,100 entries each spends what it spent before; a new shard's
/// first sketch is 1 KB instead of 256 bytes.
const SMALL_WIDTH_CAP: usize = 16_384;
/// Additions per tracked entry after which every counter is halved (see `sample`).
const SAMPLE_PER_ENTRY: usize = 25;
/// Seeds that make the four row indices of a hash independent enough.
const SEEDS: [u64; ROWS] = [
    0x9e37_79b9_7f4a_7c15,
    0xc2b2_ae3d_27d4_eb4f,
    0x1656_67b1_9e37_79f9,
    0x85eb_ca77_c2b2_ae63,
];

/// Eight words on one cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct Block([u64; BLOCK_WORDS]);

/// A count-min sketch of 4-bit counters with periodic halving.
#[derive(Debug)]
pub(crate) struct FrequencySketch {
    /// A power-of-two number of blocks; each holds 32 counters of each row (two words a row,
    /// sixteen counters a word), and a hash uses one block.
    blocks: Vec<Block>,
    additions: usize,
    /// Additions after which every counter is halved: twenty-five per tracked entry (the policy
    /// tracks one to two times a shard's entries, so 25 to 50 per resident entry; the figures
    /// below were measured with hasher seed 0 alone, before a small sketch was widened). A resident entry's reads
    /// reach the sketch only when the eviction hand passes it, so its counts grow more slowly
    /// than in a sketch fed by every read, and a longer memory makes up for it: ten per tracked
    /// entry lost 0.9 points on the scan workload and up to 0.8 on Zipf at 10k entries. With a
    /// small-queue ghost hit going to the main queue, 25 beat 20 by 0.22 points on the
    /// 1,000-entry scan and 0.15 on Zipf 0.7 at 10k entries, lost 0.17 on lirs-sprite at 500
    /// entries (and gained 0.1 at 100 to 750), and moved no other row by more than 0.06; 30
    /// gained 0.1 more on that scan but lost 0.5 on lirs-sprite at 100 entries and 0.4 at 250,
    /// 40 (measured with the small queue's old ceiling) 0.8 at 500; 15 was no better than 20 on
    /// the scan. lirs-sprite at 500 entries swings by up to a point between neighbouring values
    /// (22: 76.31, 25: 76.77, 28: 75.62, 30: 76.60).
    sample: usize,
    /// The entries the sketch was sized for.
    entries: usize,
}

impl FrequencySketch {
    /// A sketch for about `entries` keys: `WIDTH_PER_ENTRY` counters a key in each row, or
    /// `SMALL_WIDTH_PER_ENTRY` up to `SMALL_WIDTH_CAP` if that is more.
    pub(crate) fn new(entries: usize) -> Self {
        let entries = entries.max(PER_WORD);
        let small = (entries * SMALL_WIDTH_PER_ENTRY).min(SMALL_WIDTH_CAP);
        let width = (entries * WIDTH_PER_ENTRY).max(small).next_power_of_two();
        FrequencySketch {
            blocks: vec![Block::default(); ROWS * width / PER_WORD / BLOCK_WORDS],
            additions: 0,
            sample: SAMPLE_PER_ENTRY * entries,
            entries,
        }
    }

    /// The entries the sketch was sized for.
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    /// Where `hash`'s counter in `row` is: a word and the bit offset in it. All four of a hash's
    /// counters lie in one 64-byte block of eight words (row `r` in word `2r` or `2r + 1`), so
    /// counting or estimating a key is one cache miss, not four.
    fn index(&self, hash: u64, row: usize) -> (usize, u32) {
        let mask = self.blocks.len() - 1;
        let block = ((hash ^ (hash >> 29)).wrapping_mul(SEEDS[0]) >> 32) as usize & mask;
        // Five bits a row, from a product of its own: which of the row's two words, which of
        // the word's sixteen counters.
        let pick = hash.wrapping_mul(SEEDS[row]) >> 59;
        let word = block * BLOCK_WORDS + 2 * row + (pick >> 4) as usize;
        (word, (pick & 0xf) as u32 * 4)
    }

    fn word(&self, word: usize) -> u64 {
        self.blocks[word / BLOCK_WORDS].0[word % BLOCK_WORDS]
    }

    fn word_mut(&mut self, word: usize) -> &mut u64 {
        &mut self.blocks[word / BLOCK_WORDS].0[word % BLOCK_WORDS]
    }

    fn counter(&self, (word, shift): (usize, u32)) -> u64 {
        (self.word(word) >> shift) & 0xf
    }

    /// The estimated count of `hash` (0 to 15).
    pub(crate) fn frequency(&self, hash: u64) -> u64 {
        (0..ROWS)
            .map(|row| self.counter(self.index(hash, row)))
            .min()
            .unwrap_or(0)
    }

    /// Counts one sighting of `hash`.
    pub(crate) fn increment(&mut self, hash: u64) {
        let at: [(usize, u32); ROWS] = std::array::from_fn(|row| self.index(hash, row));
        let min = at.iter().map(|&a| self.counter(a)).min().unwrap_or(0);
        if min == 15 {
            return;
        }
        for &(word, shift) in &at {
            if self.counter((word, shift)) == min {
                *self.word_mut(word) += 1 << shift;
            }
        }
        self.additions += 1;
        if self.additions >= self.sample {
            self.halve();
        }
    }

    /// Counts `n` sightings of `hash`: the same as `n` calls of [`increment`](Self::increment),
    /// in one pass over the four counters instead of `n` (the evictor folds up to fifteen reads
    /// of an entry at once). Conservative update raises only the counters at the minimum, one
    /// step at a time, so `k` steps leave each counter at the larger of itself and the minimum
    /// plus `k`; only when a halving falls among the steps are they taken one by one.
    pub(crate) fn increment_by(&mut self, hash: u64, n: u64) {
        let at: [(usize, u32); ROWS] = std::array::from_fn(|row| self.index(hash, row));
        let min = at.iter().map(|&a| self.counter(a)).min().unwrap_or(0);
        // Each step raises the minimum by one until it saturates; a saturated step adds nothing.
        let steps = n.min(15 - min);
        if steps == 0 {
            return;
        }
        if self.additions + steps as usize >= self.sample {
            for _ in 0..n {
                self.increment(hash);
            }
            return;
        }
        let target = min + steps;
        for &(word, shift) in &at {
            let counter = self.counter((word, shift));
            if counter < target {
                *self.word_mut(word) += (target - counter) << shift;
            }
        }
        self.additions += steps as usize;
    }

    fn halve(&mut self) {
        for word in self.blocks.iter_mut().flat_map(|block| &mut block.0) {
            *word = (*word >> 1) & 0x7777_7777_7777_7777;
        }
        self.additions /= 2;
    }
}

#[cfg(all(test, not(epochcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_hash_counts_in_one_cache_line_one_word_pair_a_row() {
        let sketch = FrequencySketch::new(1 << 12);
        for h in 0..10_000u64 {
            let hash = h.wrapping_mul(0x2545_f491_4f6c_dd1d);
            let at: Vec<_> = (0..ROWS).map(|row| sketch.index(hash, row)).collect();
            let block = at[0].0 / BLOCK_WORDS;
            for (row, &(word, shift)) in at.iter().enumerate() {
                assert_eq!(word / BLOCK_WORDS, block);
                assert_eq!(word % BLOCK_WORDS / 2, row);
                assert!(shift < 64 && shift % 4 == 0);
            }
        }
    }

    #[test]
    fn counting_at_once_is_counting_one_by_one() {
        // Two sketches fed the same sightings, one in batches and one a sighting at a time,
        // small enough that halvings fall inside batches too.
        let (mut batched, mut single) = (FrequencySketch::new(16), FrequencySketch::new(16));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (hash, n) = ((x >> 8) % 40, x % 17);
            batched.increment_by(hash, n);
            for _ in 0..n {
                single.increment(hash);
            }
            assert_eq!(batched.additions, single.additions);
        }
        for (a, b) in batched.blocks.iter().zip(&single.blocks) {
            assert_eq!(a.0, b.0);
        }
    }

    #[test]
    fn counts_saturate_and_age() {
        let mut sketch = FrequencySketch::new(64);
        for _ in 0..20 {
            sketch.increment(42);
        }
        assert_eq!(sketch.frequency(42), 15);
        assert_eq!(sketch.frequency(43), 0);
        sketch.halve();
        assert_eq!(sketch.frequency(42), 7);
    }

    /// How many of `probes` never-seen hashes a sketch for `entries` rates above 0 after it took
    /// `seen` hashes once each, a sample's worth or less (no halving).
    fn rated_above_nothing(entries: usize, seen: u64, probes: u64) -> u64 {
        let mut sketch = FrequencySketch::new(entries);
        let hash = |h: u64| h.wrapping_mul(0x2545_f491_4f6c_dd1d).rotate_left(17);
        (0..seen).for_each(|h| sketch.increment(hash(h)));
        assert!(sketch.additions == seen as usize, "no halving in between");
        (seen..seen + probes)
            .filter(|&h| sketch.frequency(hash(h)) > 0)
            .count() as u64
    }

    /// A shard of 1,000 entries tracks 1,054 keys (16,384 counters a row) and halves after 26,350
    /// additions; after 10,000 keys seen once, a key never seen must still look new. With two
    /// counters a row a tracked key (4,096 a row), as a large shard has, most did not.
    #[test]
    fn a_small_sketch_keeps_keys_seen_once_apart_from_new_ones() {
        let mistaken = rated_above_nothing(1_054, 10_000, 10_000);
        assert!(
            mistaken < 1_000,
            "{mistaken} of 10,000 new keys rated above 0"
        );
        // A large shard's sketch, two counters a row a tracked key, under the load per counter
        // that the small sketch had before it was widened (4,096 a row).
        let large = rated_above_nothing(1 << 16, 10_000 << 5, 10_000);
        assert!(large > 5_000, "{large} of 10,000 new keys rated above 0");
    }

    /// Bytes of the sketch the policy makes for `tracked` keys.
    fn bytes_for(tracked: usize) -> usize {
        FrequencySketch::new(tracked).blocks.len() * std::mem::size_of::<Block>()
    }

    /// The sizes the policy asks for as a shard grows (twice its entries each time they outgrow
    /// the sketch): four times the counters up to 1,054 tracked keys, twice at 2,110, the same
    /// from 4,222, and never more than 32 KB for the widening.
    #[test]
    fn a_small_shard_gets_up_to_four_times_the_counters_and_32_kb_at_most() {
        assert_eq!(bytes_for(64), 1 << 10);
        assert_eq!(bytes_for(526), 16 << 10);
        assert_eq!(bytes_for(1_054), 32 << 10);
        assert_eq!(bytes_for(2_110), 32 << 10);
        assert_eq!(bytes_for(4_222), 32 << 10);
        assert_eq!(bytes_for(1 << 16), 256 << 10);
    }

    #[test]
    fn frequent_hashes_outrank_rare_ones() {
        let mut sketch = FrequencySketch::new(1024);
        for round in 0..5u64 {
            for h in 0..2000u64 {
                let hash = h.wrapping_mul(0x2545_f491_4f6c_dd1d);
                if h < 100 || round == 0 {
                    sketch.increment(hash);
                }
            }
        }
        let hot: u64 = (0..100u64)
            .map(|h| sketch.frequency(h.wrapping_mul(0x2545_f491_4f6c_dd1d)))
            .sum();
        let cold: u64 = (1000..1100u64)
            .map(|h| sketch.frequency(h.wrapping_mul(0x2545_f491_4f6c_dd1d)))
            .sum();
        assert!(hot > 3 * cold, "hot {hot} cold {cold}");
    }
}
