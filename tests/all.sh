#!/usr/bin/env bash
# The whole test suite, in the order a failure is cheapest to find: formatting, lints, the unit,
# integration, property and doc tests, the docs, then the lints and the loom models under the
# loom cfgs, then the loom models again under AddressSanitizer. README's test command; `.ci/run`
# calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
step_log=$(mktemp)
trap 'rm -f "$log" "$step_log"' EXIT
step() {
  echo "==> $*"
  "$@" 2>&1 | tee "$step_log"
  cat "$step_log" >>"$log"
}
# Fails unless the last step ran at least $1 tests: a loom step whose cfg was lost would build
# the models' files empty (each is `#![cfg(epochcache_loom)]`) and pass with none.
ran_at_least() {
  local ran
  ran=$(grep -oE 'test result: ok\. [0-9]+ passed' "$step_log" | awk '{s += $4} END {print s + 0}')
  if [ "$ran" -lt "$1" ]; then
    echo "expected at least $1 loom models to run, $ran did" >&2
    exit 1
  fi
}
# Cargo prefers CARGO_ENCODED_RUSTFLAGS to RUSTFLAGS: one left in the environment would drop the
# loom cfgs below.
unset CARGO_ENCODED_RUSTFLAGS

# The loom models explore every interleaving up to this many preemptions; 2 keeps the whole
# suite within minutes on two cores (raise it locally for a deeper search).
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
loom_cfg="--cfg epochcache_loom --cfg crossbeam_loom --cfg crossbeam_sanitize"

step cargo fmt --all -- --check
step cargo clippy --workspace --all-targets -- -D warnings
step cargo test --workspace
# The benches are built, not run: speed is measured by `cargo bench`, never asserted in tests.
step cargo bench --workspace --no-run
step cargo test --workspace --doc
# Broken intra-doc links fail the build of the docs users read.
RUSTDOCFLAGS="-D warnings" step cargo doc -p epochcache --no-deps
# And of the internals' docs, which link across the private modules.
RUSTDOCFLAGS="-D warnings" step cargo doc -p epochcache --no-deps --document-private-items

# Loom replaces the atomics, the thread locals and crossbeam-epoch's internals with its own, so
# the models get a target directory of their own and never invalidate the normal build.
# Code compiled only under those cfgs (or left out by them) is linted there too.
RUSTFLAGS="$loom_cfg" CARGO_TARGET_DIR=target/loom \
  step cargo clippy -p epochcache-loom-tests --tests -- -D warnings
RUSTFLAGS="$loom_cfg" CARGO_TARGET_DIR=target/loom \
  step cargo test --release -p epochcache-loom-tests
ran_at_least 32

# The same models under AddressSanitizer: loom checks orderings, ASan catches a read of memory
# that the epoch collector already freed. `--target` keeps the sanitizer off build scripts and
# proc macros; RUSTC_BOOTSTRAP lets the stable compiler take -Z flags. All but four models whose
# checks ASan cannot see: the growing replacement checks the budget (its eviction's frees are the
# ones the replacement model races under ASan) and takes 200 s under ASan against 2 s without;
# three loader models check who loads and who waits, in safe code that retires nothing.
host=$(rustc -vV | sed -n 's/^host: //p') # x86_64-unknown-linux-gnu here; aarch64 Linux works too
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Zsanitizer=address $loom_cfg" \
  ASAN_OPTIONS="detect_leaks=0" CARGO_TARGET_DIR=target/asan \
  step cargo test --release -p epochcache-loom-tests --target "$host" \
  -- --skip a_growing_replacement_racing_the_eviction_of_its_key \
  --skip two_threads_missing_one_key_load_it_once --skip a_loader_that_panics_leaves_no_waiter_stuck \
  --skip two_leaders_asking_for_each_others_keys_never_wait_for_each_other
ran_at_least 28

passed=$(grep -oE 'test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -oE '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
echo "all suites: $passed passed, $failed failed"
