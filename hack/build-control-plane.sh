#!/usr/bin/env bash
# Builds a real kube-apiserver + kube-controller-manager (Kubernetes v1.20.2, from Debian's
# own source package) and unpacks Debian's etcd, into a cache outside the checkout.
#
# Why from source: the only registries reachable from CI are PyPI, Debian and npm, and no
# prebuilt control-plane binary is published there. The build takes ~5 minutes on 2 cores
# and is done once per machine; later runs find the cache and exit at once.
#
# Idempotent and safe to run concurrently (a lock serialises builds). Progress goes to
# stderr; the last (only) line on stdout is the directory holding the three binaries.
set -euo pipefail

K8S_VERSION="1.20.2"
CACHE_ROOT="${AIDEPLOY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/aideploy}"
BIN_DIR="$CACHE_ROOT/control-plane/v$K8S_VERSION"
WORK_DIR="$CACHE_ROOT/build-tmp"

STARTED=$SECONDS
# Each line says how long the build has run: the first one takes minutes.
log() {
  local spent=$((SECONDS - STARTED))
  printf '[control-plane %dm%02ds] %s\n' $((spent / 60)) $((spent % 60)) "$*" >&2
}

# A usable binary: an executable ELF file that answers --version.
valid_bin() {
  local bin="$BIN_DIR/$1"
  [[ -f "$bin" && -x "$bin" ]] || return 1
  [[ "$(LC_ALL=C head -c 4 "$bin")" == $'\x7fELF' ]] || return 1
  "$bin" --version >/dev/null 2>&1
}
need_k8s() { ! { valid_bin kube-apiserver && valid_bin kube-controller-manager; }; }
need_etcd() { ! valid_bin etcd; }

if ! need_k8s && ! need_etcd; then
  echo "$BIN_DIR"
  exit 0
fi

mkdir -p "$CACHE_ROOT" "$BIN_DIR"
exec 9>"$CACHE_ROOT/.build.lock"
if ! flock -n 9; then
  log "another build is running; waiting for it"
  flock 9
fi
# The build we waited for may have done the work.
if ! need_k8s && ! need_etcd; then
  echo "$BIN_DIR"
  exit 0
fi

SUDO=""
if [[ "$(id -u)" != "0" ]]; then SUDO="sudo"; fi

