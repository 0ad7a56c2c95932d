#!/usr/bin/env bash
# Verifies the Raspberry Pi runtime stack without a Pi: an arm64 Debian Bookworm root (what 64-bit Raspberry
# Pi OS is built on, Python 3.11) runs under qemu-user with the aarch64 wheels of requirements-pi.txt, classifies
# real clips (read_audio -> segment_audio -> EmotionClassifier) and must agree with the same run on this host.
#
# Usage: scripts/pi/emulate_check.sh [--model PATH] [--cache DIR] [--rebuild] [CLIP...]
#   --model PATH  the .tflite to check (default: models/emotion.tflite; its .json must sit beside it)
#   --cache DIR   where the arm64 root and the wheels live (default: $VOICE_MONITOR_AARCH64_CACHE, else
#                 /var/cache/voice-monitor-aarch64 as root, else ${XDG_CACHE_HOME:-~/.cache}/voice-monitor-aarch64)
#   --rebuild     throw the cached root and wheels away first
#   CLIP...       audio files (default: tests/data/*.flac)
# Environment: HOST_PYTHON (default .venv/bin/python), TOLERANCE (a fixed bound per probability instead of
# the default "raw int8 outputs within one step", see
# scripts/pi/check_aarch64.py), QEMU_CPUS (default "cortex-a72 cortex-a76": the Pi 4 and Pi 5 cores),
# PI_REQUIREMENTS (default requirements-pi.txt: another pin set to try).
# The first run needs root (apt-get, debootstrap) and the Debian and PyPI registries; later runs reuse the
# cache. Prints PASS or FAIL; exits non-zero on failure.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHECKER="$REPO/scripts/pi/check_aarch64.py"
REQUIREMENTS=${PI_REQUIREMENTS:-$REPO/requirements-pi.txt}
HOST_PYTHON=${HOST_PYTHON:-$REPO/.venv/bin/python}
MODEL="$REPO/models/emotion.tflite"
SUITE=bookworm
REBUILD=0
QEMU_CPUS=${QEMU_CPUS:-cortex-a72 cortex-a76}
if [[ -n "${VOICE_MONITOR_AARCH64_CACHE:-}" ]]; then
    CACHE=$VOICE_MONITOR_AARCH64_CACHE
elif [[ $(id -u) -eq 0 ]]; then
    CACHE=/var/cache/voice-monitor-aarch64
else
    CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/voice-monitor-aarch64
fi
CLIPS=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --model) MODEL=$2; shift 2 ;;
        --cache) CACHE=$2; shift 2 ;;
        --rebuild) REBUILD=1; shift ;;
        -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        *) CLIPS+=("$1"); shift ;;
    esac
