"""User-facing errors: each carries one line that names the problem and what to do."""


class MonitorError(Exception):
    """An error the CLI reports as a single line (no traceback)."""


class ConfigError(MonitorError):
    """A bad key or value in config.toml or on the command line."""


class AudioError(MonitorError):
    """An unreadable file, a missing device, a wrong format."""


class ModelError(MonitorError):
    """A missing model or one whose metadata does not match the runtime."""


class TranscriberError(MonitorError):
    """A speech recogniser that cannot start: no model, a bad model path, a missing engine."""
