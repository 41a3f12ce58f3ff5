//! Linearizability of the engine under concurrent writers and lock-free readers.
//!
//! # The stress
//!
//! Two to four threads run 15 000 to 30 000 random operations each on four shared keys:
//! `insert` of a value unique to the write (thread id and sequence number), `get` (plain,
//! `get_with`, or through a pinned handle) and `remove` (whose `bool` result is checked too).
//! Around every operation a thread takes a ticket from one shared `AtomicU64` (`fetch_add`,
//! `SeqCst`): one before the call (the invocation) and one after it returns (the response). If
//! operation `a`'s response ticket is smaller than `b`'s invocation ticket, `a` really finished
//! before `b` began: the two `fetch_add`s on one atomic synchronise, so `a` happens-before `b`.
//! Meanwhile the threads also insert and remove "noise" keys, so that the shard tables are
//! rebuilt (grown and cleared of tombstones) while the register keys are being read without a
//! lock; one variant adds a "churner" thread that keeps one shard's table at the edge of its
//! size so that it is rebuilt dozens of times under mostly-reading threads.
//!
//! How often operations really overlap depends on the machine: on two idle cores the threads
//! run side by side; on an oversubscribed machine they mostly take turns, and only preemptions
//! in the middle of an operation produce overlaps. (A mutant of the engine that publishes a
//! rebuilt table before filling it is caught at once when its rebuild is slowed by a yield per
//! entry; unslowed, it is caught only when the threads get cores of their own.)
//!
//! # The checker
//!
//! Linearizability is local (Herlihy and Wing): a history is linearizable iff its restriction to
//! each object is. So each key is checked alone, as a register whose value is `Option<u64>`:
//!
//! - `Write(v)` sets it to `Some(v)`;
//! - `Read(r)` is legal only if it equals the current value;
//! - `Remove(b)` is legal only if `b` says whether the register held a value, and sets `None`.
//!
//! The checker is the Wing-Gong search with Lowe's memoisation, made small by one fact: a thread's
//! operations are sequential, so any linearisation takes each thread's operations in program
//! order. A search state is therefore the number of operations linearised so far in each thread
//! plus the register's value. From a state, the next operation of thread `t` may be linearised
//! next iff its invocation comes before the response of every other operation not yet linearised
//! (it suffices to compare with the next operation of each thread, since a thread's later
//! operations respond later still) and its result is legal in the current value. A depth-first
//! search over these states, remembering the ones already explored, finds a linearisation iff one
//! exists: the check is exact, neither a sampling nor a set of necessary conditions. Because only
//! operations that overlap in time can be reordered, the states reachable are few (a handful per
//! operation), so a history of thousands of operations is checked in milliseconds.
//!
//! The checker's own tests feed it small hand-written histories, linearizable and not (a stale
//! read, a read from the future, a read of nothing after a completed write, a lost remove), so
//! that the stress test is known to be able to fail.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;

use epochcache::ShardedCache;

/// What one operation on one key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Write(u64),
    Read(Option<u64>),
    Remove(bool),
}

/// One completed operation: its thread, its invocation and response tickets, what it did.
#[derive(Debug, Clone, Copy)]
struct Event {
    thread: usize,
    inv: u64,
    resp: u64,
    op: Op,
}

/// Applies `op` to the register value `reg`: the new value, or `None` if the op's result is not
/// what a register holding `reg` would have returned.
fn step(reg: Option<u64>, op: Op) -> Option<Option<u64>> {
    match op {
        Op::Write(v) => Some(Some(v)),
        Op::Read(r) => (r == reg).then_some(reg),
        Op::Remove(b) => (b == reg.is_some()).then_some(None),
    }
}

