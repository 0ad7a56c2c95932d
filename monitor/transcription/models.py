"""Vosk model management: find a model, check its layout, fetch the small English one.

Lookup order (``find_vosk_model``): an explicit path (``[transcriber] vosk_model_path`` or a flag) >
the environment variable ``VOSK_MODEL_PATH`` > Vosk's cache ``~/.cache/vosk`` (then ``/usr/share/vosk``).
``VOSK_MODEL_PATH`` may name a model folder or, as in Vosk's own convention, a folder that holds models.

``fetch_vosk_model`` downloads ``vosk-model-small-en-us-0.15.zip`` with urllib, checks its SHA-256 and the
archive (``zipfile.testzip``, member paths, model layout) and unpacks it atomically (temp folder + rename).
alphacephei.com publishes no digest; the constant below is the value that several independent packagers pin for
this exact archive (e.g. an Arch Linux AUR PKGBUILD for vosk-api, along with its size of 41,205,931 bytes). It
could not be checked against a download here (no network), so the archive and layout checks run as well.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import CommandParser, TranscriberError, error_line
from monitor.invocation import command_hint
from monitor.paths import FILE, FOLDER, MISSING, access_problem, path_kind

DEFAULT_MODEL = "vosk-model-small-en-us-0.15"
MODEL_URL = "https://alphacephei.com/vosk/models/{name}.zip"
# SHA-256 of vosk-model-small-en-us-0.15.zip (41,205,931 bytes), see the module docstring.
KNOWN_SHA256 = {
    "vosk-model-small-en-us-0.15": "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498",
}
ENV_VAR = "VOSK_MODEL_PATH"
_ENGLISH = re.compile(r"^vosk-model-(?:small-)?en(?:[-_].*)?$")


def cache_dir() -> Path:
    """Vosk's own model cache (where ``vosk.Model(lang=...)`` downloads to)."""
    return Path.home() / ".cache" / "vosk"


def search_dirs() -> list[Path]:
    return [cache_dir(), Path("/usr/share/vosk")]


def how_to_get_model(dest: Path | None = None) -> str:
    dest = dest or cache_dir()
    return (
        f"run {command_hint('models fetch')}, or download {MODEL_URL.format(name=DEFAULT_MODEL)} by hand and unzip it "
        f"into {dest}/ (giving {dest / DEFAULT_MODEL}/), or set {ENV_VAR} / [transcriber] vosk_model_path"
    )


# --- layout ------------------------------------------------------------------------------------------------
_LAYOUT_FILES = ("am/final.mdl", "final.mdl", "conf/mfcc.conf", "mfcc.conf", "graph/HCLG.fst", "HCLG.fst",
                 "graph/HCLr.fst", "HCLr.fst", "graph/Gr.fst", "Gr.fst")


def _is_file_inside(folder: Path, name: str) -> bool:
    try:
        return path_kind(folder / name) == FILE
    except NotADirectoryError:  # e.g. a file named "am": not the model's layout, not an access problem
        return False


def vosk_layout_problem(path: Path) -> str | None:
    """None if ``path`` looks like a Vosk model folder, else what is missing.

    A model has an acoustic model (``am/final.mdl``), its feature config (``conf/mfcc.conf``) and a decoding
    graph (``graph/HCLG.fst``, or ``graph/HCLr.fst`` + ``graph/Gr.fst`` for lookahead models). Old models keep
    the same files at the top level.
    """
    try:
        kind = path_kind(path)
        if kind == MISSING:
            return "does not exist"
        if kind != FOLDER:
            return "is not a folder"
        files = {n for n in _LAYOUT_FILES if _is_file_inside(path, n)}
    except OSError as exc:
        return f"cannot be read: {access_problem(exc)}"

    def has(*names: str) -> bool:
        return any(n in files for n in names)

    missing = []
    if not has("am/final.mdl", "final.mdl"):
        missing.append("am/final.mdl")
    if not has("conf/mfcc.conf", "mfcc.conf"):
        missing.append("conf/mfcc.conf")
    if not (has("graph/HCLG.fst", "HCLG.fst") or (has("graph/HCLr.fst", "HCLr.fst") and has("graph/Gr.fst", "Gr.fst"))):
        missing.append("graph/HCLG.fst or graph/HCLr.fst+Gr.fst")
    return f"is not a Vosk model (no {', '.join(missing)})" if missing else None


