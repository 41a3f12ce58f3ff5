//! Workloads: what the simulator replays.
//!
//! A workload is a sequence of `u64` keys, made whole before any replay starts, so that every
//! system sees exactly the same requests. It is either a trace file (one unsigned integer key a
//! line) or one of the synthetic generators: Zipf over a key space, a Zipf hot set polluted by
//! one-time scans, and a loop. The generators are seeded and deterministic: the same spec and
//! seed give the same keys on every machine.

use std::fmt;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Zipf};

/// Where the scan keys of [`Spec::Scan`] start, far from every hot key's rank.
const SCAN_KEY_BASE: u64 = 1 << 40;

/// A workload, as named on the command line.
#[derive(Clone, Debug, PartialEq)]
pub enum Spec {
    /// A trace file, one key a line.
    Trace(PathBuf),
    /// `accesses` draws from a Zipf distribution with exponent `s` over `keys` keys.
    Zipf {
        /// The exponent (skew): 0.7 is mild, 1.1 is strong.
        s: f64,
        /// The size of the key space.
        keys: u64,
        /// How many requests.
        accesses: usize,
    },
    /// A Zipf (0.9) hot set over `keys` keys, polluted by one-time scans: after every `period`
    /// hot requests comes a burst of `burst` keys never requested before or after.
    Scan {
        /// The size of the hot key space.
        keys: u64,
        /// How many requests, hot and scan together.
        accesses: usize,
        /// Hot requests between two scans.
        period: usize,
        /// Keys in one scan.
        burst: usize,
    },
    /// The keys `0..n` in order, over and over, `accesses` requests in all.
    Loop {
        /// The length of the loop.
        n: u64,
        /// How many requests.
        accesses: usize,
    },
}

/// The defaults a bare `zipf:S`, `scan` or `loop:N` spec takes from the command line.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// Key space of `zipf:S` and `scan`.
    pub keys: u64,
    /// Requests of a synthetic workload.
    pub accesses: usize,
}

impl Spec {
    /// Parses `zipf:S`, `scan`, `scan:PERIOD:BURST` or `loop:N`; any other text is a trace path
    /// when a file of that name exists (trace files belong with `--trace`), and refused
    /// otherwise, so that a misspelt workload is not read as a missing file.
    pub fn parse(text: &str, defaults: Defaults) -> Result<Spec, String> {
        let mut parts = text.split(':');
        let head = parts.next().unwrap_or_default();
        let args: Vec<&str> = parts.collect();
        let num = |s: &str| -> Result<u64, String> {
            s.replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{text}: `{s}`: {e}"))
        };
        let positive = |n: u64, what: &str| -> Result<usize, String> {
            match usize::try_from(n) {
                Ok(0) => Err(format!("{text}: {what} must be at least 1")),
                Ok(n) => Ok(n),
                Err(e) => Err(format!("{text}: {what}: {e}")),
            }
        };
        match (head, args.as_slice()) {
            ("zipf", [s]) => {
                let s: f64 = s.parse().map_err(|e| format!("{text}: {e}"))?;
                if !(s.is_finite() && s > 0.0) {
                    return Err(format!("{text}: the Zipf exponent must be positive"));
                }
                Ok(Spec::Zipf {
                    s,
                    keys: defaults.keys,
                    accesses: defaults.accesses,
                })
            }
            ("scan", []) => Ok(Spec::Scan {
                keys: defaults.keys,
                accesses: defaults.accesses,
                period: 50_000,
                burst: 20_000,
            }),
            ("scan", [period, burst]) => Ok(Spec::Scan {
                keys: defaults.keys,
                accesses: defaults.accesses,
                period: positive(num(period)?, "PERIOD")?,
                burst: positive(num(burst)?, "BURST")?,
            }),
            ("loop", [n]) => Ok(Spec::Loop {
                n: positive(num(n)?, "N")? as u64,
                accesses: defaults.accesses,
            }),
            ("zipf" | "scan" | "loop", _) => Err(format!(
                "{text}: expected zipf:S, scan, scan:PERIOD:BURST or loop:N"
            )),
            _ if Path::new(text).is_file() => Ok(Spec::Trace(PathBuf::from(text))),
            _ => Err(format!(
                "{text}: not a workload: expected zipf:S, scan, scan:PERIOD:BURST or loop:N \
                 (a trace file goes with --trace FILE)"
            )),
        }
    }

