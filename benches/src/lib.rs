//! The benchmarks of epochcache, side by side with its peers: the shared code of the comparison
//! command (`cargo run --release --bin epochcache-bench`) and the criterion benches
//! (`cargo bench -p epochcache-bench`).
//!
//! # Layout
//!
//! - [`systems`]: the systems under test (epochcache, moka, quick_cache, papaya, dashmap, scc and a
//!   read-only `std` `HashMap` baseline), each behind the [`Contender`] trait.
//! - [`data`]: keys (20 to 40 byte strings), values and Zipf or uniform index streams, all made
//!   before any clock starts.
//! - [`workload`]: what each workload does and which systems it applies to.
//! - [`runner`]: runs a workload on a system with a number of threads.
//! - [`latency`]: get and set percentiles under a concurrent writer (HDR histograms).
//! - [`memory`]: heap bytes per entry, from a counting global allocator.
//! - [`trace`]: trace files, replayed cache-aside.
//! - [`suite`]: the whole comparison run; [`report`] and [`chart`] print and draw its results,
//!   and [`merge`] combines several runs into medians.
//!
//! Nothing here asserts speed: the unit tests check the generators and the tables, and the
//! numbers are only ever printed.

#![warn(missing_docs)]

pub mod chart;
pub mod data;
pub mod latency;
pub mod memory;
pub mod merge;
pub mod report;
pub mod runner;
pub mod suite;
pub mod systems;
pub mod trace;
pub mod workload;

pub use systems::{Contender, Kind, Sizing, System};
pub use workload::{Config, DataSet, Workload};

/// Writes `text` to stdout; when the reader has gone (`| head`), the rest is dropped quietly.
///
/// # Errors
///
/// When stdout cannot be written for another reason.
pub fn print_stdout(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()),
    }
}

/// Checks before a run that the output file `path` can be written, without emptying it: it is
/// opened to append (created if missing, then removed again), so that a run stopped or failed
/// part way does not destroy the results an earlier run left there.
///
/// # Errors
///
/// When the file cannot be opened for writing (a folder, a read-only place).
pub fn check_writable(path: &std::path::Path) -> Result<(), String> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_writable;

    #[test]
    fn checking_an_output_keeps_what_it_holds_and_leaves_no_new_file() {
        let dir = std::env::temp_dir().join(format!("epochcache-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let earlier = dir.join("earlier.json");
        std::fs::write(&earlier, "{\"kept\": true}").unwrap();
        check_writable(&earlier).unwrap();
        assert_eq!(
            std::fs::read_to_string(&earlier).unwrap(),
            "{\"kept\": true}"
        );
        let fresh = dir.join("fresh.json");
        check_writable(&fresh).unwrap();
        assert!(
            !fresh.exists(),
            "a checked path that was not there is not left behind"
        );
        assert!(check_writable(&dir).is_err(), "a folder is refused");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
