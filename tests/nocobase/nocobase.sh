#!/usr/bin/env bash
# tests/nocobase/nocobase.sh — a real NocoBase 2.2.15 (npm registry, SQLite) for integration tests.
#
# Usage: tests/nocobase/nocobase.sh <command>
#   install    idempotent; cold ~2-3 min, warm (already installed) < 1 s
#   start      start in the background on 127.0.0.1:$NOCOBASE_PORT, wait until healthy
#   stop       stop the server and all its child processes (idempotent)
#   restart    stop + start
#   status     exit 0 if running and healthy, 1 otherwise
#   url        print http://127.0.0.1:<port>
#   reset-db   stop, restore the pristine SQLite DB taken right after `nocobase install`, start
#   logs       print the last 100 lines of the server log
#   uninstall  stop and delete the install directory
#
# Environment:
#   NOCOBASE_HOME           install dir (default $HOME/.cache/nocobase-wecom-companion/nocobase-2.2.15);
#                           must be outside the checkout and contain no spaces
#   NOCOBASE_PORT           HTTP port (default 13000); the server listens on 127.0.0.1 only
#   NOCOBASE_START_TIMEOUT  seconds to wait for a healthy server (default 120)
#   NOCOBASE_INSTALL_TIMEOUT seconds allowed for `yarn install` (default 1800)
#   YARN_CACHE_FOLDER, npm_config_cache   honoured (yarn/npm defaults otherwise)
#
# Debian 12 packages this script needs (CI: apt-get install -y --no-install-recommends ...):
#   curl ca-certificates python3 make g++ tar      (build-essential is fine instead of make g++)
# plus Node.js >= 20 with npm and its C headers (<node prefix>/include/node/node.h, as shipped by
# the nodesource `nodejs` package) — sqlite3 is compiled with node-gyp, whose header/binary
# downloads (nodejs.org, GitHub) are unreachable here. flock/setsid come from util-linux
# (essential). No procps/iproute2 needed: processes are found through /proc, ports through bash.
#
# Obstacles worked around (see tests/nocobase/README.md):
#   - create-nocobase-app 2.x adds no sqlite3 driver       -> add "sqlite3": "5.1.7" to package.json
#   - a dependency pulls xlsx from cdn.sheetjs.com          -> yarn resolutions {"xlsx": "0.18.5"}
#   - @langchain/openai declares engines.node >= 22          -> yarn install --ignore-engines
#   - sqlite3's prebuilt binary is on GitHub                 -> build from source (node-gyp, local headers)
#   - commercial plugin download (pkg.nocobase.com)          -> DISABLE_PKG_DOWNLOAD=true
# Pinning: create-nocobase-app/@nocobase/* 2.2.15, sqlite3 5.1.7, yarn 1.22.22, and the whole
# dependency tree through tests/nocobase/yarn.lock (yarn install --frozen-lockfile). Changing any
# of them (or RECIPE_REV) makes `install` redo the install from scratch.
set -euo pipefail

# ---------------------------------------------------------------- pinned versions
NB_VERSION=2.2.15             # create-nocobase-app / @nocobase/* (the only 2.x on the registry here)
SQLITE3_VERSION=5.1.7
XLSX_VERSION=0.18.5
YARN_VERSION=1.22.22
RECIPE_REV=1                  # bump when the install recipe changes: forces a reinstall

# ---------------------------------------------------------------- settings
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
NB_HOME=${NOCOBASE_HOME:-$HOME/.cache/nocobase-wecom-companion/nocobase-$NB_VERSION}
PORT=${NOCOBASE_PORT:-13000}
START_TIMEOUT=${NOCOBASE_START_TIMEOUT:-120}
INSTALL_TIMEOUT=${NOCOBASE_INSTALL_TIMEOUT:-1800}
HOST=127.0.0.1

