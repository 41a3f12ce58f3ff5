//! Runs one workload on one system with a number of threads, and counts what happened.
//!
//! Each thread walks its own pre-generated stream of key indices (see [`crate::data`]), so that no
//! random number, key or value is made while the clock runs. The threads wait at a start line
//! until every one of them is spawned and warmed up; the coordinating thread then reads the clock
//! once and opens the line, and the run's elapsed time goes from that one start to the last
//! thread's finish, so that threads that wait for a core (more threads than cores) count the
//! wait. They stop either at a deadline from the common start (the comparison command) or after
//! a fixed number of operations (criterion, which picks the count). The clock is read once every
//! [`CHUNK`] operations, not per operation. The iterate workload ([`Mode::Walk`]) has no stream: each thread
//! walks the whole system again and again, and looks at the clock after each walk.

use std::hint::black_box;
use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::data::{INDEX_MASK, SET_BIT};
use crate::systems::Contender;

/// How many operations a thread runs between two looks at the clock.
pub const CHUNK: usize = 256;

/// What a thread does with each entry of its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A get of the entry's key.
    Get,
    /// A borrowing read of the entry's key (the value's length, read in place).
    Read,
    /// A set of the entry's key to its value.
    Set,
    /// A set where the entry carries [`SET_BIT`], a get otherwise.
    Mixed,
    /// Cache-aside: a get, and on a miss a set of the key (as if loaded from a database).
    CacheAside,
    /// No stream: full walks over the system ([`Contender::walk`]), each entry visited one
    /// operation.
    Walk,
    /// An atomic update of the entry's key ([`Contender::update`]), counted as a hit when the
    /// key was there.
    Update,
}

/// The keys, values and per-thread streams of one workload.
#[derive(Clone, Copy)]
pub struct Plan<'a> {
    /// The keys the stream indices point into.
    pub keys: &'a [String],
    /// The value written for each key (same length as `keys`).
    pub values: &'a [Bytes],
    /// One stream per thread; a run uses the first `threads` of them.
    pub streams: &'a [Vec<u32>],
    /// What each stream entry means.
    pub mode: Mode,
}

impl<'a> Plan<'a> {
    /// A plan over `data`'s keys and values, one stream per thread, in workload `w`'s mode.
    pub fn new(data: &'a crate::DataSet, streams: &'a [Vec<u32>], w: crate::Workload) -> Self {
        Plan {
            keys: &data.keys,
            values: &data.values,
            streams,
            mode: w.mode(),
        }
    }
}

/// When the threads stop.
#[derive(Clone, Copy, Debug)]
pub enum Until {
    /// After running for this long.
    Elapsed(Duration),
    /// After this many operations per thread.
    Ops(u64),
}

/// What a run did, summed over its threads.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measurement {
    /// Operations done, all threads together.
    pub ops: u64,
    /// Gets among them.
    pub gets: u64,
    /// Gets that found a value.
    pub hits: u64,
    /// From the common start to the last thread's finish (the run's wall time).
    pub elapsed: Duration,
}

impl Measurement {
    /// Operations per second, all threads together.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The fraction of gets that hit, or `None` when there were no gets.
    pub fn hit_ratio(&self) -> Option<f64> {
        (self.gets > 0).then(|| self.hits as f64 / self.gets as f64)
    }

    fn add(&mut self, other: Measurement) {
        self.ops += other.ops;
        self.gets += other.gets;
        self.hits += other.hits;
    }
}

/// Where the threads of a run wait to start, each after its untimed warm-up.
struct StartLine {
    state: Mutex<Start>,
    /// Wakes the coordinating thread when the last thread is ready.
    all_ready: Condvar,
    /// Wakes the threads when the line opens (or the run is called off).
    opened: Condvar,
}

#[derive(Clone, Copy)]
enum Start {
    /// Not open yet; this many threads are waiting.
    Waiting(usize),
    /// Open: the clock's reading at the common start.
    Go(Instant),
    /// A thread could not be spawned: the others stop without running.
    Abort,
}

