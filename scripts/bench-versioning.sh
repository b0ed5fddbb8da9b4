#!/usr/bin/env bash
# The versioning load figures (issue 16): PUT and GET of 4 KiB at 16 in flight with s3-load
# against one sovereign-s3 server (4 drives, fsync on), in an unversioned bucket and in a
# versioning-enabled one, in two interleaved rounds. Needs the release build and the aws cli.
set -euo pipefail
T=$HOME/.cache/sovereign-s3/target/release
W=$(mktemp -d)
export AWS_ACCESS_KEY_ID=benchroot AWS_SECRET_ACCESS_KEY=benchroot-secret-0123456789 AWS_DEFAULT_REGION=us-east-1
$T/sovereign-s3 server "$W/d{1...4}" --address 127.0.0.1:9124 --root-user $AWS_ACCESS_KEY_ID --root-password $AWS_SECRET_ACCESS_KEY > $W/log 2>&1 &
PID=$!
trap 'kill $PID; rm -rf $W' EXIT
for i in $(seq 50); do curl -sf http://127.0.0.1:9124/health/live >/dev/null && break; sleep 0.1; done
aws --endpoint-url http://127.0.0.1:9124 s3api create-bucket --bucket plain >/dev/null
aws --endpoint-url http://127.0.0.1:9124 s3api create-bucket --bucket ver >/dev/null
aws --endpoint-url http://127.0.0.1:9124 s3api put-bucket-versioning --bucket ver --versioning-configuration Status=Enabled
for round in 1 2; do
  for b in plain ver; do
    for op in put get; do
      $T/s3-load run --endpoint http://127.0.0.1:9124 --bucket $b --op $op --size 4KiB --concurrency 16 --duration 8s --warmup 2s --json $W/r.json --label $b > /dev/null 2>&1
      python3 -c "import json; o=json.load(open('$W/r.json'))['ops'][0]; print('$round', '$b', '$op', round(o['ops_per_s']), 'p50', o['latency_us']['p50'], 'p99', o['latency_us']['p99'])"
    done
  done
done
