"""Settings: defaults, validation messages naming the variable, the persisted signing secret."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("CC_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_minimal_settings_and_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("CC_MATTERMOST_URL", "http://chat.example.com:8065/")
    monkeypatch.setenv("CC_BOT_TOKEN", "abc")
    settings = load_settings(data_dir=tmp_path)
    assert settings.mattermost_url == "http://chat.example.com:8065"
    assert settings.command_trigger == "incident"
    assert settings.reaction_emoji == "rotating_light"
    assert settings.effective_database_url == f"sqlite:///{(tmp_path / 'command-center.db').resolve()}"
    assert settings.callback_base_url(8123) == "http://127.0.0.1:8123"
    assert settings.telemetry_configured is False


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CC_MATTERMOST_URL", "chat.example.com", "CC_MATTERMOST_URL must be an http:// or https:// URL"),
        ("CC_LISTEN_PORT", "70000", "CC_LISTEN_PORT"),
        ("CC_LISTEN_PORT", "eighty", "CC_LISTEN_PORT"),
        ("CC_COMMAND_TRIGGER", "/incident", "CC_COMMAND_TRIGGER"),
        ("CC_LOG_LEVEL", "LOUD", "CC_LOG_LEVEL"),
        ("CC_PUBLIC_URL", "ftp://x", "CC_PUBLIC_URL must be an http:// or https:// URL"),
        ("CC_SIGNING_SECRET", "short", "CC_SIGNING_SECRET"),
    ],
)
def test_bad_setting_names_the_variable(monkeypatch, variable, value, expected):
    monkeypatch.setenv("CC_MATTERMOST_URL", "http://chat.example.com")
    monkeypatch.setenv("CC_BOT_TOKEN", "abc")
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert expected in str(info.value)


def test_missing_token_is_named(monkeypatch):
    monkeypatch.setenv("CC_MATTERMOST_URL", "http://chat.example.com")
    with pytest.raises(SettingsError, match="CC_BOT_TOKEN is required but not set"):
        load_settings()


def test_wildcard_listen_needs_public_url(monkeypatch):
    monkeypatch.setenv("CC_MATTERMOST_URL", "http://chat.example.com")
    monkeypatch.setenv("CC_BOT_TOKEN", "abc")
    monkeypatch.setenv("CC_LISTEN_HOST", "0.0.0.0")
    with pytest.raises(SettingsError, match="CC_PUBLIC_URL is required"):
        load_settings()
    monkeypatch.setenv("CC_PUBLIC_URL", "http://bot:8080/")
    assert load_settings().callback_base_url(1) == "http://bot:8080"


def test_signing_secret_generated_once_and_private(tmp_path):
    settings = Settings(mattermost_url="http://x", bot_token="t", data_dir=tmp_path / "data")
    first = settings.resolve_signing_secret()
    again = Settings(mattermost_url="http://x", bot_token="t", data_dir=tmp_path / "data").resolve_signing_secret()
    assert first == again and len(first) >= 32
    mode = stat.S_IMODE((tmp_path / "data" / "signing-secret").stat().st_mode)
    assert mode == 0o600


def test_unwritable_data_dir_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        blocked = tmp_path / "file-not-dir"
        blocked.write_text("x")
        data_dir = blocked / "data"  # cannot create a directory under a file, even as root
    else:
        data_dir = tmp_path / "ro"
        data_dir.mkdir(mode=0o500)
    settings = Settings(mattermost_url="http://x", bot_token="t", data_dir=data_dir)
    with pytest.raises(SettingsError, match="CC_DATA_DIR"):
        settings.resolve_signing_secret()


def test_bot_entry_point_reports_bad_setting_and_exits(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    env.update({"CC_MATTERMOST_URL": "not a url", "CC_BOT_TOKEN": "t"})
    result = subprocess.run([sys.executable, str(ROOT / "bot.py")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "CC_MATTERMOST_URL" in result.stderr
    assert "Traceback" not in result.stderr