def is_vosk_model(path: Path) -> bool:
    return vosk_layout_problem(path) is None


def _english_models_in(folder: Path) -> list[Path]:
    """English Vosk models directly inside ``folder``, the small en-us 0.15 first, then by name."""
    try:
        if path_kind(folder) != FOLDER:
            return []
        found = [p for p in folder.iterdir() if _ENGLISH.match(p.name) and is_vosk_model(p)]
    except OSError:
        return []
    return sorted(found, key=lambda p: (p.name != DEFAULT_MODEL, "en-us" not in p.name, p.name))


# --- lookup -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelLocation:
    path: Path
    source: str  # "explicit" | "env" | "cache"


def locate_vosk_model(explicit: str | os.PathLike[str] | None = None) -> ModelLocation | None:
    """Where the Vosk model is and who said so; None if no model is configured nor cached.

    A path given explicitly or through ``VOSK_MODEL_PATH`` must be valid: a bad one raises TranscriberError
    (the user asked for it) instead of silently falling back.
    """
    if explicit is not None and str(explicit).strip():
        p = Path(explicit).expanduser()
        problem = vosk_layout_problem(p)
        if problem:
            raise TranscriberError(
                f"Vosk model path {p} {problem}: fix [transcriber] vosk_model_path (or the flag) to name an unzipped "
                f"Vosk model folder, or {how_to_get_model()}"
            )
        return ModelLocation(p.resolve(), "explicit")
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        p = Path(env).expanduser()
        if is_vosk_model(p):
            return ModelLocation(p.resolve(), "env")
        inside = _english_models_in(p)
        if inside:
            return ModelLocation(inside[0].resolve(), "env")
        problem = vosk_layout_problem(p)
        if problem is None or problem.startswith("is not a Vosk model"):
            problem = "is neither a Vosk model nor a folder holding one"
        raise TranscriberError(f"{ENV_VAR}={p} {problem}: point it at an unzipped Vosk model, or unset it and "
                               f"{how_to_get_model()}")
    for folder in search_dirs():
        inside = _english_models_in(folder)
        if inside:
            return ModelLocation(inside[0].resolve(), "cache")
    return None


