//! One system's full walk, alone in a fresh process: the `iterate` workload without the heap
//! the comparison leaves behind.
//!
//! In the comparison (`epochcache-bench -w iterate`) every system is filled in one process, one
//! after another, so a system's entries lie in a heap the earlier systems churned; here the
//! process holds only the data set and the one system. Run it once per system and compare the
//! figures of runs made one after another.
//!
//! ```text
//! cargo run --release -p epochcache-bench --bin walk-probe -- -s epochcache
//! cargo run --release -p epochcache-bench --bin walk-probe -- -s papaya
//! ```

use std::time::Instant;

use clap::Parser;
use epochcache_bench::{data, Sizing, System};

#[derive(Parser)]
#[command(about = "Time full walks of one system holding 1M entries, alone in this process")]
struct Args {
    /// The system to fill and walk.
    #[arg(short, long, value_enum)]
    system: System,
    /// Entries in the data set.
    #[arg(short, long, default_value_t = 1_000_000, value_parser = at_least_one)]
    keys: usize,
    /// Bytes per value.
    #[arg(short, long, default_value_t = 64)]
    value_size: usize,
    /// Timed rounds of ten walks each; each round prints its rate.
    #[arg(short, long, default_value_t = 3, value_parser = at_least_one)]
    rounds: usize,
}

/// Parses a count of at least 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if !args.system.iterates() {
        eprintln!("{} cannot walk its entries", args.system.name());
        return std::process::ExitCode::FAILURE;
    }
    let keys = data::keys(0, args.keys);
    let values = data::values(args.keys, args.value_size);
    let sizing = Sizing {
        entries: args.keys,
        bound: None,
    };
    let system = args.system.build(sizing, keys.into_iter().zip(values));
    for _ in 0..args.rounds {
        let start = Instant::now();
        let mut entries = 0;
        for _ in 0..10 {
            let walked = system.walk().expect("a system that iterates walks");
            entries += walked.entries;
        }
        let rate = entries as f64 / start.elapsed().as_secs_f64();
        println!("{} {:.1} M entries/s", args.system.name(), rate / 1e6);
    }
    std::process::ExitCode::SUCCESS
}