    /// The keys this workload requests, in order.
    pub fn keys(&self, seed: u64) -> io::Result<Vec<u64>> {
        Ok(match *self {
            Spec::Trace(ref path) => load_trace(path)?,
            Spec::Zipf { s, keys, accesses } => zipf_keys(s, keys, accesses, seed),
            Spec::Scan {
                keys,
                accesses,
                period,
                burst,
            } => scan_keys(keys, accesses, period, burst, seed),
            Spec::Loop { n, accesses } => (0..accesses as u64).map(|i| i % n).collect(),
        })
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Trace(path) => {
                let stem = path.file_stem().and_then(|s| s.to_str());
                write!(f, "{}", stem.unwrap_or("trace"))
            }
            Spec::Zipf { s, keys, .. } => write!(f, "zipf {s} / {}", short(*keys)),
            Spec::Scan {
                keys,
                period,
                burst,
                ..
            } => write!(
                f,
                "scan {} / {} per {}",
                short(*keys),
                short(*burst as u64),
                short(*period as u64)
            ),
            Spec::Loop { n, .. } => write!(f, "loop {}", short(*n)),
        }
    }
}

/// `1000000` as `1M`, `20000` as `20k`; other numbers as they are.
pub fn short(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// Reads a trace file: the first whitespace-separated field of each line is the key, an
/// unsigned integer; blank lines and lines starting with `#` are skipped.
pub fn load_trace(path: &Path) -> io::Result<Vec<u64>> {
    let file = std::fs::File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    read_trace(io::BufReader::new(file))
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Reads a trace from `reader`; see [`load_trace`].
pub fn read_trace(reader: impl BufRead) -> io::Result<Vec<u64>> {
    let mut keys = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line?;
        let Some(field) = line.split_whitespace().next() else {
            continue;
        };
        if field.starts_with('#') {
            continue;
        }
        let key = field.parse::<u64>().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {}: `{field}`: {e}", n + 1),
            )
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the trace has no requests",
        ));
    }
    Ok(keys)
}

/// A bijection of `u64` (SplitMix64's finaliser): spreads ranks over the key space so that hot
/// keys are not small consecutive numbers, without two ranks ever sharing a key.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `accesses` keys whose ranks (1 hottest) follow Zipf's law with exponent `s` over `keys` keys.
pub fn zipf_keys(s: f64, keys: u64, accesses: usize, seed: u64) -> Vec<u64> {
    let keys = keys.max(1);
    let zipf = Zipf::new(keys as f64, s).expect("positive Zipf parameters");
    let mut rng = StdRng::seed_from_u64(seed);
    (0..accesses)
        .map(|_| mix((zipf.sample(&mut rng) as u64).clamp(1, keys)))
        .collect()
}

/// A Zipf 0.9 hot set over `keys` keys with a scan of `burst` fresh keys after every `period` hot
/// requests, `accesses` requests in all.
pub fn scan_keys(keys: u64, accesses: usize, period: usize, burst: usize, seed: u64) -> Vec<u64> {
    let hot = zipf_keys(0.9, keys, accesses, seed);
    let mut out = Vec::with_capacity(accesses.saturating_add(burst.min(accesses)));
    let mut fresh = SCAN_KEY_BASE;
    for chunk in hot.chunks(period.max(1)) {
        if out.len() >= accesses {
            break;
        }
        out.extend_from_slice(chunk);
        // Only as much of the scan as fits: the rest would be cut off below.
        let room = accesses.saturating_sub(out.len()).min(burst);
        out.extend((0..room as u64).map(|i| mix(fresh.wrapping_add(i))));
        fresh = fresh.wrapping_add(burst as u64);
    }
    out.truncate(accesses);
    out
}

/// The standard synthetic set of `--all`: each workload with the cache sizes it is measured at.
pub fn standard_synthetic() -> Vec<(Spec, Vec<usize>)> {
    let mut set = Vec::new();
    for s in [0.7, 0.9, 1.1] {
        let spec = Spec::Zipf {
            s,
            keys: 1_000_000,
            accesses: 2_000_000,
        };
        set.push((spec, vec![10_000, 100_000]));
    }
    let scan = Spec::Scan {
        keys: 100_000,
        accesses: 2_000_000,
        period: 50_000,
        burst: 20_000,
    };
    set.push((scan, vec![1_000, 10_000]));
    for size in [1_000u64, 10_000] {
        let spec = Spec::Loop {
            n: size + size / 10,
            accesses: 1_000_000,
        };
        set.push((spec, vec![size as usize]));
    }
    set
}

