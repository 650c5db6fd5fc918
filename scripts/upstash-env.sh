#!/usr/bin/env bash
# A throwaway redis-server plus upstash-bridge (bridge/) on free loopback ports: a local
# Upstash-compatible REST endpoint for tests and local work.
#
# Executed:
#   scripts/upstash-env.sh run CMD [ARGS...]  start both, run CMD with the variables below, stop both
#   eval "$(scripts/upstash-env.sh start)"    start both; print `export NAME=value` lines
#   scripts/upstash-env.sh stop               stop what the exported PIDs name; remove the scratch dir
# Sourced (from bash):
#   . scripts/upstash-env.sh && upstash_env_start && trap upstash_env_stop EXIT
#
# Variables set: UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN (the standard token),
# UPSTASH_REDIS_REST_READONLY_TOKEN, REDIS_URL (the redis-server behind the bridge),
# UPSTASH_BRIDGE_PID, UPSTASH_REDIS_PID, UPSTASH_ENV_DIR (scratch dir: redis.log, bridge.log).
# Tokens are random per start and reach the bridge through its environment, not its command line.
#
# Settings: UPSTASH_BRIDGE_BIN (default: target/debug/upstash-bridge, built with
# `cargo build -p upstash-bridge` when missing), UPSTASH_BRIDGE_ARGS (extra bridge arguments, e.g.
# "--verbose" to log one line per request into bridge.log), REDIS_SERVER (default: redis-server).

_upstash_env_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_upstash_env_vars=(UPSTASH_REDIS_REST_URL UPSTASH_REDIS_REST_TOKEN UPSTASH_REDIS_REST_READONLY_TOKEN
  REDIS_URL UPSTASH_BRIDGE_PID UPSTASH_REDIS_PID UPSTASH_ENV_DIR)

_upstash_env_log() { printf 'upstash-env: %s\n' "$*" >&2; }

_upstash_env_hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# True when nothing accepts connections on 127.0.0.1:$1.
_upstash_env_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True when the bridge on port $1 answers GET /__bridge/health with 200 (Redis answers PING).
_upstash_env_healthy() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET /__bridge/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
    IFS= read -r -t 5 status <&3 || exit 1
    [[ $status == "HTTP/1.1 200"* ]]
  ) 2>/dev/null
}

# True while process $1 runs (a zombie waiting to be reaped counts as gone).
_upstash_env_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

upstash_env_start() {
  local root=$_upstash_env_root redis_bin bin dir port="" redis_pid="" bridge_pid i
  local token ro bridge_port="" line
  redis_bin=${REDIS_SERVER:-redis-server}
  if ! command -v "$redis_bin" >/dev/null 2>&1; then
    _upstash_env_log "redis-server not found (./run test_bridge installs it)"
    return 1
  fi
  bin=${UPSTASH_BRIDGE_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/upstash-bridge}
  if [ -z "${UPSTASH_BRIDGE_BIN:-}" ] && [ ! -x "$bin" ]; then
    _upstash_env_log "cargo build -p upstash-bridge"
    (cd "$root" && cargo build -q -p upstash-bridge) >&2 || return 1
  fi
  dir=$(mktemp -d "${TMPDIR:-/tmp}/upstash-env.XXXXXX") || return 1

  # redis-server on a free port; retried when the port is taken between the check and the bind.
  for i in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    _upstash_env_port_free "$port" || continue
    "$redis_bin" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
      --dir "$dir" --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 &
    redis_pid=$!
    for i in $(seq 1 200); do
      if grep -q "Ready to accept connections" "$dir/redis.log" 2>/dev/null; then break; fi
      _upstash_env_alive "$redis_pid" || break
      sleep 0.05
    done
    if _upstash_env_alive "$redis_pid" && grep -q "Ready to accept" "$dir/redis.log" 2>/dev/null; then
      break
    fi
    kill "$redis_pid" 2>/dev/null || true
    redis_pid=""
  done
  if [ -z "$redis_pid" ]; then
    _upstash_env_log "redis-server did not start; see $dir/redis.log"
    return 1
  fi

  token=$(_upstash_env_hex)
  ro=$(_upstash_env_hex)
  # shellcheck disable=SC2086
  UPSTASH_BRIDGE_TOKEN=$token UPSTASH_BRIDGE_READ_ONLY_TOKEN=$ro \
    "$bin" --listen 127.0.0.1:0 --redis-url "redis://127.0.0.1:$port" ${UPSTASH_BRIDGE_ARGS:-} \
    </dev/null >"$dir/bridge.out" 2>"$dir/bridge.log" &
  bridge_pid=$!
  for i in $(seq 1 200); do
    line=$(head -n1 "$dir/bridge.out" 2>/dev/null || true)
    if [[ $line == "upstash-bridge listening on http://127.0.0.1:"* ]]; then
      bridge_port=${line##*:}
      break
    fi
    _upstash_env_alive "$bridge_pid" || break
    sleep 0.05
  done
  if [ -n "$bridge_port" ]; then
    for i in $(seq 1 200); do
      if _upstash_env_healthy "$bridge_port"; then break; fi
      sleep 0.05
    done
  fi
  if [ -z "$bridge_port" ] || ! _upstash_env_healthy "$bridge_port"; then
    _upstash_env_log "upstash-bridge did not become healthy; see $dir/bridge.log"
    kill "$bridge_pid" "$redis_pid" 2>/dev/null || true
    return 1
  fi

  export UPSTASH_REDIS_REST_URL="http://127.0.0.1:$bridge_port"
  export UPSTASH_REDIS_REST_TOKEN="$token"
  export UPSTASH_REDIS_REST_READONLY_TOKEN="$ro"
  export REDIS_URL="redis://127.0.0.1:$port"
  export UPSTASH_BRIDGE_PID="$bridge_pid" UPSTASH_REDIS_PID="$redis_pid" UPSTASH_ENV_DIR="$dir"
  _upstash_env_log "bridge $UPSTASH_REDIS_REST_URL (pid $bridge_pid) -> $REDIS_URL (pid $redis_pid)"
}

# Prints the variables as `export NAME=value` lines (shell-quoted) for eval.
upstash_env_print() {
  local name
  for name in "${_upstash_env_vars[@]}"; do
    printf 'export %s=%q\n' "$name" "${!name}"
  done
}

upstash_env_stop() {
  local pid i
  for pid in ${UPSTASH_BRIDGE_PID:-} ${UPSTASH_REDIS_PID:-}; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in ${UPSTASH_BRIDGE_PID:-} ${UPSTASH_REDIS_PID:-}; do
    for i in $(seq 1 100); do
      _upstash_env_alive "$pid" || break
      sleep 0.05
    done
  done
  case "${UPSTASH_ENV_DIR:-}" in
    */upstash-env.*) rm -rf "$UPSTASH_ENV_DIR" ;;
  esac
  unset "${_upstash_env_vars[@]}"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  case "${1:-}" in
    start)
      upstash_env_start
      upstash_env_print
      ;;
    stop)
      upstash_env_stop
      ;;
    run)
      shift
      [ "$#" -gt 0 ] || { echo "usage: $0 run CMD [ARGS...]" >&2; exit 2; }
      upstash_env_start
      trap upstash_env_stop EXIT
      status=0
      "$@" || status=$?
      exit "$status"
      ;;
    *)
      sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
fi
