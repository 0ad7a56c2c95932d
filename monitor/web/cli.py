"""``voice-monitor serve``: the local web page on uvicorn (needs the web extra)."""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import socket
import sys
from collections.abc import Sequence

from monitor.config import load_config, override
from monitor.errors import ConfigError, MonitorError

MISSING_EXTRA = ("the web page needs the web extra: run `scripts/setup.sh` again, or "
                 "`.venv/bin/pip install -e '.[web]'`")


def build_parser(prog: str = "voice-monitor serve") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="A local web page: drop files to score them, record from the browser's microphone, "
        "watch the server's microphone (--mic). Binds 127.0.0.1 unless told otherwise; any other address "
        "needs a token (--token, or one is generated and printed).",
    )
    p.add_argument("--host", metavar="H", help="address to bind (default: [web] host, 127.0.0.1)")
    p.add_argument("--port", type=int, metavar="P", help="port (default: [web] port, 8765; 0 = any free port)")
    p.add_argument("--token", metavar="T", help="require this token (default: [web] token; generated off loopback)")
    p.add_argument("--mic", action="store_true", help="also run the server's own microphone, shown under Watch")
    p.add_argument("--device", metavar="NAME|INDEX", help="with --mic: the input device")
    p.add_argument("--csv", metavar="PATH", help="with --mic: append its timeline to this CSV file")
    p.add_argument("--csv-dir", metavar="DIR", help="with --mic: one CSV per day in DIR")
    p.add_argument("--config", metavar="PATH", help="config file (default: ./config.toml or the repository's)")
    p.add_argument("--profile", metavar="NAME", help="apply [profile.NAME] from the config")
    p.add_argument("--model", metavar="PATH", help="emotion model .tflite")
    p.add_argument("--transcriber", choices=["auto", "vosk", "pocketsphinx", "none"],
                   help="speech-to-text for uploads and recordings (default: [transcriber] engine)")
    p.add_argument("--vosk-model", metavar="DIR", help="Vosk model folder")
    return p


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, made here so a busy port is a one-line error and port 0 gets a real port."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot bind {host}: {exc.strerror}; give an address of this machine to --host") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def main_serve(argv: Sequence[str], prog: str = "voice-monitor serve") -> int:
    args = build_parser(prog).parse_args(list(argv))
    if (args.csv or args.csv_dir) and not args.mic:
        raise ConfigError("--csv and --csv-dir go with --mic (the server's microphone session)")
    try:
        import python_multipart  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise MonitorError(MISSING_EXTRA) from None
    from monitor.batch.cli import RunOptions, check_transcriber, resolve
    from monitor.batch.score import ScoreOptions
    from monitor.web.app import ServerState, create_app
    from monitor.web.scoring import UploadScoring

    cfg = load_config(args.config, args.profile)
    cfg = override(cfg, "web", host=args.host, port=args.port, token=args.token)
    cfg = override(cfg, "model", path=args.model)
    cfg = override(cfg, "transcriber", engine=args.transcriber, vosk_model_path=args.vosk_model)
    cfg = override(cfg, "audio", device=args.device)
    if args.csv or args.csv_dir:
        cfg = override(cfg, "output", csv=args.csv or "", csv_dir=args.csv_dir or "")
    w = cfg.web
    token = w.token
    if not token and not is_loopback(w.host):
        token = secrets.token_urlsafe(16)
    score, labels = resolve(RunOptions(paths=[], config=args.config, profile=args.profile, score=ScoreOptions(
        model_path=cfg.model.path or None, transcriber=cfg.transcriber.engine,
        vosk_model_path=cfg.transcriber.vosk_model_path or None)))
    check_transcriber(score)
    if args.mic:
        from monitor.audio.sources import resolve_device
        from monitor.web.live import make_csv

        resolve_device(cfg.audio.device or None)  # no microphone: say so now, not from inside the server
        sink = make_csv(labels, cfg.output.csv or None, cfg.output.csv_dir or None)  # unwritable: say so now
        if sink is not None:
            sink.close()
    state = ServerState(cfg, UploadScoring(score, labels, w.max_parallel), token=token, mic=args.mic,
                        model=(score.model_path or "models/emotion.tflite").rsplit("/", 1)[-1],
                        text=cfg.transcriber.engine)
    sock = bind(w.host, w.port)
    port = sock.getsockname()[1]
    shown = f"[{w.host}]" if ":" in w.host else w.host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    print(f"voice-monitor serve: open {url}", file=sys.stderr, flush=True)
    if token and not w.token:
        print(f"token (generated, needed off 127.0.0.1): {token}", file=sys.stderr, flush=True)
    config = uvicorn.Config(create_app(state), log_level="warning", ws_max_size=2**20, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
    return 0
