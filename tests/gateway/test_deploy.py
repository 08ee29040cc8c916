"""The Docker artefacts agree with settings.py (Docker itself cannot run on the build machines)."""

from pathlib import Path

import pytest
import yaml

from sandbox import SandboxConfig
from settings import ENV_PREFIX, Settings
from version import MIN_MATTERMOST, TESTED_MATTERMOST, mattermost_supported, parse_version

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
    # Mattermost reaches the bot by its service name on the listen port, unless CC_PUBLIC_URL names an
    # address browsers reach too (the backstage).
    assert environment["CC_PUBLIC_URL"] == f"${{CC_PUBLIC_URL:-http://command-center:{environment['CC_LISTEN_PORT']}}}"
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


def pinned_mattermost_version() -> str:
    image = compose()["services"]["mattermost"]["image"]
    repository, _, tag = image.partition(":")
    assert repository in ("mattermost/mattermost-team-edition", "mattermost/mattermost-enterprise-edition")
    return tag


def test_compose_pins_an_exact_supported_mattermost_release():
    tag = pinned_mattermost_version()
    # An exact x.y.z tag, not a floating one, so a deployment runs what was tested.
    assert parse_version(tag) is not None and len(parse_version(tag)) == 3, tag
    assert mattermost_supported(tag), f"{tag} is older than the minimum supported {MIN_MATTERMOST}"
    assert tag == TESTED_MATTERMOST


def test_sandbox_announces_the_tested_release_by_default():
    assert SandboxConfig().server_version == TESTED_MATTERMOST
    assert mattermost_supported(SandboxConfig().server_version)


@pytest.mark.parametrize("version, supported", [
    ("11.7.0", True), ("11.7.15", True), ("11.11.2", True), ("12.0.1", True), ("12", True),
    ("11.6.9", False), ("10.11.23", False), ("9.11.0", False), ("11", False),
    ("", None), ("dev", None), ("11.7.x", None),
])
def test_supported_mattermost_versions(version, supported):
    assert mattermost_supported(version) is supported


def test_readme_names_the_minimum_supported_release():
    readme = (ROOT / "README.md").read_text()
    assert f"Works with Mattermost {MIN_MATTERMOST} and later" in readme
    assert TESTED_MATTERMOST in readme
