#!/usr/bin/env bash
# Runs fuzz targets one after another, each for SECONDS, at the lowest CPU
# priority, with the seed corpus in corpus/<target> and crashes written to
# artifacts/<target>/. Build first:
#   RUSTC_BOOTSTRAP=1 cargo fuzz build -s none        (from fuzz/)
# Usage: fuzz/run.sh SECONDS target [target...]
# Logs: fuzz/artifacts/<target>.log; the last line of each says how it ended.
set -u
cd "$(dirname "$0")"
secs=$1
shift
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p artifacts
for t in "$@"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  start=$(date +%s)
  nice -n 19 "$bin/$t" "corpus/$t" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"artifacts/$t.log" 2>&1
  rc=$?
  echo "$t: exit $rc after $(( $(date +%s) - start )) s" | tee -a "artifacts/$t.log"
done
