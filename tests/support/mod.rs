//! Helpers shared by the integration tests.
#![allow(dead_code)]

/// SplitMix64: a tiny deterministic generator whose outputs for different seeds are
/// uncorrelated (a linear generator such as xorshift would make threads seeded one apart choose
/// keys in step).
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (slightly biased; fine for tests).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