done
if [[ ${#CLIPS[@]} -eq 0 ]]; then
    CLIPS=("$REPO"/tests/data/*.flac)
fi

die() { echo "FAIL: $*" >&2; exit 1; }
step() { printf '[%5ss] %s\n' "$SECONDS" "$*"; }

case $CACHE in
    "$REPO"|"$REPO"/*|/work/shared|/work/shared/*) die "the cache $CACHE must lie outside the repository and /work/shared" ;;
esac
[[ -f $MODEL ]] || die "no model at $MODEL (the shipped model lands in models/; pass --model PATH to check another)"
[[ -f ${MODEL%.tflite}.json ]] || die "no metadata ${MODEL%.tflite}.json beside the model"
[[ -x $HOST_PYTHON ]] || die "no host python at $HOST_PYTHON (set HOST_PYTHON)"

# 1. Tools: qemu-user-static and debootstrap.
if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "qemu-user-static and debootstrap are missing: run once as root (apt-get)"
    step "installing qemu-user-static and debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends qemu-user-static debootstrap >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends qemu-user-static debootstrap >/dev/null; }
fi

ROOT="$CACHE/$SUITE-arm64"
REQ_KEY=$(sha256sum "$REQUIREMENTS" | cut -c1-12)
SITE="$CACHE/site-$REQ_KEY"
if [[ $REBUILD -eq 1 ]]; then
    step "removing $ROOT and $CACHE/site-*"
    rm -rf "$ROOT" "$CACHE"/site-* "$CACHE/pycache"
fi
mkdir -p "$CACHE"

# 2. The arm64 root. No binfmt_misc is needed: debootstrap's first stage fetches the packages, dpkg-deb unpacks
# them (no maintainer scripts run), and qemu-aarch64-static -L ROOT runs the root's own python3.11.
if [[ ! -e $ROOT/.voice-monitor-ready ]]; then
    [[ $(id -u) -eq 0 ]] || die "building the arm64 root needs root (debootstrap)"
    step "debootstrap $SUITE arm64 into $ROOT (first run only)"
    rm -rf "$ROOT.partial"
    debootstrap --arch=arm64 --foreign --variant=minbase \
        --include=python3,python3-venv,libsndfile1,libportaudio2,libatomic1 \
        "$SUITE" "$ROOT.partial" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    step "unpacking $(find "$ROOT.partial/var/cache/apt/archives" -name '*.deb' | wc -l) packages"
    find "$ROOT.partial/var/cache/apt/archives" -name '*.deb' -print0 | xargs -0 -n1 -I{} dpkg-deb -x {} "$ROOT.partial"
    rm -f "$ROOT.partial"/var/cache/apt/archives/*.deb
    touch "$ROOT.partial/.voice-monitor-ready"
    rm -rf "$ROOT"
    mv "$ROOT.partial" "$ROOT"
fi
PY_ARM="$ROOT/usr/bin/python3.11"
[[ -x $PY_ARM ]] || die "$PY_ARM is missing: rerun with --rebuild"

run_arm() {
    env -i PATH=/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 PYTHONNOUSERSITE=1 QEMU_CPU="${QEMU_CPU:-cortex-a72}" \
        PYTHONPATH="$REPO:$SITE" PYTHONPYCACHEPREFIX="$CACHE/pycache" \
        QEMU_LD_PREFIX="$ROOT" qemu-aarch64-static -L "$ROOT" "$PY_ARM" "$@"
}

# 3. The aarch64 wheels, exactly as pinned in requirements-pi.txt, installed with --target (keyed by its hash).
PLATFORMS=(--platform manylinux_2_34_aarch64 --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64
           --platform manylinux_2_26_aarch64 --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64)
if [[ ! -e $SITE/.voice-monitor-ready ]]; then
    step "pip install --target $SITE (aarch64 wheels of requirements-pi.txt)"
    rm -rf "$SITE.partial" "$CACHE/purewheels"
    # Pure-Python packages published only as sdists (srt) become py3-none-any wheels, built on this host.
    mapfile -t PURE < <(grep -E '^srt==' "$REQUIREMENTS" || true)
    if [[ ${#PURE[@]} -gt 0 ]]; then
        "$HOST_PYTHON" -m pip wheel -q --no-deps -w "$CACHE/purewheels" "${PURE[@]}" 2>"$CACHE/pip.log" \
            || { cat "$CACHE/pip.log" >&2; die "pip wheel failed"; }
    fi
    "$HOST_PYTHON" -m pip install -q --target "$SITE.partial" --no-deps --only-binary=:all: \
        --find-links "$CACHE/purewheels" --python-version 3.11 --implementation cp --abi cp311 \
        "${PLATFORMS[@]}" -r "$REQUIREMENTS" 2>"$CACHE/pip.log" \
        || { cat "$CACHE/pip.log" >&2; die "pip install --target failed"; }
    touch "$SITE.partial/.voice-monitor-ready"
    mv "$SITE.partial" "$SITE"
fi

# 4. The host run, then one aarch64 run per emulated CPU, each compared with the host run. The CPU matters:
# under qemu's default "max" CPU (instructions no Pi has) LiteRT's default (XNNPACK) int8 results differed from
# x86 by many steps; cortex-a72 is the Pi 4's core, cortex-a76 the Pi 5's, and there they were identical.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
step "host run ($HOST_PYTHON)"
"$HOST_PYTHON" "$CHECKER" run --model "$MODEL" --out "$WORK/host" "${CLIPS[@]}" 2> "$WORK/host.err" \
    || { cat "$WORK/host.err" >&2; die "the host run failed"; }
TOL_ARGS=()
if [[ -n ${TOLERANCE:-} ]]; then
    TOL_ARGS=(--tolerance "$TOLERANCE")
fi
status=0
results=()
for cpu in $QEMU_CPUS; do
    export QEMU_CPU=$cpu
    step "aarch64 run, CPU $cpu (qemu-aarch64-static, $(run_arm --version))"
    if ! run_arm "$CHECKER" run --expect-machine aarch64 --model "$MODEL" --out "$WORK/$cpu" "${CLIPS[@]}" \
            2> "$WORK/$cpu.err"; then
        tail -20 "$WORK/$cpu.err" >&2
        echo "FAIL: the aarch64 run on $cpu failed"
        status=1
        results+=("$cpu: FAIL (run failed)")
        continue
    fi
    step "comparing host and $cpu"
    if "$HOST_PYTHON" "$CHECKER" compare "${TOL_ARGS[@]}" "$WORK/host" "$WORK/$cpu"; then
        results+=("$cpu: PASS")
    else
        status=1
        results+=("$cpu: FAIL")
    fi
done
unset QEMU_CPU
step "done (cache: $CACHE)"
if [[ $status -eq 0 ]]; then
    echo "PASS: aarch64 emulation agrees with the host (${results[*]})"
else
    echo "FAIL: ${results[*]}"
fi
exit "$status"
