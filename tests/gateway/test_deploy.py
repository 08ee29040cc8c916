"""The Docker artefacts agree with settings.py (Docker itself cannot run on the build machines)."""

from pathlib import Path

import yaml

from settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


def compose():
    return yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())


def test_compose_has_the_three_services():
    services = compose()["services"]
    assert set(services) == {"postgres", "mattermost", "command-center"}
    assert services["mattermost"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_bot_service_settings_match_settings_py():
    bot = compose()["services"]["command-center"]
    environment = bot["environment"]
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert set(environment) <= known, f"unknown settings in compose: {set(environment) - known}"
    required = {f"{ENV_PREFIX}{name.upper()}" for name, field in Settings.model_fields.items() if field.is_required()}
    assert required <= set(environment)
    # Mattermost reaches the bot by its service name on the listen port.
    assert environment["CC_PUBLIC_URL"] == f"http://command-center:{environment['CC_LISTEN_PORT']}"
    assert environment["CC_MATTERMOST_URL"].startswith("http://mattermost:")
    mattermost_env = compose()["services"]["mattermost"]["environment"]
    assert "command-center" in mattermost_env["MM_SERVICESETTINGS_ALLOWEDUNTRUSTEDINTERNALCONNECTIONS"].split()
    assert mattermost_env["MM_SERVICESETTINGS_ENABLECOMMANDS"] == "true"
    assert any(volume.endswith(":/data") for volume in bot["volumes"])
    assert environment["CC_DATA_DIR"] == "/data"


def test_dockerfile_is_slim_non_root_with_volume_and_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("# ") and "FROM python:3.11-slim" in text
    assert "\nUSER commandcenter" in text and 'VOLUME ["/data"]' in text
    assert "HEALTHCHECK" in text and "/healthz" in text
    for package in ("domain", "gateway", "plugins", "services", "storage", "telemetry"):
        assert f"COPY {package} ./{package}" in text
    # Every top-level module the bot imports is in the image.
    assert "COPY bot.py settings.py version.py ./" in text
    settings_env = {line.split("=")[0].strip() for line in text.splitlines() if line.strip().startswith("CC_")}
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert settings_env and settings_env <= known
