"""CC_EVENT_LOOP (issue 15, CPU per start): asyncio's loop unless uvloop is asked for; anything else is
refused at start-up naming the variable; uvloop missing is said plainly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("CC_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("CC_MATTERMOST_URL", "http://chat.example.com")
    monkeypatch.setenv("CC_BOT_TOKEN", "abc")


def test_the_loop_is_asyncios_unless_uvloop_is_chosen(monkeypatch, tmp_path):
    assert load_settings(data_dir=tmp_path).event_loop == "asyncio"
    monkeypatch.setenv("CC_EVENT_LOOP", "uvloop")
    assert load_settings(data_dir=tmp_path).event_loop == "uvloop"


@pytest.mark.parametrize("value", ["tokio", "UVLOOP ; rm -rf /", "", "trio"])
def test_another_loop_is_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("CC_EVENT_LOOP", value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "CC_EVENT_LOOP" in str(info.value)


def test_uvloop_missing_stops_the_bot_with_a_plain_message(tmp_path):
    # A copy of the environment where ``import uvloop`` fails (a module of that name that raises).
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "uvloop.py").write_text("raise ImportError('no uvloop here')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
    env.update({"CC_MATTERMOST_URL": "http://127.0.0.1:9", "CC_BOT_TOKEN": "abc", "CC_DATA_DIR": str(tmp_path),
                "CC_EVENT_LOOP": "uvloop", "PYTHONPATH": os.pathsep.join([str(shadow), str(ROOT)])})
    done = subprocess.run([sys.executable, str(ROOT / "bot.py")], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "CC_EVENT_LOOP=uvloop needs the uvloop package" in done.stderr
    assert "Traceback" not in done.stderr