/// Whether the history of one register (the register starting empty) is linearizable; on failure
/// a description of the furthest point the search reached.
fn check_register(history: &[Event]) -> Result<(), String> {
    let threads = history.iter().map(|e| e.thread + 1).max().unwrap_or(0);
    let mut per_thread: Vec<Vec<Event>> = vec![Vec::new(); threads];
    for e in history {
        assert!(
            e.inv < e.resp,
            "an operation responds after it is invoked: {e:?}"
        );
        per_thread[e.thread].push(*e);
    }
    for ops in &mut per_thread {
        ops.sort_by_key(|e| e.inv);
        for w in ops.windows(2) {
            assert!(w[0].resp < w[1].inv, "a thread's operations overlap: {w:?}");
        }
    }
    let total: usize = per_thread.iter().map(Vec::len).sum();

    type State = (Vec<usize>, Option<u64>);
    let start: State = (vec![0; threads], None);
    let mut seen: HashSet<State> = HashSet::new();
    let mut stack = vec![start.clone()];
    seen.insert(start);
    let mut furthest: (usize, State) = (0, (vec![0; threads], None));
    while let Some((idx, reg)) = stack.pop() {
        let done: usize = idx.iter().sum();
        if done == total {
            return Ok(());
        }
        if done >= furthest.0 {
            furthest = (done, (idx.clone(), reg));
        }
        // The earliest response among the operations not yet linearised.
        let min_resp = (0..threads)
            .filter_map(|t| per_thread[t].get(idx[t]).map(|e| e.resp))
            .min()
            .expect("some operation is left");
        for t in 0..threads {
            let Some(e) = per_thread[t].get(idx[t]) else {
                continue;
            };
            if e.inv > min_resp {
                continue; // another pending operation finished before this one began
            }
            if let Some(next) = step(reg, e.op) {
                let mut idx2 = idx.clone();
                idx2[t] += 1;
                let state = (idx2, next);
                if seen.insert(state.clone()) {
                    stack.push(state);
                }
            }
        }
    }
    let (done, (idx, reg)) = furthest;
    let pending: Vec<_> = (0..threads)
        .filter_map(|t| per_thread[t].get(idx[t]))
        .collect();
    Err(format!(
        "not linearizable: after {done} of {total} operations (register {reg:?}) none of the \
         next operations fits: {pending:#?}"
    ))
}

mod support;

use support::SplitMix;

const REGISTERS: u64 = 4;

