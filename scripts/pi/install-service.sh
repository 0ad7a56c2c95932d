#!/usr/bin/env bash
# Installs the headless logging service (scripts/pi/voice-monitor.service): a system user voice-monitor in
# the audio group, /etc/voice-monitor/config.toml (kept if it exists), the unit pointing at this checkout's
# venv, then enables and starts it. Run after scripts/pi/install.sh, as root.
#
# Usage: sudo scripts/pi/install-service.sh [--venv DIR] [--no-start] [--remove]
#   --venv DIR   the venv install.sh made (default: <checkout>/.venv)
#   --no-start   enable the service for the next boot but do not start it now
#   --remove     stop, disable and delete the unit (keeps the user, the config and the CSVs)
# Details: docs/pi.md.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV="$REPO/.venv"
START=1
REMOVE=0
NAME=voice-monitor
UNIT=/etc/systemd/system/$NAME.service
CONFIG_DIR=/etc/$NAME
STATE_DIR=/var/lib/$NAME
while [[ $# -gt 0 ]]; do
    case $1 in
        --venv) VENV=$2; shift 2 ;;
        --no-start) START=0; shift ;;
        --remove) REMOVE=1; shift ;;
        -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "install-service.sh: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "run as root (sudo)"
have_systemd=0
if [[ -d /run/systemd/system ]]; then
    have_systemd=1
fi

if [[ $REMOVE -eq 1 ]]; then
    if [[ $have_systemd -eq 1 ]]; then
        systemctl disable --now "$NAME.service" 2>/dev/null || true
    fi
    rm -f "$UNIT"
    if [[ $have_systemd -eq 1 ]]; then
        systemctl daemon-reload
    fi
    echo "removed $UNIT (kept: user $NAME, $CONFIG_DIR, $STATE_DIR)"
    exit 0
fi

VENV=$(cd "$VENV" 2>/dev/null && pwd) || die "no venv at $VENV: run scripts/pi/install.sh first"
[[ -x $VENV/bin/voice-monitor ]] || die "$VENV/bin/voice-monitor is missing: run scripts/pi/install.sh first"
for path in "$REPO" "$VENV"; do
    case $path in
        /home/*|/root|/root/*)
            die "$path is under /home or /root, which the service cannot see (ProtectHome=yes, and home folders are private): clone into /opt/voice-monitor and install there" ;;
    esac
done
[[ -f $REPO/models/emotion.tflite ]] || echo "warning: no model at $REPO/models/emotion.tflite: the service will fail and retry every 5 s until one is there" >&2

if ! id -u "$NAME" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin "$NAME"
    echo "created system user $NAME"
fi
usermod -a -G audio "$NAME"

if ! runuser -u "$NAME" -- test -x "$VENV/bin/python" -a -r "$REPO/monitor/__init__.py"; then
    die "user $NAME cannot run $VENV/bin/python (-> $(readlink -f "$VENV/bin/python")) or read $REPO: make them world-readable (chmod -R a+rX) and outside /home, /root"
fi

install -d -m 0755 "$CONFIG_DIR"
if [[ ! -f $CONFIG_DIR/config.toml ]]; then
    install -m 0644 "$REPO/config.toml" "$CONFIG_DIR/config.toml"
    echo "wrote $CONFIG_DIR/config.toml (edit [audio] device to pick the microphone; [profile.pi] applies)"
fi
install -d -m 0750 -o "$NAME" -g "$NAME" "$STATE_DIR"

sed -e "s#/opt/voice-monitor/.venv#$VENV#g" -e "s#file:/opt/voice-monitor/docs#file:$REPO/docs#" \
    "$REPO/scripts/pi/voice-monitor.service" > "$UNIT.tmp"
chmod 0644 "$UNIT.tmp"
mv "$UNIT.tmp" "$UNIT"
echo "installed $UNIT"

if [[ $have_systemd -eq 0 ]]; then
    echo "systemd is not running here: enable it later with: systemctl enable --now $NAME"
    exit 0
fi
systemctl daemon-reload
if [[ $START -eq 1 ]]; then
    systemctl enable --now "$NAME.service"
    sleep 3
    systemctl --no-pager --lines=5 status "$NAME.service" || true
else
    systemctl enable "$NAME.service"
fi
echo "logs: journalctl -u $NAME -f    CSVs: $STATE_DIR/emotions-YYYY-MM-DD.csv"
