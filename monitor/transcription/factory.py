"""Choose and build the transcription engine from the configuration."""

from __future__ import annotations

import importlib.util
import os

from monitor.errors import TranscriberError
from monitor.invocation import command_hint
from monitor.transcription.base import Transcriber
from monitor.transcription.models import how_to_get_model, locate_vosk_model

ENGINES = ("auto", "vosk", "pocketsphinx", "none")


def make_transcriber(
    engine: str = "auto", vosk_model_path: str | os.PathLike[str] | None = None, *, sphinx_mode: str = "batch",
    sphinx_warp_search: bool = True,
) -> tuple[Transcriber | None, str]:
    """Build the engine; return it (None for "none") and a one-line note for the dashboard.

    - "vosk": the Vosk model found by ``find_vosk_model`` (explicit path > VOSK_MODEL_PATH > ~/.cache/vosk);
      no model, a bad path or a corrupt model is a TranscriberError.
    - "pocketsphinx": the English model shipped in the pocketsphinx wheel, in ``sphinx_mode`` ("batch": final
      text only, the most accurate; "hybrid": plus partial text for twice the CPU; "stream"; see sphinx_engine),
      with the warp search for low voices unless ``sphinx_warp_search`` is False.
    - "auto": Vosk if a model is found, else pocketsphinx, and the note says why. A path the user gave
      (explicitly or via VOSK_MODEL_PATH) that is bad is still an error; a broken model that was merely found in
      the cache falls back to pocketsphinx with a note.
    - "none": no transcription.
    """
    kind = (engine or "auto").strip().lower()
    if kind not in ENGINES:
        raise TranscriberError(f"unknown transcriber engine {engine!r}: use one of {', '.join(ENGINES)}")
    if kind == "none":
        return None, "transcription off ([transcriber] engine = \"none\")"

    def sphinx(note: str) -> tuple[Transcriber, str]:
        from monitor.transcription.sphinx_engine import SphinxTranscriber

        return SphinxTranscriber(sphinx_mode, warp_search=sphinx_warp_search), note

    if kind == "pocketsphinx":
        return sphinx("pocketsphinx (English model from the pocketsphinx package)")

    from monitor.transcription.vosk_engine import VoskTranscriber

    if kind == "vosk":
        loc = locate_vosk_model(vosk_model_path)
        if loc is None:
            raise TranscriberError(f"engine \"vosk\" needs a Vosk model and none was found: {how_to_get_model()}")
        t = VoskTranscriber(loc.path)
        return t, f"vosk ({loc.path.name})"

    # auto
    loc = locate_vosk_model(vosk_model_path)
    if loc is None:
        return sphinx(f"pocketsphinx (no Vosk model found: run {command_hint('models fetch')})")
    if importlib.util.find_spec("vosk") is None:
        if loc.source != "cache":
            raise TranscriberError(f"a Vosk model is configured ({loc.path}) but the vosk package is not installed: "
                                   f"pip install vosk")
        return sphinx("pocketsphinx (vosk is not installed: pip install vosk)")
    try:
        t = VoskTranscriber(loc.path)
    except TranscriberError:
        if loc.source != "cache":
            raise
        return sphinx(f"pocketsphinx (the Vosk model {loc.path.name} is broken: delete it and run "
                      f"{command_hint('models fetch --force')})")
    return t, f"vosk ({loc.path.name})"
