"""config.toml -> typed, validated settings. A wrong key or value is a one-line ConfigError naming it.

Layout: one table per section ([audio], [vad], [windows], [model], [transcriber], [output], [pipeline],
[web], [speakers]).
``[profile.NAME]`` tables hold overrides with the same sections (``[profile.pi.model]`` ...), applied by
``--profile NAME``. Command-line flags override both.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from monitor.dsp.segmenter import SHORT_SPEECH_S, SegmenterOptions
from monitor.dsp.vad import STEADY_DB, VadOptions
from monitor.errors import ConfigError
from monitor.paths import FILE, FOLDER, access_problem, path_kind
from monitor.setting_ranges import check_ranges
from monitor.speakers.cluster import SpeakerOptions

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "config.toml"


@dataclass(frozen=True)
class AudioConfig:
    device: str = ""  # part of a device name, or its index; "" = the default input device
    block_ms: int = 20
    ring_seconds: float = 20.0
    stdin_rate: int = 16000
    stdin_channels: int = 1


@dataclass(frozen=True)
class VadConfig:
    aggressiveness: int = 2
    margin_db: float = 9.0
    floor_window_s: float = 5.0
    min_level_dbfs: float = -100.0
    quiet_after_loud_db: float = 20.0
    steady_db: float = STEADY_DB
    pre_pad_ms: int = 240
    post_pad_ms: int = 240
    hangover_ms: int = 450


@dataclass(frozen=True)
class WindowsConfig:
    hop_s: float = 3.0
    min_speech_s: float = 0.6
    short_speech_s: float = SHORT_SPEECH_S
    max_utterance_s: float = 30.0


@dataclass(frozen=True)
class ModelConfig:
    path: str = ""  # "" = the shipped models/emotion.tflite
    threads: int = 1
    normalise: bool = True  # per-session/per-speaker normalisation (monitor.inference.normalise)
    baseline: str = "run"  # score: run (take out the lean all of a run's files share) | off
    prosody: bool = True  # fuse the model's prosody head (models/emotion.prosody.json) with the CNN


@dataclass(frozen=True)
class TranscriberConfig:
    engine: str = "auto"  # auto | vosk | pocketsphinx | none
    vosk_model_path: str = ""
    sphinx_warp_search: bool = True  # pocketsphinx: decode low voices at two warps (fewer errors, more CPU)
    max_backlog_s: float = 15.0
    text_wait_s: float = 8.0  # how long an emotion row may wait for its words before it is written without


@dataclass(frozen=True)
class OutputConfig:
    csv: str = ""
    csv_dir: str = ""  # a folder: one CSV per day, emotions-YYYY-MM-DD.csv
    dashboard: bool = True
    refresh_hz: float = 4.0
    history: int = 40  # windows shown in the dashboard timeline


@dataclass(frozen=True)
class PipelineConfig:
    queue_windows: int = 8


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"  # another address needs a token (given, or generated and printed at start)
    port: int = 8765
    token: str = ""  # "" = none on 127.0.0.1, a generated one on any other address
    max_upload_mb: float = 200.0  # a larger upload is refused (413) while it streams in
    max_parallel: int = 2  # files scored at once; other uploads wait their turn
    max_recordings: int = 2  # browser recordings running at once; another is refused until one stops


@dataclass(frozen=True)
class SpeakersConfig:
    enabled: bool = True  # speaker turns (S1, S2, ...) in the timeline; false = no speaker column, no cost
    threshold: float = 0.70
    merge_threshold: float = 0.60
    max_speakers: int = 8
    min_embed_s: float = 0.8
    spread: float = 0.0
    lda: bool = True
    min_windows: int = 2
    settle_windows: int = 8
    recluster_threshold: float = 0.95
    recluster_min_windows: int = 3
    recluster_max_windows: int = 18
    recluster_refine_iterations: int = 10
    live_recluster_threshold: float = 1.0
    live_warm_windows: int = 6
    live_min_windows: int = 3
    live_settle_windows: int = 4
    run_voices: bool = True


@dataclass(frozen=True)
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    windows: WindowsConfig = field(default_factory=WindowsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    transcriber: TranscriberConfig = field(default_factory=TranscriberConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    web: WebConfig = field(default_factory=WebConfig)
    speakers: SpeakersConfig = field(default_factory=SpeakersConfig)

    def speaker_options(self) -> SpeakerOptions:
        s = self.speakers
        return SpeakerOptions(**{f.name: getattr(s, f.name) for f in fields(s)})

    def segmenter_options(self, window_s: float = 3.0) -> SegmenterOptions:
        v = self.vad
        return SegmenterOptions(
            vad=VadOptions(
                aggressiveness=v.aggressiveness,
                margin_db=v.margin_db,
                floor_window_s=v.floor_window_s,
                min_level_dbfs=v.min_level_dbfs,
                quiet_after_loud_db=v.quiet_after_loud_db,
                steady_db=v.steady_db,
            ),
            window_s=window_s,
            hop_s=self.windows.hop_s,
            min_speech_s=self.windows.min_speech_s,
            short_speech_s=min(self.windows.short_speech_s, self.windows.min_speech_s),
            pre_pad_ms=v.pre_pad_ms,
            post_pad_ms=v.post_pad_ms,
            hangover_ms=v.hangover_ms,
            max_utterance_s=max(self.windows.max_utterance_s, window_s),
        )

    def validate(self) -> Config:
        check_ranges(self)
        v = self.vad
        if 0 < v.steady_db >= v.margin_db:  # VadOptions refuses it too; here the message says what to set
            default = " (the default)" if v.steady_db == STEADY_DB else ""
            raise ConfigError(f"config: [vad] steady_db {v.steady_db:g}{default} must be below margin_db "
                              f"{v.margin_db:g}: set [vad] steady_db below {v.margin_db:g}, or 0 (off)")
        try:
            self.segmenter_options().validate()
            self.speaker_options().validate()
        except ValueError as exc:
            raise ConfigError(f"config: {exc}") from None
        checks = [
            (
                self.transcriber.engine in ("auto", "vosk", "pocketsphinx", "none"),
                f"[transcriber] engine must be auto, vosk, pocketsphinx or none (got {self.transcriber.engine!r})",
            ),
            (
                self.model.baseline in ("run", "off"),
                f"[model] baseline must be run or off (got {self.model.baseline!r})",
            ),
            (not (self.output.csv and self.output.csv_dir), "[output] set csv or csv_dir, not both"),
            (self.pipeline.queue_windows >= 1, "[pipeline] queue_windows must be >= 1"),
            (bool(self.web.host.strip()), "[web] host must not be empty"),
            (0 <= self.web.port <= 65535, "[web] port must be 0..65535"),
            (self.web.max_upload_mb > 0, "[web] max_upload_mb must be > 0"),
            (self.web.max_parallel >= 1, "[web] max_parallel must be >= 1"),
            (self.web.max_recordings >= 1, "[web] max_recordings must be >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"config: {message}")
        return self


_SECTION_TYPES = {
    "audio": AudioConfig,
    "vad": VadConfig,
    "windows": WindowsConfig,
    "model": ModelConfig,
    "transcriber": TranscriberConfig,
    "output": OutputConfig,
    "pipeline": PipelineConfig,
    "web": WebConfig,
    "speakers": SpeakersConfig,
}


def _coerce(where: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false (got {value!r})")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be an integer (got {value!r})")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where} must be a number (got {value!r})")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # e.g. device = 3
        raise ConfigError(f"{where} must be a string (got {value!r})")
    raise ConfigError(f"{where}: unsupported setting")


def _apply(cfg: Config, data: dict[str, Any], origin: str) -> Config:
    for section, values in data.items():
        if section == "profile":
            continue
        if section not in _SECTION_TYPES:
            raise ConfigError(f"{origin}: unknown section [{section}]; known: {', '.join(_SECTION_TYPES)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: [{section}] must be a table")
        current = getattr(cfg, section)
        known = {f.name for f in fields(current)}
        updates = {}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{origin}: unknown key {key!r} in [{section}]; known: {', '.join(sorted(known))}")
            updates[key] = _coerce(f"{origin}: [{section}] {key}", value, getattr(current, key))
        cfg = replace(cfg, **{section: replace(current, **updates)})
    return cfg


def load_config(path: str | Path | None = None, profile: str | None = None) -> Config:
    """Read ``path`` (default: ./config.toml if present, else the repository's config.toml, else defaults)."""
    def kind(p: Path) -> str:
        try:
            return path_kind(p)
        except OSError as exc:
            raise ConfigError(f"config file {p}: cannot access it: {access_problem(exc)}") from None

    if path is None:
        candidates = [Path("config.toml"), DEFAULT_CONFIG]
        path = next((p for p in candidates if kind(p) == FILE), None)
    cfg = Config()
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        found = kind(p)
        if found == FOLDER:
            raise ConfigError(f"config file {p} is a folder; pass a TOML file (such as {p / 'config.toml'})")
        if found != FILE:
            raise ConfigError(f"config file {p} not found; pass an existing file to --config")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML ({exc})") from None
        except OSError as exc:
            raise ConfigError(f"config file {p}: cannot read it: {access_problem(exc)}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{p}: cannot read ({exc})") from None
        cfg = _apply(cfg, data, str(p))
    if profile:
        profiles = data.get("profile", {})
        if profile not in profiles:
            known = ", ".join(profiles) or "none"
            raise ConfigError(f"profile {profile!r} is not defined in the config (defined: {known})")
        cfg = _apply(cfg, profiles[profile], f"[profile.{profile}]")
    return cfg.validate()


def override(cfg: Config, section: str, **values: Any) -> Config:
    """Apply command-line overrides (None values are ignored)."""
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        return cfg
    return replace(cfg, **{section: replace(getattr(cfg, section), **values)}).validate()
