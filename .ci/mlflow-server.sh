#!/usr/bin/env bash
# Start or stop a real MLflow tracking server for the tests.
#   .ci/mlflow-server.sh install                 create the venv (MLFLOW_VENV, default .venv-mlflow)
#   .ci/mlflow-server.sh start <dir> <port> [--basic-auth]
#                                                SQLite store + artifact folder under <dir>; waits for /health.
#                                                --basic-auth: MLflow's basic-auth app, admin user "admin" with
#                                                the password in MLFLOW_AUTH_ADMIN_PASSWORD
#   .ci/mlflow-server.sh stop  <dir> <port>      stops the server started for <dir>
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MLFLOW_VENV:-$repo/.venv-mlflow}"
requirements="$repo/.ci/mlflow-requirements.txt"

install_venv() {
  # A marker holding the requirements' hash tells a finished install from an interrupted one.
  local marker="$venv/.sardine-requirements"
  local want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ -x "$venv/bin/mlflow" && -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
    return 0
  fi
  if [[ -L "$venv" ]]; then
    # A link to a venv kept elsewhere (shared by several checkouts) is not this checkout's to change.
    echo "$venv links to $(readlink -f "$venv"), whose install does not match $requirements; update it there" >&2
    return 1
  fi
  local python="${MLFLOW_PYTHON:-python3}"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" > "$marker"
}

wait_healthy() {
  local port="$1" pid="$2" log="$3"
  # A fresh SQLite database runs all migrations first: allow a couple of minutes on a loaded machine.
  for _ in $(seq 1 600); do
    if "$venv/bin/python" -c 'import sys, urllib.request; sys.exit(urllib.request.urlopen(sys.argv[1], timeout=5).read().strip() != b"OK")' \
      "http://127.0.0.1:$port/health" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "mlflow server exited before becoming healthy; log follows:" >&2
      tail -n 50 "$log" >&2
      return 1
    fi
    sleep 0.25
  done
  echo "mlflow server on port $port not healthy after 150 s; log follows:" >&2
  tail -n 50 "$log" >&2
  return 1
}

start() {
  local dir="$1" port="$2" auth="${3:-}"
  install_venv
  mkdir -p "$dir/artifacts"
  dir="$(cd "$dir" && pwd)"
  local log="$dir/server.log"
  local app=()
  if [[ "$auth" == "--basic-auth" ]]; then
    : "${MLFLOW_AUTH_ADMIN_PASSWORD:?--basic-auth needs MLFLOW_AUTH_ADMIN_PASSWORD}"
    # Keep the user database with the server's other files (the default is the current folder).
    # auth_cache_ttl_seconds: without it every request pays a PBKDF2 hash, seconds each on a busy machine.
    printf '[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///%s/basic_auth.db\nadmin_username = admin\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\nauth_cache_ttl_seconds = 600\n' \
      "$dir" > "$dir/basic_auth.ini"
    export MLFLOW_AUTH_CONFIG_PATH="$dir/basic_auth.ini"
    # The auth app's CSRF protection needs a fixed secret; keeping it in <dir> lets a restart reuse it.
    [[ -f "$dir/flask-secret-key" ]] || head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/flask-secret-key"
    MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$dir/flask-secret-key")"
    export MLFLOW_FLASK_SERVER_SECRET_KEY
    app=(--app-name basic-auth)
  elif [[ -n "$auth" ]]; then
    echo "unknown option: $auth" >&2
    return 2
  fi
  # setsid: the server and its gunicorn/uvicorn workers share one process group that stop can end.
  setsid "$venv/bin/mlflow" server \
    --backend-store-uri "sqlite:///$dir/mlflow.db" \
    --artifacts-destination "$dir/artifacts" \
    --host 127.0.0.1 --port "$port" --workers 1 "${app[@]}" \
    >"$log" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" > "$dir/server-$port.pid"
  wait_healthy "$port" "$pid" "$log"
  echo "mlflow server ready at http://127.0.0.1:$port (pid $pid)"
}

stop() {
  local dir="$1" port="$2"
  local pidfile="$dir/server-$port.pid"
  [[ -f "$pidfile" ]] || { echo "no server recorded in $pidfile" >&2; return 0; }
  local pid
  pid="$(cat "$pidfile")"
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "${1:-}" in
  install) install_venv ;;
  start) start "${2:?dir}" "${3:?port}" "${4:-}" ;;
  stop) stop "${2:?dir}" "${3:?port}" ;;
  *) echo "usage: $0 install | start <dir> <port> [--basic-auth] | stop <dir> <port>" >&2; exit 2 ;;
esac
