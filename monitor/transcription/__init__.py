"""Offline transcription: streaming Vosk (default), a PocketSphinx fallback that needs no download, a worker
thread that keeps recognition off the capture/emotion path, and Vosk model management.

Engines are imported lazily: importing this package loads neither vosk nor pocketsphinx.
"""

from monitor.transcription.base import Transcriber, Transcript
from monitor.transcription.factory import ENGINES, make_transcriber
from monitor.transcription.models import fetch_vosk_model, find_vosk_model, main_models
from monitor.transcription.worker import TranscriptionWorker

__all__ = [
    "ENGINES",
    "Transcriber",
    "Transcript",
    "TranscriptionWorker",
    "fetch_vosk_model",
    "find_vosk_model",
    "main_models",
    "make_transcriber",
]
