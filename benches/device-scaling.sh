#!/usr/bin/env bash
# The thread-scaling table (1 to 16 threads) of BENCHMARKS.md ("Thread scaling on 16 cores"), for
# a machine with 16 cores. The device machine cannot reach the crate registry, so the binary is built here and
# carried there:
#
#   cargo build --release --bin epochcache-bench
#   device run: command "bash benches/device-scaling.sh", carry ["target/release/epochcache-bench"]
#
# Three runs and their median, about five minutes in all; the JSON and the printed tables land in
# $OUT (the device tool's folder that comes back) or, without it, in benches/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/epochcache-bench
out=${OUT:-benches/results}
nproc
for n in 1 2 3; do
  "$bin" -w hot-get,hot-read,get,zipf-get,mix,replace -t 1,2,4,8,16 --no-progress --rotate "$n" \
    --json "$out/scaling$n.json" >"$out/scaling$n.txt"
done
"$bin" --median-of "$out/scaling1.json" "$out/scaling2.json" "$out/scaling3.json" \
  --json "$out/scaling-median.json" | tee "$out/scaling-median.txt"
