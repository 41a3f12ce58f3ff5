//! Tail latency of get and set while another thread writes at a fixed rate.
//!
//! Throughput hides pauses: a lock held during maintenance, a resize, an eviction sweep. Here one
//! thread times each of its operations (a Zipf mix of gets and sets) into HDR histograms while a
//! second thread replaces values [`WRITER_RATE`] times a second. The rate is the same for every
//! system: a writer running flat out gave the faster writers' readers more interference to
//! measure (on the device run, dashmap's reader shared its cache with 1.35x the writes
//! epochcache's did). The percentiles include the cost of reading the clock twice per operation
//! (some tens of nanoseconds, the same for every system).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::data::{INDEX_MASK, SET_BIT};
use crate::systems::Contender;
use crate::workload::DataSet;

/// Percentiles of one operation, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Operations recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// The slowest operation.
    pub max: u64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The latencies of one system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Of the timed thread's gets.
    pub get: Percentiles,
    /// Of the timed thread's sets.
    pub set: Percentiles,
    /// Sets the background writer did meanwhile.
    pub writer_ops: u64,
}

/// Writes a second by the background writer: below what the slowest peer sustains on one core
/// of the 2-core machine (moka, about 350,000 flat out), so that every system meets the same load.
pub const WRITER_RATE: u64 = 250_000;

fn histogram() -> Histogram<u64> {
    // 1 ns to 10 s at three significant digits.
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid histogram bounds")
}

/// Times each operation of `timed` (sets where [`SET_BIT`] is set) on `cache` for `duration`,
/// while a second thread replaces values along `writer` until the timed thread is done.
pub fn measure(
    cache: &dyn Contender,
    data: &DataSet,
    timed: &[u32],
    writer: &[u32],
    duration: Duration,
) -> Latency {
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let background = s.spawn(|| {
            let gap = Duration::from_nanos(1_000_000_000 / WRITER_RATE);
            let mut next = Instant::now();
            let mut ops = 0u64;
            for &op in writer.iter().cycle() {
                // Waits for the write's turn, spinning (a sleep is far coarser than the gap). A
                // writer that fell behind starts again from now rather than catching up in a burst.
                let mut now = Instant::now();
                while now < next {
                    std::hint::spin_loop();
                    now = Instant::now();
                }
                next = next.max(now - gap) + gap;
                let i = (op & INDEX_MASK) as usize;
                cache.set(&data.keys[i], data.values[i].clone());
                ops += 1;
                if ops % 64 == 0 && done.load(Ordering::Relaxed) {
                    break;
                }
            }
            ops
        });
        let (get, set) = timed_loop(cache, data, timed, duration);
        done.store(true, Ordering::Relaxed);
        let writer_ops = background.join().expect("the writer thread panicked");
        Latency {
            get: Percentiles::of(&get),
            set: Percentiles::of(&set),
            writer_ops,
        }
    })
}

/// The timed thread: returns the get and set histograms.
fn timed_loop(
    cache: &dyn Contender,
    data: &DataSet,
    timed: &[u32],
    duration: Duration,
) -> (Histogram<u64>, Histogram<u64>) {
    let (mut get, mut set) = (histogram(), histogram());
    let deadline = Instant::now() + duration;
    'outer: loop {
        for chunk in timed.chunks(crate::runner::CHUNK) {
            for &op in chunk {
                let i = (op & INDEX_MASK) as usize;
                let key = &data.keys[i];
                let t = Instant::now();
                if op & SET_BIT != 0 {
                    cache.set(key, data.values[i].clone());
                    set.saturating_record(t.elapsed().as_nanos() as u64);
                } else {
                    std::hint::black_box(cache.get(key));
                    get.saturating_record(t.elapsed().as_nanos() as u64);
                }
            }
            if Instant::now() >= deadline {
                break 'outer;
            }
        }
    }
    (get, set)
}