impl StartLine {
    fn new() -> Self {
        StartLine {
            state: Mutex::new(Start::Waiting(0)),
            all_ready: Condvar::new(),
            opened: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Start> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A thread's wait: the common start, or `None` when the run was called off.
    fn wait(&self, threads: usize) -> Option<Instant> {
        let mut state = self.lock();
        if let Start::Waiting(n) = &mut *state {
            *n += 1;
            if *n == threads {
                self.all_ready.notify_one();
            }
        }
        loop {
            match *state {
                Start::Waiting(_) => {
                    state = self.opened.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                Start::Go(start) => return Some(start),
                Start::Abort => return None,
            }
        }
    }

    /// The coordinator's wait for all `threads`, then the common start; `None` if the run was
    /// called off meanwhile (a thread panicked before the line).
    fn open(&self, threads: usize) -> Option<Instant> {
        let mut state = self.lock();
        while matches!(*state, Start::Waiting(n) if n < threads) {
            state = self
                .all_ready
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        if matches!(*state, Start::Abort) {
            return None;
        }
        let start = Instant::now();
        *state = Start::Go(start);
        self.opened.notify_all();
        Some(start)
    }

    fn abort(&self) {
        *self.lock() = Start::Abort;
        self.opened.notify_all();
        self.all_ready.notify_one();
    }
}

/// The key of each thread's untimed first call: no data set has it.
const WARM_UP_KEY: &str = "warm-up:never-stored";

/// Runs `plan` on `cache` with `threads` threads until `until`, and returns what they did.
///
/// # Panics
///
/// When the plan has fewer streams than `threads`, or a thread cannot be spawned (see
/// [`try_run`], which returns that as an error).
pub fn run(cache: &dyn Contender, plan: Plan<'_>, threads: usize, until: Until) -> Measurement {
    try_run(cache, plan, threads, until).unwrap_or_else(|e| panic!("{e}"))
}

/// As [`run`], with a thread that cannot be spawned (the system's limit on threads or memory)
/// returned as an error: the threads already started are called off, none is left waiting.
///
/// # Panics
///
/// When the plan has fewer streams than `threads`.
pub fn try_run(
    cache: &dyn Contender,
    plan: Plan<'_>,
    threads: usize,
    until: Until,
) -> Result<Measurement, String> {
    assert!(plan.streams.len() >= threads, "one stream per thread");
    assert_eq!(plan.keys.len(), plan.values.len(), "one value per key");
    let line = StartLine::new();
    std::thread::scope(|s| {
        let mut workers = Vec::with_capacity(threads);
        for (i, stream) in plan.streams[..threads].iter().enumerate() {
            let line = &line;
            let spawned = std::thread::Builder::new()
                .name(format!("bench-{i}"))
                .spawn_scoped(s, move || {
                    // One untimed get of a key that is never stored, so that whatever a system
                    // sets up on a thread's first call (crossbeam-epoch registers the thread, and
                    // its 2 KiB allocation can make glibc consolidate every chunk the previous
                    // system freed) happens before the clock starts: service threads pay it once.
                    let warmed = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        let _ = cache.get(WARM_UP_KEY);
                    }));
                    // A system that panics here would never reach the line: the run is called
                    // off, so that no thread waits for it, and the panic goes on.
                    if let Err(payload) = warmed {
                        line.abort();
                        std::panic::resume_unwind(payload);
                    }
                    let start = line.wait(threads)?;
                    let m = match plan.mode {
                        Mode::Walk => walk_repeatedly(cache, start, until),
                        _ => drive(cache, plan, stream, start, until),
                    };
                    Some((m, Instant::now()))
                });
            match spawned {
                Ok(w) => workers.push(w),
                Err(e) => {
                    line.abort();
                    // The scope joins the threads already spawned; each returns at the line.
                    return Err(format!(
                        "could not start benchmark thread {} of {threads}: {e}",
                        i + 1
                    ));
                }
            }
        }
        let Some(start) = line.open(threads) else {
            // Called off by a thread's panic before the line: that panic goes on.
            for w in workers {
                if let Err(payload) = w.join() {
                    std::panic::resume_unwind(payload);
                }
            }
            return Err("the run was called off before it started".into());
        };
        let mut total = Measurement::default();
        let mut last = start;
        for w in workers {
            let (m, finish) = w
                .join()
                .expect("a benchmark thread panicked")
                .expect("the run was not called off");
            total.add(m);
            last = last.max(finish);
        }
        total.elapsed = last - start;
        Ok(total)
    })
}

/// One thread's loop: walks `stream` (wrapping around) until `until`, whose deadline counts from
/// the common `start`.
fn drive(
    cache: &dyn Contender,
    plan: Plan<'_>,
    stream: &[u32],
    start: Instant,
    until: Until,
) -> Measurement {
    assert!(!stream.is_empty(), "an empty stream");
    let mut m = Measurement::default();
    let (deadline, budget) = match until {
        Until::Elapsed(d) => (Some(start + d), u64::MAX),
        Until::Ops(n) => (None, n),
    };
    let mut pos = 0;
    while m.ops < budget {
        let n = CHUNK.min((budget - m.ops) as usize).min(stream.len() - pos);
        for &op in &stream[pos..pos + n] {
            step(cache, plan, op, &mut m);
        }
        m.ops += n as u64;
        pos = if pos + n == stream.len() { 0 } else { pos + n };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    m
}

/// One thread's loop of the iterate workload: whole walks over `cache` until `until`, which is
/// looked at after each walk (one walk of 1M entries takes milliseconds to tenths of a second,
/// so a run ends up to one walk past its deadline or its count; the elapsed time is measured,
/// so the rate stays right).
///
/// # Panics
///
/// When `cache` cannot iterate: the suite only gives this workload to systems that can.
fn walk_repeatedly(cache: &dyn Contender, start: Instant, until: Until) -> Measurement {
    let mut m = Measurement::default();
    let (deadline, budget) = match until {
        Until::Elapsed(d) => (Some(start + d), u64::MAX),
        Until::Ops(n) => (None, n),
    };
    while m.ops < budget {
        let walked = black_box(cache.walk()).expect("iterate runs on systems that iterate");
        m.ops += walked.entries;
        // An empty system would never reach a count of entries: one walk is the whole run.
        if walked.entries == 0 || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    m
}

/// One operation.
#[inline(always)]
fn step(cache: &dyn Contender, plan: Plan<'_>, op: u32, m: &mut Measurement) {
    let i = (op & INDEX_MASK) as usize;
    let key = &plan.keys[i];
    let get = |m: &mut Measurement| {
        m.gets += 1;
        let found = black_box(cache.get(key)).is_some();
        m.hits += u64::from(found);
        found
    };
    match plan.mode {
        Mode::Get => {
            get(m);
        }
        Mode::Read => {
            m.gets += 1;
            m.hits += u64::from(black_box(cache.read_len(key)).is_some());
        }
        Mode::Set => cache.set(key, plan.values[i].clone()),
        Mode::Mixed if op & SET_BIT != 0 => cache.set(key, plan.values[i].clone()),
        Mode::Mixed => {
            get(m);
        }
        Mode::CacheAside => {
            if !get(m) {
                cache.set(key, plan.values[i].clone());
            }
        }
        Mode::Walk => unreachable!("walks are run by walk_repeatedly"),
        Mode::Update => {
            m.gets += 1;
            m.hits += u64::from(black_box(cache.update(key)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systems::{Sizing, System};
    use crate::workload::{DataSet, Workload};

    #[test]
    fn every_thread_runs_its_count_and_the_clock_spans_the_run() {
        let data = DataSet::generate(0, 64, 8);
        let sizing = Sizing {
            entries: data.len(),
            bound: None,
        };
        let cache = System::Epochcache.build(sizing, data.entries());
        let streams: Vec<Vec<u32>> = (0..3).map(|t| (t..64).collect()).collect();
        let plan = Plan::new(&data, &streams, Workload::HotGet);
        let m = try_run(&*cache, plan, 3, Until::Ops(1_000)).unwrap();
        assert_eq!(m.ops, 3_000);
        assert_eq!(m.gets, 3_000);
        assert_eq!(m.hits, 3_000);
        assert!(m.elapsed > Duration::ZERO);
        let timed = try_run(&*cache, plan, 2, Until::Elapsed(Duration::from_millis(20))).unwrap();
        assert!(timed.elapsed >= Duration::from_millis(20), "{timed:?}");
    }
}