/// The cache size a trace is best measured at: the "size" column of the Markdown table in the
/// `README.md` beside it (the row whose first cell is the file's name), else the sizes that the
/// shared traces' README gives, by file stem; `None` for any other trace.
pub fn telling_size(trace: &Path) -> Option<usize> {
    let name = trace.file_name()?.to_str()?;
    let readme = trace.with_file_name("README.md");
    if let Some(size) = std::fs::read_to_string(readme)
        .ok()
        .and_then(|text| size_from_readme(&text, name))
    {
        return Some(size);
    }
    Some(match name.strip_suffix(".txt")? {
        "lirs-loop" | "lirs-sprite" | "lirs-2_pools" | "lirs-cs" | "lirs-ps" => 500,
        "lirs-multi3" => 1_000,
        _ => return None,
    })
}

/// The number in the column whose header mentions "size", in the table row for `file`.
fn size_from_readme(text: &str, file: &str) -> Option<usize> {
    let cells = |line: &str| -> Vec<String> {
        let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
        inner.split('|').map(|c| c.trim().to_string()).collect()
    };
    let mut column = None;
    for line in text.lines().filter(|l| l.trim_start().starts_with('|')) {
        let row = cells(line);
        if row.iter().any(|c| c.contains("size")) {
            column = row.iter().position(|c| c.contains("size"));
        } else if row.first().map(|c| c.trim_matches('`')) == Some(file) {
            let cell = row.get(column?)?;
            return cell.replace([',', '_', ' '], "").parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Defaults = Defaults {
        keys: 1000,
        accesses: 5000,
    };

    #[test]
    fn zipf_is_deterministic_and_skewed() {
        let a = zipf_keys(1.1, 1000, 5000, 7);
        assert_eq!(a, zipf_keys(1.1, 1000, 5000, 7));
        assert_ne!(a, zipf_keys(1.1, 1000, 5000, 8));
        let top = a.iter().filter(|&&k| k == mix(1)).count();
        assert!(top > 5000 / 20, "rank 1 drawn {top} times");
    }

    #[test]
    fn scans_are_fresh_and_periodic() {
        let keys = scan_keys(100, 30, 10, 5, 1);
        assert_eq!(keys.len(), 30);
        assert_eq!(scan_keys(100, 33, 10, 5, 1)[..30], keys);
        let scans: Vec<u64> = [&keys[10..15], &keys[25..30]].concat();
        let distinct: std::collections::HashSet<_> = scans.iter().collect();
        assert_eq!(distinct.len(), 10);
        assert!(keys[..10].iter().all(|k| !scans.contains(k)));
    }

    #[test]
    fn parses_specs_and_traces() {
        assert_eq!(
            Spec::parse("loop:1_100", D).unwrap(),
            Spec::Loop {
                n: 1100,
                accesses: 5000
            }
        );
        assert!(matches!(Spec::parse("zipf:0.9", D), Ok(Spec::Zipf { s, .. }) if s == 0.9));
        assert!(Spec::parse("zipf:x", D).is_err());
        assert!(Spec::parse("loop", D).is_err());
        for zero in ["loop:0", "scan:0:10", "scan:10:0"] {
            assert!(Spec::parse(zero, D).is_err(), "{zero}");
        }
        let typo = Spec::parse("zipff:0.9", D).unwrap_err();
        assert!(
            typo.contains("zipf:S") && typo.contains("--trace"),
            "{typo}"
        );
        assert!(Spec::parse("../t/lirs-ps.txt", D).is_err(), "no such file");
        let file = std::env::temp_dir().join(format!("lirs-ps-{}.txt", std::process::id()));
        std::fs::write(&file, "1\n").unwrap();
        let t = Spec::parse(file.to_str().unwrap(), D);
        std::fs::remove_file(&file).unwrap();
        assert!(t.unwrap().to_string().starts_with("lirs-ps-"));
        let keys = read_trace("# c\n3 x\n\n4\n3\n".as_bytes()).unwrap();
        assert_eq!(keys, [3, 4, 3]);
        assert!(read_trace("a\n".as_bytes()).is_err());
    }

    #[test]
    fn reads_telling_sizes_from_a_readme() {
        let text = "| file | accesses | a telling size | note |\n|---|---|---|---|\n\
                    | a.txt | 10 | 1,000 | x |\n| b.txt | 5 | ? | y |\n";
        assert_eq!(size_from_readme(text, "a.txt"), Some(1000));
        assert_eq!(size_from_readme(text, "b.txt"), None);
        assert_eq!(size_from_readme(text, "c.txt"), None);
        assert_eq!(
            telling_size(Path::new("/nowhere/lirs-multi3.txt")),
            Some(1000)
        );
    }
}
