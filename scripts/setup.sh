#!/usr/bin/env bash
# Set up voice-monitor in ./.venv on Debian/Ubuntu (Python 3.11+).
#   scripts/setup.sh          runtime: the monitor and its web page (no TensorFlow, no librosa)
#   scripts/setup.sh --dev    + training (TensorFlow, librosa), test tools (pytest, ruff, a virtual microphone,
#                             headless Chromium for the web page's tests) and the cluster extra (Dask
#                             distributed, pyarrow: score --cluster, --format parquet)
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[ "${1:-}" = "--dev" ] && dev=1

apt_pkgs="python3-venv libportaudio2 libsndfile1"
if [ "$dev" = 1 ]; then
  apt_pkgs="$apt_pkgs pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox tmux chromium chromium-driver"
fi
if command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
  missing=""
  for p in $apt_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" != 0 ] && sudo="sudo"
    echo "setup: installing system packages:$missing" >&2
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
  fi
fi

py="${PYTHON:-}"
if [ -z "$py" ]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1; then py="$cand"; break; fi
  done
fi
"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "setup: Python 3.11 or newer is needed ($py is $("$py" --version 2>&1))" >&2; exit 1; }

[ -x .venv/bin/python ] || "$py" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${pip[@]}" --upgrade pip
if [ "$dev" = 1 ]; then
  "${pip[@]}" -e ".[web,formats,train,test,cluster]"
else
  "${pip[@]}" -e ".[web,formats]"
fi
.venv/bin/python -c "import monitor.cli" || { echo "setup: the install failed" >&2; exit 1; }
echo "setup: done. Next: .venv/bin/voice-monitor --help (the commands), .venv/bin/voice-monitor demo (no microphone" \
  "needed), or source .venv/bin/activate to type voice-monitor alone" >&2