rm -rf "$WORK_DIR"
mkdir -p "$WORK_DIR"
LOG_KEEP="$CACHE_ROOT/logs"
# On failure the build's own logs outlive the scratch directory: say where they are.
keep_logs() {
  local kept=()
  mkdir -p "$LOG_KEEP"
  for f in build.log cmd.log; do
    if [[ -f "$WORK_DIR/$f" ]]; then cp "$WORK_DIR/$f" "$LOG_KEEP/$f"; kept+=("$LOG_KEEP/$f"); fi
  done
  ((${#kept[@]})) && log "the build failed; its logs are kept: ${kept[*]}"
  return 0
}
trap 'rc=$?; ((rc == 0)) || keep_logs; cd / && rm -rf "$WORK_DIR"' EXIT
cd "$WORK_DIR"

# Runs a command quietly; shows its output only if it fails.
quiet() {
  local out="$WORK_DIR/cmd.log"
  "$@" >"$out" 2>&1 || { local rc=$?; cat "$out" >&2; return "$rc"; }
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    quiet $SUDO apt-get update -qq
    quiet $SUDO env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

# A private apt configuration with source entries, so the machine's own apt setup is untouched.
APT_DIR="$WORK_DIR/apt"
mkdir -p "$APT_DIR/sources.list.d" "$APT_DIR/lists/partial"
sed -E 's/^Types:.*/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources \
  >"$APT_DIR/sources.list.d/debian.sources"
APT_OPTS=(-o "Dir::Etc::SourceParts=$APT_DIR/sources.list.d" -o "Dir::Etc::SourceList=/dev/null"
  -o "Dir::State::Lists=$APT_DIR/lists")
# As root, apt drops to the _apt user for downloads, which cannot write into this private
# directory; it then warns and downloads as root anyway. Say so up front instead.
if [[ "$(id -u)" == "0" ]]; then APT_OPTS+=(-o "APT::Sandbox::User=root"); fi
private_apt() { apt-get "${APT_OPTS[@]}" "$@"; }

if need_k8s; then
  apt_install golang-1.19-go golang-github-modern-go-reflect2-dev dpkg-dev make rsync openssl
fi

log "fetching Debian package lists (private apt configuration)"
quiet private_apt update -qq

if need_k8s; then
  log "downloading the kubernetes source package"
  quiet private_apt source --download-only kubernetes
  quiet dpkg-source --no-check -x kubernetes_*.dsc k8s-src
  SRC="$WORK_DIR/k8s-src"

  # vendored reflect2 v1.0.1 breaks with Go >= 1.18: use Debian's v1.0.2 instead.
  log "patching vendored modern-go/reflect2 to Debian's v1.0.2"
  rm -rf "$SRC/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$SRC/vendor/github.com/modern-go/reflect2"
  rm -f "$SRC/vendor/github.com/modern-go/reflect2/go.mod" "$SRC/vendor/github.com/modern-go/reflect2/go.sum"
  sed -i 's#github.com/modern-go/reflect2 v1.0.1#github.com/modern-go/reflect2 v1.0.2#' "$SRC/go.mod" "$SRC/vendor/modules.txt"
  sed -i '/github.com\/modern-go\/reflect2 v1.0.1/d' "$SRC/go.sum" || true

  GOPATH_DIR="$WORK_DIR/gopath"
  mkdir -p "$GOPATH_DIR/src/k8s.io"
  ln -sfn "$SRC" "$GOPATH_DIR/src/k8s.io/kubernetes"

  log "building kube-apiserver and kube-controller-manager (several minutes)"
  (
    cd "$GOPATH_DIR/src/k8s.io/kubernetes"
    export PATH="/usr/lib/go-1.19/bin:$PATH" GOPATH="$GOPATH_DIR" CGO_ENABLED=0 GOFLAGS=-mod=vendor GOPROXY=off GO111MODULE=on
    export GOCACHE="$WORK_DIR/gocache" KUBE_GIT_VERSION="v$K8S_VERSION" KUBE_GIT_TREE_STATE=clean
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$WORK_DIR/build.log" 2>&1 &
    building=$!
    # A heartbeat, so that minutes of compiling do not look like a hang.
    while kill -0 "$building" 2>/dev/null; do
      for _ in $(seq 30); do kill -0 "$building" 2>/dev/null && sleep 1; done
      kill -0 "$building" 2>/dev/null && log "still compiling ($(grep -c . "$WORK_DIR/build.log") lines of build output so far)"
    done
    wait "$building" || { tail -n 40 "$WORK_DIR/build.log" >&2; exit 1; }
  )
  OUT="$SRC/_output/local/bin/linux/$(dpkg --print-architecture)"
  [[ -x "$OUT/kube-apiserver" ]] || OUT="$(dirname "$(find "$SRC/_output" -name kube-apiserver -type f | head -n1)")"
  install -m 0755 "$OUT/kube-apiserver" "$OUT/kube-controller-manager" "$BIN_DIR/"
fi

if need_etcd; then
  log "unpacking Debian's etcd-server (no system service is installed)"
  mkdir -p "$WORK_DIR/etcd"
  (cd "$WORK_DIR/etcd" && quiet private_apt download etcd-server && dpkg -x etcd-server_*.deb root)
  # The package also ships /etc/init.d/etcd: take the server binary itself.
  install -m 0755 "$WORK_DIR/etcd/root/usr/bin/etcd" "$BIN_DIR/etcd"
fi

for bin in kube-apiserver kube-controller-manager etcd; do
  valid_bin "$bin" || { log "$BIN_DIR/$bin is not a working binary"; exit 1; }
done
log "control plane binaries ready in $BIN_DIR"
echo "$BIN_DIR"
