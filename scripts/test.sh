#!/usr/bin/env bash
# Runs Ember's whole test suite on a fresh machine: installs what the tests need (a real
# redis-server 7.0 for the differential suite, redis-sentinel, openssl, redis-py and ioredis for the client-library
# tests, tclsh for Redis's own suite), checks formatting and lints, runs `cargo test`, then
# Redis 7.0's own test suite against Ember (scripts/redis-suite.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "== installing redis-server and redis-tools"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi
redis-server --version

if ! command -v redis-sentinel >/dev/null 2>&1; then
  echo "== installing redis-sentinel (the Sentinel failover test)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-sentinel >/dev/null
fi

if ! command -v tclsh >/dev/null 2>&1; then
  echo "== installing tcl (Redis's own test suite)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq tcl >/dev/null
fi

if ! command -v pgrep >/dev/null 2>&1; then
  echo "== installing procps (pgrep finds the snapshot writer process in tests)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq procps >/dev/null
fi

if ! echo 'package require tls' | tclsh >/dev/null 2>&1; then
  echo "== installing tcl-tls (Redis's suite in TLS mode)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq tcl-tls >/dev/null
fi

if ! command -v openssl >/dev/null 2>&1; then
  echo "== installing openssl (the TLS tests make their certificates with it)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >/dev/null
fi

if ! python3 -c 'import redis' >/dev/null 2>&1; then
  echo "== installing redis-py"
  python3 -m pip install -q redis
fi

if ! python3 -c 'import prometheus_client' >/dev/null 2>&1; then
  echo "== installing prometheus_client (its parser reads the metrics endpoint in tests)"
  python3 -m pip install -q prometheus_client
fi

if [ ! -d tests/clients/node/node_modules/ioredis ]; then
  echo "== installing ioredis (tests/clients/node, from its lock file)"
  if ! command -v npm >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
  fi
  npm ci --prefix tests/clients/node --no-audit --no-fund --loglevel=error
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test"
cargo test "$@"
if [ $# -eq 0 ]; then
  echo "== Redis 7.0's own test suite against ember-server"
  status=0
  bash scripts/redis-suite.sh || status=$?
  echo "== Redis 7.0's own test suite in internal mode (units that pass in full)"
  bash scripts/redis-suite-internal.sh || status=$?
  echo "== Redis 7.0's own test suite in TLS mode"
  bash scripts/redis-suite-tls.sh || status=$?
  exit $status
fi