APP_DIR=$NB_HOME/app
TOOLS_DIR=$NB_HOME/tools
PRISTINE_DIR=$NB_HOME/pristine-db
MARKER=$NB_HOME/.install-complete
SENTINEL=$NB_HOME/.created-by-nocobase-sh
PIDFILE=$NB_HOME/nocobase.pid
SERVER_LOG=$NB_HOME/nocobase.log
INSTALL_LOG=$NB_HOME/install.log
LOCKFILE_PIN=$SCRIPT_DIR/yarn.lock    # optional: pins the whole dependency tree when present

T0=$SECONDS
say()  { printf '[nocobase] %s\n' "$*"; }
die()  { printf '[nocobase] ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { echo "$((SECONDS - T0))s"; }

recipe_id() {
  local lock=none
  [[ -f $LOCKFILE_PIN ]] && lock=$(cksum <"$LOCKFILE_PIN" | cut -d' ' -f1)
  echo "nocobase=$NB_VERSION sqlite3=$SQLITE3_VERSION xlsx=$XLSX_VERSION yarn=$YARN_VERSION lock=$lock rev=$RECIPE_REV"
}

is_installed() { [[ -f $MARKER ]] && [[ $(head -n1 "$MARKER") == "$(recipe_id)" ]]; }

check_home_path() {
  [[ $NB_HOME == /* ]] || die "NOCOBASE_HOME must be an absolute path: $NB_HOME"
  [[ $NB_HOME != *" "* ]] || die "NOCOBASE_HOME must not contain spaces (the NocoBase CLI refuses them): $NB_HOME"
  case "$NB_HOME/" in
    "$SCRIPT_DIR"/*|"$(cd "$SCRIPT_DIR/../.." && pwd)"/*) die "NOCOBASE_HOME must be outside the checkout: $NB_HOME" ;;
  esac
  [[ $PORT =~ ^[0-9]+$ ]] || die "NOCOBASE_PORT must be a number: $PORT"
}

# Serialise every mutating command (two CI steps must not install/start at once).
take_lock() {
  mkdir -p "$(dirname "$NB_HOME")"
  exec 9>"$(dirname "$NB_HOME")/.$(basename "$NB_HOME").lock"
  if ! flock -w 1 9; then
    say "waiting for another nocobase.sh on $NB_HOME ..."
    flock -w 2400 9 || die "timed out waiting for the lock"
  fi
}

# ---------------------------------------------------------------- preflight
node_prefix() { (cd "$(dirname "$(readlink -f "$(command -v node)")")/.." && pwd); }

preflight_runtime() {
  local missing=() c
  for c in node curl flock setsid; do command -v "$c" >/dev/null || missing+=("$c"); done
  ((${#missing[@]} == 0)) || die "missing commands: ${missing[*]} (apt-get install curl ca-certificates util-linux; Node.js >= 20)"
  local major; major=$(node -p 'process.versions.node.split(".")[0]')
  ((major >= 20)) || die "Node.js >= 20 required, found $(node -v)"
}

preflight_build() {
  preflight_runtime
  local missing=() c
  for c in npm python3 make g++ tar; do command -v "$c" >/dev/null || missing+=("$c"); done
  ((${#missing[@]} == 0)) || die "missing commands: ${missing[*]} — on Debian 12: apt-get install -y python3 make g++ tar curl ca-certificates (sqlite3 is compiled from source)"
  if [[ -z ${npm_config_nodedir:-} ]]; then
    local p; p=$(node_prefix)
    [[ -f $p/include/node/node.h ]] || die "Node.js C headers not found at $p/include/node (node-gyp would download them from nodejs.org, unreachable). Install a Node.js that ships its headers (nodesource nodejs) or set npm_config_nodedir."
    export npm_config_nodedir=$p
  fi
}

# ---------------------------------------------------------------- install
step() { # step "label" cmd... : run with output to install.log; on failure show its tail
  local label=$1; shift
  local t=$SECONDS
  say "$label ..."
  printf '\n===== %s: %s\n$ %s\n' "$(date -u +%FT%TZ)" "$label" "$*" >>"$INSTALL_LOG"
  if ! "$@" >>"$INSTALL_LOG" 2>&1; then
    say "FAILED: $label — last 50 lines of $INSTALL_LOG:"
    tail -n 50 "$INSTALL_LOG" | sed 's/^/    /'
    die "install failed (it will be redone from scratch next time)"
  fi
  say "$label done ($((SECONDS - t))s)"
}

patch_package_json() {
  node - "$APP_DIR/package.json" "$SQLITE3_VERSION" "$XLSX_VERSION" <<'EOF'
const fs = require('fs');
const [file, sqlite3, xlsx] = process.argv.slice(2);
const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
pkg.dependencies = { ...pkg.dependencies, sqlite3 };
pkg.resolutions = { ...pkg.resolutions, xlsx };
fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n');
EOF
}

yarn_install() {
  local registry args=(install --ignore-engines --non-interactive --network-timeout 600000 --prefer-offline)
  registry=$(npm config get registry 2>/dev/null || true)
  [[ $registry == http* ]] || registry=https://registry.npmjs.org/
  args+=(--registry "$registry")
  if [[ -f $LOCKFILE_PIN ]]; then
    cp "$LOCKFILE_PIN" "$APP_DIR/yarn.lock" || return 1
    args+=(--frozen-lockfile)
  fi
  echo "\$ yarn ${args[*]}"
  (cd "$APP_DIR" && timeout --foreground --kill-after=30 "$INSTALL_TIMEOUT" yarn "${args[@]}")
}

nocobase_cli() { # run the NocoBase CLI (v1, as `yarn nocobase` does) in the app dir
  (cd "$APP_DIR" &&
    export APP_ENV=production DB_DIALECT=sqlite APP_HOST=$HOST APP_PORT=$PORT DISABLE_PKG_DOWNLOAD=true &&
    exec timeout --foreground --kill-after=30 900 node node_modules/@nocobase/cli-v1/bin/index.js "$@")
}

snapshot_db() {
  # (runs under `if !`, where set -e is off: chain explicitly)
  rm -rf "$PRISTINE_DIR" && mkdir -p "$PRISTINE_DIR" &&
    cp -a "$APP_DIR/storage/db/." "$PRISTINE_DIR/" &&
    ls -l "$PRISTINE_DIR"/*.sqlite
}

# Build processes left behind by an interrupted install: yarn runs lifecycle scripts (the
# sqlite3 compile) detached, so they outlive a killed script and yarn. They run with their
# working directory inside the install's node_modules/tools.
kill_install_strays() {
  local d p cwd home n=0
  home=$(readlink -f "$NB_HOME")
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [[ $p == "$$" || $p == "$BASHPID" ]] && continue
    cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
    if [[ $cwd == "$home/app/node_modules/"* || $cwd == "$home/tools"* ]]; then
      kill -KILL "$p" 2>/dev/null && n=$((n + 1))
    fi
  done
  if ((n)); then say "killed $n process(es) left over from an interrupted install"; sleep 0.5; fi
  return 0
}

cmd_install() {
  preflight_runtime
  if is_installed; then
    say "already installed in $NB_HOME ($(elapsed))"
    return 0
  fi
  preflight_build
  if [[ -e $NB_HOME ]]; then
    if [[ -f $SENTINEL ]]; then
      say "incomplete or outdated install found — removing it"
      cmd_stop_quiet
      kill_install_strays
      local i
      for i in 1 2 3; do rm -rf "$NB_HOME" 2>/dev/null && break; sleep 1; done
      [[ ! -e $NB_HOME ]] || die "could not remove $NB_HOME"
    elif [[ -d $NB_HOME && -z $(ls -A "$NB_HOME") ]]; then
      rmdir "$NB_HOME"
    else
      die "$NB_HOME exists and was not created by this script; refusing to touch it"
    fi
  fi
  mkdir -p "$NB_HOME"
  touch "$SENTINEL"
  : >"$INSTALL_LOG"
  say "installing NocoBase $NB_VERSION (SQLite) into $NB_HOME (log: $INSTALL_LOG)"

  # Keep every download off hosts that are unreachable here.
  export DISABLE_PKG_DOWNLOAD=true
  export npm_config_build_from_source=sqlite3   # skip prebuild-install's GitHub download
  export JOBS=max                               # node-gyp: use all cores
  export PUPPETEER_SKIP_DOWNLOAD=1 PUPPETEER_SKIP_CHROMIUM_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
  export CYPRESS_INSTALL_BINARY=0 ELECTRON_SKIP_BINARY_DOWNLOAD=1 HUSKY=0
  export YARN_DISABLE_SELF_UPDATE_CHECK=true npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
  export PATH=$TOOLS_DIR/node_modules/.bin:$PATH

  step "tools: yarn@$YARN_VERSION create-nocobase-app@$NB_VERSION (npm)" \
    timeout --foreground --kill-after=30 600 npm install --prefix "$TOOLS_DIR" --no-package-lock --no-save \
      "yarn@$YARN_VERSION" "create-nocobase-app@$NB_VERSION"
  [[ $(yarn --version) == "$YARN_VERSION" ]] || die "wrong yarn on PATH: $(command -v yarn)"

  # --skip-dev-dependencies: no @nocobase/devtools (build tool chain), as NocoBase's Docker image and `nb` CLI do.
  step "create-nocobase-app $NB_VERSION" \
    bash -c 'cd "$1" && shift && create-nocobase-app "$@"' _ "$NB_HOME" app \
      --skip-dev-dependencies -d sqlite \
      -e APP_ENV=production -e APP_HOST=$HOST -e APP_PORT=13000 -e DISABLE_PKG_DOWNLOAD=true
  step "package.json: + sqlite3@$SQLITE3_VERSION, resolutions xlsx@$XLSX_VERSION" patch_package_json
  step "yarn install (compiles sqlite3; the long part)" yarn_install
  [[ -f $APP_DIR/node_modules/sqlite3/build/Release/node_sqlite3.node ]] || die "sqlite3 native module was not built (see $INSTALL_LOG)"
  step "nocobase install (initialise the SQLite DB)" nocobase_cli install
  step "snapshot pristine DB" snapshot_db

  { recipe_id; echo "installed_at=$(date -u +%FT%TZ) node=$(node -v) seconds=$((SECONDS - T0))"; } >"$MARKER.tmp"
  mv "$MARKER.tmp" "$MARKER"
  say "installed in $(elapsed): $(du -sh "$NB_HOME" 2>/dev/null | cut -f1) in $NB_HOME"
}

# ---------------------------------------------------------------- processes
proc_alive() { # exists and is not a zombie
  local stat
  [[ -n ${1:-} ]] || return 1
  # `read <file`, not `$(<file)`: with set -e, bash 5.2 exits the whole script when the
  # file of a `$(<file)` is gone (a process that just ended), even after `||`.
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

read_pid() { if [[ -f $PIDFILE ]]; then tr -dc 0-9 <"$PIDFILE"; fi; }

# All live processes of our server, one pid a line:
#  - members of the session that `start` created (its id is the pid in the pidfile; this still
#    works when the session leader, the CLI, has died and left the app orphaned),
#  - any process running NocoBase from this app dir (cwd = app dir, cmdline has
#    node_modules/@nocobase/), e.g. after the pidfile was lost,
#  - and all their descendants.
server_procs() {
  local sid app d p stat f cmd
  local -A kids=()
  local -a seeds=() args=()
  sid=$(read_pid)
  app=$(readlink -f "$APP_DIR")
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    read -r stat 2>/dev/null <"$d/stat" || continue
    read -r -a f <<<"${stat##*) }"          # state ppid pgrp session ...
    [[ ${f[0]} == Z ]] && continue
    kids[${f[1]}]+=" $p"
    if [[ -n $sid && ${f[3]} == "$sid" ]]; then seeds+=("$p"); continue; fi
    mapfile -d '' -t args 2>/dev/null <"$d/cmdline" || continue
    cmd="${args[*]}"
    if [[ $cmd == *node_modules/@nocobase/* && $(readlink "$d/cwd" 2>/dev/null) == "$app" ]]; then
      seeds+=("$p")
    fi
  done
  local -a queue=("${seeds[@]}") found=()
  while ((${#queue[@]})); do
    p=${queue[0]}; queue=("${queue[@]:1}")
    found+=("$p")
    for d in ${kids[$p]:-}; do queue+=("$d"); done
  done
  ((${#found[@]})) || return 1
  printf '%s\n' "${found[@]}" | sort -un
}

pid_label() { # "pid N" (the session leader) or "pids A B" (orphans)
  local p; p=$(read_pid)
  if proc_alive "$p"; then echo "pid $p"; else echo "pids $(server_procs | tr '\n' ' ' | sed 's/ $//')"; fi
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

# prints the version when healthy
health() {
  local body
  body=$(curl -fsS -m 5 "http://$HOST:$PORT/api/app:getInfo" 2>/dev/null) || return 1
  [[ $body =~ \"version\":\"([^\"]+)\" ]] || return 1
  [[ ${BASH_REMATCH[1]} == "$NB_VERSION" ]] || return 1
  echo "${BASH_REMATCH[1]}"
}

# Stop every process of the server: SIGTERM (NocoBase shuts down cleanly in ~1 s), then SIGKILL.
stop_server() {
  local procs p i sid alive
  procs=$(server_procs) || { rm -f "$PIDFILE"; return 0; }
  sid=$(read_pid)
  [[ -n $sid ]] && kill -TERM -- "-$sid" 2>/dev/null || true
  for p in $procs; do kill -TERM "$p" 2>/dev/null || true; done
  for ((i = 0; i < 150; i++)); do            # up to 15 s for a graceful stop
    alive=0
    for p in $procs; do if proc_alive "$p"; then alive=1; break; fi; done
    ((alive)) || break
    sleep 0.1
  done
  procs=$(server_procs; echo "$procs") || true
  for p in $procs; do
    if proc_alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
  done
  for ((i = 0; i < 50; i++)); do port_open || break; sleep 0.1; done
  rm -f "$PIDFILE"
}

cmd_stop_quiet() { stop_server; }

cmd_stop() {
  local procs
  if procs=$(server_procs); then
    say "stopping $(echo "$procs" | wc -l) process(es): $(echo $procs) ..."
    stop_server
    if server_procs >/dev/null; then die "some NocoBase processes survived SIGKILL"; fi
    if port_open; then die "port $PORT still in use after stopping the server"; fi
    say "stopped ($(elapsed)); nothing listens on $HOST:$PORT"
  else
    rm -f "$PIDFILE"
    if port_open; then
      say "not running (but something else listens on $HOST:$PORT — not ours, left alone)"
    else
      say "not running"
    fi
  fi
}

cmd_start() {
  preflight_runtime
  is_installed || die "NocoBase is not installed in $NB_HOME — run: $0 install"
  local pid v
  if server_procs >/dev/null; then
    if v=$(health); then
      say "already running ($(pid_label), version $v) at $(cmd_url)"
      return 0
    fi
    say "NocoBase processes found but not healthy on $(cmd_url) — restarting"
    stop_server
  fi
  rm -f "$PIDFILE"
  if port_open; then
    die "$HOST:$PORT is already in use by another process (set NOCOBASE_PORT to use another port)"
  fi

  if [[ -f $SERVER_LOG ]]; then mv -f "$SERVER_LOG" "$SERVER_LOG.1"; fi
  say "starting NocoBase $NB_VERSION on $(cmd_url) (log: $SERVER_LOG)"
  # New session (setsid) so that stop can find the whole tree; the inner bash writes its own
  # pid and execs the CLI, so the pid is the session id. fd 9 (our lock) is not inherited.
  # APP_LAUNCH_MODE=node: the CLI runs `node lib/index.js start` itself instead of pm2-runtime.
  (
    cd "$APP_DIR"
    exec 9>&- </dev/null >>"$SERVER_LOG" 2>&1
    APP_ENV=production DB_DIALECT=sqlite APP_HOST=$HOST APP_PORT=$PORT DISABLE_PKG_DOWNLOAD=true \
      APP_LAUNCH_MODE=node PATH=$TOOLS_DIR/node_modules/.bin:$PATH \
      setsid bash -c 'echo $$ >"$1"; exec node node_modules/@nocobase/cli-v1/bin/index.js start' _ "$PIDFILE" &
  )
  local deadline=$((SECONDS + START_TIMEOUT)) t=$SECONDS
  while :; do
    pid=$(read_pid)
    if [[ -n $pid ]] && v=$(health); then
      say "healthy after $((SECONDS - t))s (pid $pid, version $v) at $(cmd_url)"
      return 0
    fi
    if [[ -n $pid ]] && ! proc_alive "$pid"; then
      say "the server exited during start-up — last 50 lines of $SERVER_LOG:"
      tail -n 50 "$SERVER_LOG" | sed 's/^/    /'
      stop_server
      die "start failed"
    fi
    if ((SECONDS >= deadline)); then
      say "not healthy after ${START_TIMEOUT}s — last 50 lines of $SERVER_LOG:"
      tail -n 50 "$SERVER_LOG" | sed 's/^/    /'
      stop_server
      die "start timed out"
    fi
    sleep 1
  done
}

cmd_status() {
  local procs v
  if ! is_installed; then say "not installed ($NB_HOME)"; return 1; fi
  if ! procs=$(server_procs); then say "not running"; return 1; fi
  if v=$(health); then
    say "running and healthy ($(pid_label), version $v) at $(cmd_url)"
    return 0
  fi
  say "running (pids $(echo $procs)) but not healthy at $(cmd_url)"
  return 1
}

cmd_url() { echo "http://$HOST:$PORT"; }

cmd_reset_db() {
  is_installed || die "NocoBase is not installed in $NB_HOME — run: $0 install"
  [[ -d $PRISTINE_DIR ]] || die "no pristine DB snapshot in $PRISTINE_DIR"
  cmd_stop
  say "restoring the pristine DB"
  find "$APP_DIR/storage/db" -maxdepth 1 -name '*.sqlite*' -delete
  cp -a "$PRISTINE_DIR/." "$APP_DIR/storage/db/"
  cmd_start
}

cmd_logs() { [[ -f $SERVER_LOG ]] && tail -n 100 "$SERVER_LOG" || say "no log at $SERVER_LOG"; }

cmd_uninstall() {
  if [[ ! -e $NB_HOME ]]; then say "nothing installed at $NB_HOME"; return 0; fi
  [[ -f $SENTINEL ]] || die "$NB_HOME was not created by this script; refusing to delete it"
  cmd_stop
  rm -rf "$NB_HOME"
  say "removed $NB_HOME"
}

# ---------------------------------------------------------------- main
usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

main() {
  local cmd=${1:-}
  case $cmd in
    url) check_home_path; cmd_url; return ;;
    ""|-h|--help|help) usage; return ;;
  esac
  check_home_path
  case $cmd in
    status|logs) ;;          # read-only: never wait behind a running install
    *) take_lock ;;
  esac
  case $cmd in
    install)   cmd_install ;;
    start)     cmd_start ;;
    stop)      cmd_stop ;;
    restart)   cmd_stop; cmd_start ;;
    status)    cmd_status ;;
    reset-db)  cmd_reset_db ;;
    logs)      cmd_logs ;;
    uninstall) cmd_uninstall ;;
    *) usage >&2; die "unknown command: $cmd" ;;
  esac
}

main "$@"
