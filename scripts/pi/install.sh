#!/usr/bin/env bash
# Runtime-only install of the voice monitor on a Raspberry Pi 4/5 with 64-bit Raspberry Pi OS Bookworm
# (Python 3.11): system libraries, a venv, the pinned wheels of requirements-pi.txt and the monitor itself
# (editable, --no-deps). No TensorFlow, no librosa. Then a smoke test on the clips in tests/data.
#
# Usage: scripts/pi/install.sh [--venv DIR] [--no-apt] [--service] [--allow-any-arch]   (env PYTHON: interpreter)
#   --venv DIR         where the venv goes (default: <checkout>/.venv)
#   --no-apt           skip the apt-get step (the system libraries are already there)
#   --service          also install and enable the systemd service (scripts/pi/install-service.sh; needs root)
#   --allow-any-arch   do not insist on aarch64 (for testing the script on a desktop with Debian Bookworm)
# Details: docs/pi.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV="$REPO/.venv"
APT=1
SERVICE=0
ANY_ARCH=0
while [[ $# -gt 0 ]]; do
    case $1 in
        --venv) VENV=$2; shift 2 ;;
        --no-apt) APT=0; shift ;;
        --service) SERVICE=1; shift ;;
        --allow-any-arch) ANY_ARCH=1; shift ;;
        -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "==> $*"; }

arch=$(uname -m)
if [[ $arch != aarch64 && $ANY_ARCH -eq 0 ]]; then
    if [[ $arch == armv7l || $arch == armv6l ]]; then
        die "this is a 32-bit OS ($arch): no TFLite runtime ships wheels for it; install 64-bit Raspberry Pi OS"
    fi
    die "expected a 64-bit Raspberry Pi (aarch64), found $arch (pass --allow-any-arch to go on anyway)"
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo)
fi

if [[ $APT -eq 1 ]]; then
    say "system packages (apt-get)"
    "${SUDO[@]}" apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        python3 python3-venv python3-pip libportaudio2 libsndfile1 libatomic1
fi

# The system Python (Bookworm: 3.11), not one under a home folder that the service user could not run.
PY=${PYTHON:-/usr/bin/python3}
[[ -x $PY ]] || die "$PY is missing (apt-get install python3)"
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "$PY is Python $("$PY" -c 'import platform; print(platform.python_version())'); the pins in requirements-pi.txt are for 3.11 (Bookworm)"

if [[ ! -x $VENV/bin/python ]]; then
    say "venv at $VENV"
    "$PY" -m venv "$VENV"
fi
say "runtime wheels (requirements-pi.txt)"
"$VENV/bin/python" -m pip install -q --prefer-binary -r "$REPO/requirements-pi.txt"
say "the monitor itself (editable, --no-deps)"
"$VENV/bin/python" -m pip install -q --no-deps -e "$REPO"

say "smoke test"
"$VENV/bin/python" - <<'EOF'
import sys
import monitor, sounddevice, soundfile, soxr, webrtcvad  # noqa: F401  (sounddevice needs libportaudio2)
from monitor.inference.runtime import interpreter_class
name = interpreter_class()[1]
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"tensorflow", "keras", "librosa", "numba"})
print(f"imports ok; TFLite runtime: {name}; heavy modules loaded: {heavy or 'none'}")
sys.exit(1 if heavy or name == "tensorflow" else 0)
EOF
if [[ -f $REPO/models/emotion.tflite ]]; then
    out=$(mktemp -d)
    "$VENV/bin/python" "$REPO/scripts/pi/check_aarch64.py" run --out "$out" "$REPO"/tests/data/*.flac 2>/dev/null
    rm -rf "$out"
else
    echo "no model at $REPO/models/emotion.tflite yet: skipped classifying the test clips"
fi
echo "installed: $VENV/bin/voice-monitor (try: $VENV/bin/voice-monitor devices)"

if [[ $SERVICE -eq 1 ]]; then
    "${SUDO[@]}" "$REPO/scripts/pi/install-service.sh" --venv "$VENV"
fi