def find_vosk_model(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The Vosk model folder to use (explicit > VOSK_MODEL_PATH > ~/.cache/vosk), or None if there is none."""
    loc = locate_vosk_model(explicit)
    return loc.path if loc else None


# --- fetch --------------------------------------------------------------------------------------------------
def _safe_members(zf: zipfile.ZipFile, top: str) -> None:
    for name in zf.namelist():
        parts = Path(name).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and parts[0] != top):
            raise TranscriberError(f"the downloaded archive holds an unexpected path {name!r} (expected only {top}/...)"
                                   f": delete it and download the model by hand")


def _download(url: str, target: Path, timeout_s: float, progress: bool) -> str:
    """Stream ``url`` into ``target``; return the SHA-256 hex digest of what was written."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    sha = hashlib.sha256()
    req = urllib.request.Request(url, headers={"User-Agent": "voice-monitor"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp, open(target, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0) or None
        columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, disable=not progress, transient=False) as bar:
            task = bar.add_task(Path(url).name, total=total)
            while True:
                block = resp.read(1 << 16)
                if not block:
                    break
                out.write(block)
                sha.update(block)
                bar.update(task, advance=len(block))
    return sha.hexdigest()


def fetch_vosk_model(
    dest_dir: str | os.PathLike[str] | None = None,
    name: str = DEFAULT_MODEL,
    *,
    url: str | None = None,
    sha256: str | None = None,
    timeout_s: float = 30.0,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Download and unpack a Vosk model into ``dest_dir`` (default ``~/.cache/vosk``); return its folder.

    ``url``/``sha256`` default to the alphacephei archive of ``name`` and the known digest (if any). An existing
    valid model folder is returned as is unless ``force``. Failures raise TranscriberError with one line that
    says how to get the model by hand; nothing half-unpacked is left behind.
    """
    dest = Path(dest_dir).expanduser() if dest_dir else cache_dir()
    final = dest / name
    if is_vosk_model(final) and not force:
        return final
    url = url or MODEL_URL.format(name=name)
    expected = (sha256 or KNOWN_SHA256.get(name, "")).lower()
    by_hand = (f"get it by hand: download {url} on a machine with internet access and unzip it into {dest}/ "
               f"(giving {final}/), or set {ENV_VAR} to where you unzipped it")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TranscriberError(f"cannot create {dest} ({e.strerror or e}): choose another --dest") from e
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=dest))  # same filesystem: the rename is atomic
    try:
        archive = work / f"{name}.zip"
        try:
            digest = _download(url, archive, timeout_s, progress)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reason = getattr(e, "reason", None) or e
            raise TranscriberError(f"cannot download {name} ({reason}); {by_hand}") from e
        if expected and digest != expected:
            raise TranscriberError(f"{url} downloaded with SHA-256 {digest[:16]}..., expected {expected[:16]}... "
                                   f"(corrupt or changed download): try again, or {by_hand}")
        try:
            with zipfile.ZipFile(archive) as zf:
                bad = zf.testzip()
                if bad is not None:
                    raise TranscriberError(f"the downloaded archive is corrupt ({bad} fails its CRC): try again, or "
                                           f"{by_hand}")
                _safe_members(zf, name)
                unpack = work / "unpacked"
                zf.extractall(unpack)
        except zipfile.BadZipFile as e:
            raise TranscriberError(f"the download from {url} is not a zip archive ({e}): {by_hand}") from e
        problem = vosk_layout_problem(unpack / name)
        if problem:
            raise TranscriberError(f"the downloaded {name} {problem}: {by_hand}")
        if os.path.lexists(final):
            shutil.rmtree(final) if path_kind(final) == FOLDER else final.unlink()
        os.replace(unpack / name, final)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- CLI: voice-monitor models ------------------------------------------------------------------------------
def _engines_report() -> list[str]:
    lines: list[str] = []
    vosk_ok = importlib.util.find_spec("vosk") is not None
    lines.append(f"vosk          : {'installed' if vosk_ok else 'NOT installed (pip install vosk)'}")
    try:
        loc = locate_vosk_model(None)
    except TranscriberError as e:
        loc = None
        lines.append(f"  {ENV_VAR}: {e}")
    else:
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            lines.append(f"  {ENV_VAR} = {env}")
    for folder in search_dirs():
        try:
            entries = sorted(folder.iterdir()) if path_kind(folder) == FOLDER else []
        except OSError as exc:
            lines.append(f"  {folder}: cannot be read: {access_problem(exc)}")
            continue
        for p in entries:
            if p.name.startswith("vosk-model") and os.path.isdir(p):
                problem = vosk_layout_problem(p)
                english = "English" if _ENGLISH.match(p.name) else "not English"
                state = f"broken: {problem}" if problem else english
                lines.append(f"  model {p}  ({state})")
    if loc:
        lines.append(f"  in use by 'auto': {loc.path} ({loc.source})")
    else:
        lines.append(f"  no English model: {how_to_get_model()}")
    spec = importlib.util.find_spec("pocketsphinx")
    if spec is None or not spec.submodule_search_locations:
        lines.append("pocketsphinx  : NOT installed (pip install pocketsphinx)")
    else:
        model = Path(list(spec.submodule_search_locations)[0]) / "model" / "en-us"
        lines.append(f"pocketsphinx  : installed, English model {'at ' + str(model) if model.is_dir() else 'MISSING'}")
    auto = "vosk" if (vosk_ok and loc) else "pocketsphinx"
    lines.append(f"engine 'auto' would use: {auto}")
    return lines


def main_models(argv: list[str]) -> int:
    """``voice-monitor models fetch [--dest DIR]`` and ``voice-monitor models list``."""
    parser = CommandParser(prog="voice-monitor models", description="Manage speech-recognition models.")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help=f"download the small English Vosk model ({DEFAULT_MODEL}, about 40 MB)")
    fetch.add_argument("--dest", default=None, help=f"folder to unpack into (default {cache_dir()})")
    fetch.add_argument("--force", action="store_true", help="download again even if the model is there")
    sub.add_parser("list", help="show which engines and models are available")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            path = fetch_vosk_model(args.dest, force=args.force)
            print(f"Vosk model ready: {path}")
            if args.dest and Path(args.dest).expanduser().resolve() != cache_dir().resolve():
                print(f"Not in Vosk's cache: set {ENV_VAR}={path} or [transcriber] vosk_model_path = \"{path}\"")
            return 0
        for line in _engines_report():
            print(line)
        return 0
    except TranscriberError as e:
        print(error_line(str(e)), file=sys.stderr)
        return 1
