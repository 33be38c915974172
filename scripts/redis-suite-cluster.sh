#!/usr/bin/env bash
# Runs tests of Redis 7.0.15's legacy cluster suite (tests/cluster, what Redis's
# runtest-cluster runs) against ember-server: the tests that pass in full, so any failure is
# a regression. The harness starts 20 nodes on ports 30000-30019 (cluster buses
# 40000-40019) from ../../../src/redis-server, so a work folder holds a copy of the suite
# beside src/redis-server (a copy of ember-server) and src/redis-cli (the system's).
#
#   scripts/redis-suite-cluster.sh [TEST ...]   # names as in tests/cluster/tests, no .tcl
#
# Exit status 0 only when every test passed.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
suite=${REDIS_TESTS_SUITE:-$repo/tests/redis-suite/upstream}
command -v tclsh >/dev/null || { echo "redis-suite-cluster: tclsh is missing (apt-get install tcl)" >&2; exit 2; }
cli=$(command -v redis-cli) || { echo "redis-suite-cluster: redis-cli is missing (apt-get install redis-tools)" >&2; exit 2; }

bin=${EMBER_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin ember-server || exit 2
  bin=${CARGO_TARGET_DIR:-$repo/target}/release/ember-server
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/ember-suite-cluster.XXXXXX")
mkdir -p "$work/src"
cp -r "$suite/tests" "$work/"
chmod -R u+w "$work/tests"
cp "$bin" "$work/src/redis-server"
ln -s "$cli" "$work/src/redis-cli"

tests=("$@")
# Every file runs: 20 and 21 are disabled upstream (`if {false}`).
[ ${#tests[@]} -eq 0 ] && tests=(00-base 01-faildet 02-failover 03-failover-loop 04-resharding 05-slave-selection
  06-slave-stop-cond 07-replica-migration 08-update-msg 09-pubsub 10-manual-failover 11-manual-takeover
  12-replica-migration-2 12.1-replica-migration-3 13-no-failover-option 14-consistency-check 15-cluster-slots
  16-transactions-on-replica 17-diskless-load-swapdb 18-info 19-cluster-nodes-slots 22-replica-in-sync
  23-multiple-slot-operations 24-links 25-pubsubshard-slot-migration 26-pubsubshard 27-endpoints 28-cluster-shards
  29-slot-migration-response)
echo "# Redis's legacy cluster tests against ember-server: ${tests[*]}"
args=()
for t in "${tests[@]}"; do args+=(--single "$t"); done
log="$work/cluster.log"
(cd "$work" && timeout "${CLUSTER_SUITE_TIMEOUT:-1500}" tclsh tests/cluster/run.tcl ${CLUSTER_SUITE_ARGS:-} "${args[@]}" >"$log" 2>&1)
status=$?
# The harness prints one line per check ("[ok]"-less: "<time>> <name>: OK") and stops a test
# file at its first failure.
ok=$(grep -c ': .*OK' "$log")
failed=$(grep -cE 'FAILED|\[err\]' "$log")
grep -E 'Testing unit|FAILED|\[err\]|exception' "$log" | sed 's/\x1b\[[0-9;]*m//g'
if [ $status -eq 0 ] && ! grep -q 'GOOD! No errors' "$log"; then status=1; fi
[ $status -ne 0 ] && tail -40 "$log" | sed 's/\x1b\[[0-9;]*m//g'
echo "CLUSTER TOTAL checks_ok=$ok failed=$failed exit=$status log=$log"
exit $status
