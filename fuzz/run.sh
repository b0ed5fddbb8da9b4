#!/bin/sh
# Runs the fuzz targets one after another, SECONDS each (default 240), on stable Rust.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]; SANITIZER=none if AddressSanitizer will not link.
# Corpora grow in fuzz/corpus/TARGET, crash inputs land in fuzz/artifacts/TARGET (both ignored
# by git); fuzz/seeds/TARGET and fuzz/dicts/TARGET.dict are the checked-in starting points.
set -u
cd "$(dirname "$0")/.."
seconds=${1:-240}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- gateway_parsers s3_xml_bodies sigv4_headers
failed=""
for target in "$@"; do
    mkdir -p "fuzz/corpus/$target"
    dict=""
    [ -f "fuzz/dicts/$target.dict" ] && dict="-dict=fuzz/dicts/$target.dict"
    # cargo-fuzz passes nightly-only flags (-Zsanitizer, -Cpasses=sancov-module); RUSTC_BOOTSTRAP
    # lets the stable toolchain accept them.
    RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer "${SANITIZER:-address}" "$target" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" -- -max_total_time="$seconds" $dict ||
        failed="$failed $target"
done
[ -z "$failed" ] || { echo "fuzz/run.sh: crashes or errors in:$failed" >&2; exit 1; }
