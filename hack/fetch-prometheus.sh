#!/usr/bin/env bash
# Unpacks Debian's `prometheus` package (prometheus + promtool) into a cache outside the
# checkout, for tests that need a real Prometheus.
#
# Why Debian's package and `dpkg -x`: Debian's apt repositories are among the few registries
# reachable from CI, and unpacking (instead of installing) puts no service, user or file
# anywhere on the system. Both binaries are Go programs that link only against libc, so the
# package's other dependencies (JavaScript libraries for the web console, adduser) are not
# needed for the HTTP API that tests use.
#
# Idempotent and safe to run concurrently (a lock serialises downloads). Progress goes to
# stderr; the last (only) line on stdout is the directory holding `prometheus` and `promtool`.
set -euo pipefail

CACHE_ROOT="${AIDEPLOY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aideploy}"
PROM_ROOT="$CACHE_ROOT/prometheus"

log() { printf '[prometheus] %s\n' "$*" >&2; }

# A usable unpacked package: both binaries are executable and answer --version.
valid_dir() {
  local bin_dir="$1/usr/bin"
  local bin
  for bin in prometheus promtool; do
    [[ -f "$bin_dir/$bin" && -x "$bin_dir/$bin" ]] || return 1
    "$bin_dir/$bin" --version >/dev/null 2>&1 || return 1
  done
}

# The version apt would download now, from the local package lists (no network; empty
# when the lists are missing). Epochs (`1:2.3`) contain a colon: keep paths free of it.
candidate_version() {
  apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}' | sed 's/^(none)$//; s/:/_/g'
}

# The newest version already unpacked, if any: lets the script work offline.
newest_cached() {
  local dir
  for dir in $(find "$PROM_ROOT" -mindepth 1 -maxdepth 1 -type d ! -name '.*' 2>/dev/null | sort -rV); do
    if valid_dir "$dir"; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

# Fast path: the version apt would fetch is already unpacked, or apt knows no version
# (no package lists) and some version is.
cached_dir() {
  local version
  version="$(candidate_version)"
  if [[ -n "$version" ]]; then
    valid_dir "$PROM_ROOT/$version" && echo "$PROM_ROOT/$version"
  else
    newest_cached
  fi
}

if dir="$(cached_dir)"; then
  echo "$dir/usr/bin"
  exit 0
fi

mkdir -p "$PROM_ROOT"
exec 9>"$PROM_ROOT/.fetch.lock"
if ! flock -n 9; then
  log "another fetch is running; waiting for it"
  flock 9
fi
# The fetch we waited for may have done the work.
if dir="$(cached_dir)"; then
  echo "$dir/usr/bin"
  exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then SUDO="sudo"; fi

WORK_DIR="$(mktemp -d "$PROM_ROOT/.fetch-XXXXXX")"
trap 'rm -rf "$WORK_DIR"' EXIT

# Runs a command quietly; shows its output only if it fails.
quiet() {
  local out="$WORK_DIR/cmd.log"
  "$@" >"$out" 2>&1 || { local rc=$?; cat "$out" >&2; return "$rc"; }
}

# As root, apt drops to the _apt user for downloads, which cannot write into this private
# directory; it then warns and downloads as root anyway. Say so up front instead.
APT_OPTS=()
if [[ "$(id -u)" == "0" ]]; then APT_OPTS+=(-o "APT::Sandbox::User=root"); fi
download() { (cd "$WORK_DIR" && apt-get "${APT_OPTS[@]}" download -qq prometheus); }

# Offline with an older version unpacked: better a working older Prometheus than none.
fall_back_or_fail() {
  local dir
  if dir="$(newest_cached)"; then
    log "could not download prometheus; using the cached $(basename "$dir")"
    echo "$dir/usr/bin"
    exit 0
  fi
  log "could not download Debian's prometheus package (see above)"
  exit 1
}

log "downloading Debian's prometheus package"
if ! download >"$WORK_DIR/download.log" 2>&1; then
  log "download failed; refreshing the package lists and trying again"
  quiet $SUDO apt-get update -qq || fall_back_or_fail
  quiet download || fall_back_or_fail
fi

DEB="$(find "$WORK_DIR" -maxdepth 1 -name 'prometheus_*.deb' | head -n1)"
[[ -n "$DEB" ]] || { log "apt-get download left no prometheus_*.deb"; exit 1; }
VERSION="$(dpkg-deb -f "$DEB" Version | sed 's/:/_/g')"
TARGET="$PROM_ROOT/$VERSION"

# Unpack beside the target and rename: a reader never sees a half-unpacked directory.
STAGE="$WORK_DIR/root"
quiet dpkg -x "$DEB" "$STAGE"
valid_dir "$STAGE" || { log "the unpacked prometheus $VERSION does not run"; exit 1; }
rm -rf "$TARGET"
mv "$STAGE" "$TARGET"
log "prometheus $VERSION ready in $TARGET/usr/bin"
echo "$TARGET/usr/bin"
