#!/usr/bin/env bash
# Runs Ember's whole test suite on a fresh machine: installs what the tests need (a real
# redis-server 7.0 for the differential suite, redis-sentinel, openssl, redis-py,
# prometheus_client and ioredis, tclsh and tcl-tls for Redis's own suite), checks formatting
# and lints, runs `cargo test`, then Redis 7.0's own test suite against Ember in external,
# internal and TLS modes and its legacy cluster suite (scripts/redis-suite*.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

# apt_install WHY PACKAGE...: Debian packages the tests need.
apt_install() {
  echo "== installing ${*:2} ($1)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${@:2}" >/dev/null
}

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  apt_install "the differential suite" redis-server redis-tools
fi
redis-server --version
command -v redis-sentinel >/dev/null 2>&1 || apt_install "the Sentinel failover test" redis-sentinel
command -v tclsh >/dev/null 2>&1 || apt_install "Redis's own test suite" tcl
command -v pgrep >/dev/null 2>&1 || apt_install "pgrep finds the snapshot writer process in tests" procps
echo 'if {[catch {package require tls}]} {exit 1}' | tclsh >/dev/null 2>&1 || apt_install "Redis's suite in TLS mode" tcl-tls
command -v openssl >/dev/null 2>&1 || apt_install "the TLS tests make their certificates with it" openssl

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
  command -v npm >/dev/null 2>&1 || apt_install "ioredis" nodejs npm
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
  echo "== Redis 7.0's legacy cluster suite (tests/cluster)"
  bash scripts/redis-suite-cluster.sh || status=$?
  exit $status
fi
