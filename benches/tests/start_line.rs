//! The runner's start line: a system that panics on a thread's untimed warm-up call, before the
//! line, ends the run with that panic instead of leaving the coordinator waiting for ever.

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use epochcache_bench::runner::{try_run, Mode, Plan, Until};
use epochcache_bench::Contender;

/// Panics on its first call, the warm-up's.
struct PanicsOnWarmUp;

impl Contender for PanicsOnWarmUp {
    fn get(&self, key: &str) -> Option<Bytes> {
        if key.starts_with("warm-up") {
            panic!("system panics on its first call");
        }
        None
    }
    fn set(&self, _: &str, _: Bytes) {}
}

#[test]
fn a_thread_that_panics_before_the_start_line_ends_the_run_with_its_panic() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let keys = vec!["k".to_string()];
        let values = vec![Bytes::new()];
        let streams = vec![vec![0u32]; 2];
        let plan = Plan {
            keys: &keys,
            values: &values,
            streams: &streams,
            mode: Mode::Get,
        };
        let ran = std::panic::catch_unwind(|| try_run(&PanicsOnWarmUp, plan, 2, Until::Ops(10)));
        let message = ran
            .err()
            .and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string()));
        let _ = tx.send(message);
    });
    // A hang detector, not a timer: the run ends at once, or never.
    let ended = rx.recv_timeout(Duration::from_secs(20));
    assert_eq!(
        ended.expect("the run hung: the coordinator waited for a thread that died before the line"),
        Some("system panics on its first call".to_string())
    );
}
