from pathlib import Path

import pytest

from monitor.config import Config, load_config, override
from monitor.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_shipped_config_matches_the_defaults_and_has_a_pi_profile():
    cfg = load_config(REPO / "config.toml")
    assert cfg == Config()  # config.toml documents the defaults, and holds every setting
    pi = load_config(REPO / "config.toml", profile="pi")
    assert pi.model.threads == 2 and pi.transcriber.engine == "none" and pi.vad.aggressiveness == 3


def test_every_setting_is_in_config_toml():
    import tomllib
    from dataclasses import fields

    data = tomllib.loads((REPO / "config.toml").read_text())
    for section in fields(Config):
        keys = {f.name for f in fields(getattr(Config(), section.name))}
        assert keys == set(data[section.name]), section.name


@pytest.mark.parametrize(
    "text, message",
    [
        ("[vad]\nagressiveness = 2\n", "unknown key 'agressiveness' in [vad]"),
        ("[vad]\naggressiveness = 7\n", "aggressiveness must be 0, 1, 2 or 3"),
        ("[vad]\naggressiveness = 'high'\n", "[vad] aggressiveness must be an integer"),
        ("[vad]\nmargin_db = 5.0\n", "[vad] steady_db 6 (the default) must be below margin_db 5: set [vad] steady_db"),
        ("[sound]\nrate = 1\n", "unknown section [sound]"),
        ("[transcriber]\nengine = 'whisper'\n", "engine must be auto, vosk, pocketsphinx or none"),
        ("[output]\ndashboard = 'yes'\n", "[output] dashboard must be true or false"),
        ("[model\npath = ''\n", "not valid TOML"),
    ],
)
def test_bad_keys_and_values_are_one_line_errors(tmp_path, text, message):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file_and_unknown_profile(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a folder; pass a TOML file"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="profile 'tiny' is not defined"):
        load_config(REPO / "config.toml", profile="tiny")


def test_overrides_are_validated():
    cfg = override(Config(), "windows", hop_s=1.5)
    assert cfg.windows.hop_s == 1.5
    assert cfg.segmenter_options().hop_s == 1.5
    with pytest.raises(ConfigError):
        override(Config(), "model", threads=0)
