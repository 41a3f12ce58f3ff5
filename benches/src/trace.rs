//! Trace files: a recorded sequence of key requests, replayed cache-aside.
//!
//! The format is plain text, one request a line; the key is the line's first whitespace-separated
//! field (so a log with the key first and anything after it works as is). Blank lines and lines
//! starting with `#` are skipped.

use std::collections::HashMap;
use std::io::{self, BufRead};
use std::path::Path;

use crate::data;
use crate::workload::DataSet;

/// A loaded trace: its distinct keys (with a value each) and the request sequence as indices.
pub struct Trace {
    /// The distinct keys, in order of first request, each with a value.
    pub data: DataSet,
    /// The requests, as indices into `data.keys`.
    pub requests: Vec<u32>,
}

impl Trace {
    /// Reads a trace from `path`, giving each distinct key a value of `value_size` bytes.
    pub fn load(path: &Path, value_size: usize) -> io::Result<Self> {
        let file = std::fs::File::open(path)?;
        Self::read(io::BufReader::new(file), value_size)
    }

    /// Reads a trace from `reader`.
    pub fn read(reader: impl BufRead, value_size: usize) -> io::Result<Self> {
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut keys = Vec::new();
        let mut requests = Vec::new();
        for line in reader.lines() {
            let line = line?;
            let Some(key) = line.split_whitespace().next() else {
                continue;
            };
            if key.starts_with('#') {
                continue;
            }
            let next = index.len() as u32;
            let i = *index.entry(key.to_string()).or_insert_with(|| {
                keys.push(key.to_string());
                next
            });
            requests.push(i);
        }
        if requests.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the trace has no requests",
            ));
        }
        let values = data::values(keys.len(), value_size);
        Ok(Trace {
            data: DataSet { keys, values },
            requests,
        })
    }

    /// One stream per thread: the whole trace, thread `t` starting `t / threads` of the way in.
    pub fn streams(&self, threads: usize) -> Vec<Vec<u32>> {
        let n = self.requests.len();
        (0..threads)
            .map(|t| {
                let mut s = self.requests.clone();
                s.rotate_left(t * n / threads);
                s
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_first_fields_and_skips_comments() {
        let text = "# a comment\na 1\nb\n\na x y\nc\n";
        let t = Trace::read(text.as_bytes(), 8).unwrap();
        assert_eq!(t.data.keys, ["a", "b", "c"]);
        assert_eq!(t.requests, [0, 1, 0, 2]);
        assert_eq!(t.streams(2)[1], [0, 2, 0, 1]);
        assert!(Trace::read("".as_bytes(), 8).is_err());
    }
}