/// Runs the stress once and returns every register operation, by key. With `churner`, one more
/// thread (whose operations are not recorded) fills the table with other keys and empties it
/// again until the others finish, so that the table is rebuilt over and over (grown, and
/// rebuilt in place to clear tombstones) under the readers.
fn stress(
    shards: usize,
    threads: usize,
    ops_per_thread: usize,
    seed: u64,
    churner: bool,
) -> Vec<Vec<Event>> {
    let cache: ShardedCache<u64, u64> = ShardedCache::builder().shards(shards).build();
    let tickets = AtomicU64::new(0);
    let started = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let everyone = threads + usize::from(churner);
    let histories: Vec<Vec<(u64, Event)>> = thread::scope(|s| {
        if churner {
            let (cache, started, finished) = (&cache, &started, &finished);
            s.spawn(move || {
                started.fetch_add(1, Ordering::SeqCst);
                // A sliding window of fresh keys: every insert takes a slot, a remove from a
                // full group leaves a tombstone, and when live entries and tombstones fill 7/8 of
                // the table the writer rebuilds it, re-placing every entry, the registers
                // included. A window of 295 keeps the table just under its growth point (511
                // slots, which grow past 298 live entries), where tombstones force a rebuild
                // about every 1,700 writes (`churn_that_fills_a_table_with_tombstones_rebuilds_
                // it_in_place` in `src/raw/shard.rs` measures it); most other windows leave so
                // much room that rebuilds almost never happen.
                const WINDOW: u64 = 295;
                let mut next = 0u64;
                while finished.load(Ordering::SeqCst) < threads {
                    cache.insert(1_000 + next, next).unwrap();
                    if next >= WINDOW {
                        cache.remove(&(1_000 + next - WINDOW));
                    }
                    next += 1;
                }
            });
        }
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (cache, tickets, started, finished) = (&cache, &tickets, &started, &finished);
                s.spawn(move || {
                    let mut rng = SplitMix(seed.wrapping_mul(1_000_003).wrapping_add(t as u64));
                    let mut events = Vec::with_capacity(ops_per_thread);
                    // Spin until every thread is running, so that they start together.
                    started.fetch_add(1, Ordering::SeqCst);
                    while started.load(Ordering::SeqCst) < everyone {
                        thread::yield_now();
                    }
                    for seq in 0..ops_per_thread as u64 {
                        let r = rng.next();
                        let key = r % REGISTERS;
                        // Noise: other keys come and go, so tables grow and shed tombstones
                        // while the registers are read.
                        if !churner && (r >> 8) % 4 == 0 {
                            let noise = 1_000 + (r >> 16) % 600;
                            if (r >> 40) % 3 == 0 {
                                cache.remove(&noise);
                            } else {
                                cache.insert(noise, noise).unwrap();
                            }
                        }
                        // With a churner, every thread but the first mostly reads: a writer blocks
                        // on the shard lock while the churner rebuilds, a reader does not, and the
                        // reads that overlap a rebuild are the ones under test.
                        let choice = if churner && t > 0 && (r >> 48) % 10 != 0 {
                            8 + (r >> 24) % 9
                        } else {
                            (r >> 24) % 20
                        };
                        let inv = tickets.fetch_add(1, Ordering::SeqCst);
                        let op = match choice {
                            0..=7 => {
                                let v = ((t as u64) << 32) | seq;
                                cache.insert(key, v).unwrap();
                                Op::Write(v)
                            }
                            8..=12 => Op::Read(cache.get(&key)),
                            13..=14 => Op::Read(cache.get_with(&key, |v| *v)),
                            15..=16 => Op::Read(cache.pin().get(&key)),
                            _ => Op::Remove(cache.remove(&key)),
                        };
                        let resp = tickets.fetch_add(1, Ordering::SeqCst);
                        events.push((
                            key,
                            Event {
                                thread: t,
                                inv,
                                resp,
                                op,
                            },
                        ));
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                    events
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    cache
        .validate()
        .expect("the table is consistent after the stress");
    let mut by_key = vec![Vec::new(); REGISTERS as usize];
    for (key, e) in histories.into_iter().flatten() {
        by_key[key as usize].push(e);
    }
    by_key
}

fn stress_and_check(shards: usize, threads: usize, ops_per_thread: usize, rounds: u64) {
    stress_and_check_with(shards, threads, ops_per_thread, rounds, false);
}

fn stress_and_check_with(
    shards: usize,
    threads: usize,
    ops_per_thread: usize,
    rounds: u64,
    churner: bool,
) {
    for round in 0..rounds {
        let by_key = stress(shards, threads, ops_per_thread, 0x5EED + round, churner);
        for (key, history) in by_key.iter().enumerate() {
            assert!(!history.is_empty());
            if let Err(e) = check_register(history) {
                panic!("shards {shards}, round {round}, key {key}: {e}");
            }
        }
    }
}

#[test]
fn one_shard_three_threads_is_linearizable() {
    stress_and_check(1, 3, 20_000, 2);
}

#[test]
fn four_shards_four_threads_is_linearizable() {
    stress_and_check(4, 4, 15_000, 2);
}

#[test]
fn two_threads_is_linearizable() {
    stress_and_check(2, 2, 20_000, 2);
}

#[test]
fn reads_during_table_rebuilds_are_linearizable() {
    stress_and_check_with(1, 3, 30_000, 2, true);
}

// The checker's own tests: it must accept linearizable histories and reject the others.

fn ev(thread: usize, inv: u64, resp: u64, op: Op) -> Event {
    Event {
        thread,
        inv,
        resp,
        op,
    }
}

#[test]
fn checker_accepts_sequential_and_overlapping_histories() {
    use Op::*;
    // Sequential.
    let h = [
        ev(0, 0, 1, Read(None)),
        ev(0, 2, 3, Write(1)),
        ev(1, 4, 5, Read(Some(1))),
        ev(1, 6, 7, Remove(true)),
        ev(0, 8, 9, Remove(false)),
        ev(0, 10, 11, Read(None)),
    ];
    check_register(&h).unwrap();
    // A read overlapping a write may see either value; two reads during it may see old then new,
    // but reads that overlap each other may also see new then old.
    let h = [
        ev(0, 0, 1, Write(1)),
        ev(1, 2, 10, Write(2)),
        ev(2, 3, 4, Read(Some(1))),
        ev(2, 5, 6, Read(Some(2))),
        ev(0, 7, 8, Read(Some(2))),
    ];
    check_register(&h).unwrap();
    let h = [
        ev(0, 0, 5, Write(1)),
        ev(1, 1, 3, Read(Some(1))),
        ev(2, 2, 4, Read(None)),
    ];
    check_register(&h).unwrap();
    // A remove overlapping a write may or may not find it.
    let h = [
        ev(0, 0, 3, Write(7)),
        ev(1, 1, 2, Remove(true)),
        ev(1, 4, 5, Read(None)),
    ];
    check_register(&h).unwrap();
}

#[test]
fn checker_rejects_a_stale_read() {
    use Op::*;
    // Write 2 completed after write 1 completed, and before the read began.
    let h = [
        ev(0, 0, 1, Write(1)),
        ev(0, 2, 3, Write(2)),
        ev(1, 4, 5, Read(Some(1))),
    ];
    assert!(check_register(&h).is_err());
}

#[test]
fn checker_rejects_a_read_from_the_future() {
    use Op::*;
    let h = [ev(1, 0, 1, Read(Some(1))), ev(0, 2, 3, Write(1))];
    assert!(check_register(&h).is_err());
}

#[test]
fn checker_rejects_a_lost_write() {
    use Op::*;
    let h = [ev(0, 0, 1, Write(1)), ev(1, 2, 3, Read(None))];
    assert!(check_register(&h).is_err());
    // ... and a remove that finds nothing after a completed write.
    let h = [ev(0, 0, 1, Write(1)), ev(1, 2, 3, Remove(false))];
    assert!(check_register(&h).is_err());
}

#[test]
fn checker_rejects_a_read_after_a_completed_remove() {
    use Op::*;
    let h = [
        ev(0, 0, 1, Write(1)),
        ev(0, 2, 3, Remove(true)),
        ev(1, 4, 5, Read(Some(1))),
    ];
    assert!(check_register(&h).is_err());
}

#[test]
fn checker_rejects_reads_that_disagree_on_order() {
    use Op::*;
    // Two overlapping writes; one reader sees 1 then 2, another (later, sequentially) sees 2
    // then 1: no single order of the writes explains both.
    let h = [
        ev(0, 0, 10, Write(1)),
        ev(1, 0, 10, Write(2)),
        ev(2, 11, 12, Read(Some(1))),
        ev(2, 13, 14, Read(Some(2))),
        ev(3, 15, 16, Read(Some(1))),
    ];
    assert!(check_register(&h).is_err());
}

#[test]
fn checker_handles_a_long_concurrent_history_quickly() {
    // A real stress history with thousands of operations must be checked without a blow-up;
    // the same history with one read's result altered to a value overwritten long before must
    // be rejected.
    let by_key = stress(1, 3, 10_000, 42, false);
    let mut history = by_key.into_iter().max_by_key(Vec::len).unwrap();
    check_register(&history).unwrap();
    // Corrupt the last read that returned a value, making it return the first value ever
    // written, provided a later-completed write superseded that one before the read began.
    let first_write = history
        .iter()
        .filter(|e| matches!(e.op, Op::Write(_)))
        .min_by_key(|e| e.resp)
        .copied()
        .unwrap();
    let superseding = history
        .iter()
        .filter(|e| matches!(e.op, Op::Write(_)) && e.inv > first_write.resp)
        .min_by_key(|e| e.resp)
        .copied()
        .unwrap();
    let Op::Write(old) = first_write.op else {
        unreachable!()
    };
    let victim = history
        .iter_mut()
        .rev()
        .find(|e| matches!(e.op, Op::Read(_)) && e.inv > superseding.resp)
        .expect("a read after the first writes");
    victim.op = Op::Read(Some(old));
    assert!(check_register(&history).is_err());
}
