"""deploy/docker-compose.replicas.yml and deploy/nginx.conf agree with settings.py and docs/replicas.md:
what replicas share (database, signing secret, public URL = the proxy) and what they must not (their id)."""

from pathlib import Path

import yaml

from settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "deploy" / "docker-compose.replicas.yml").read_text())


def replicas() -> dict[str, dict]:
    return {name: service for name, service in compose()["services"].items() if name.startswith("command-center-")}


def test_two_replicas_one_proxy_and_postgresql():
    services = compose()["services"]
    assert len(replicas()) == 2
    assert services["command-center"]["image"].startswith("nginx:")
    assert any(volume.endswith("/etc/nginx/nginx.conf:ro") for volume in services["command-center"]["volumes"])
    assert services["cc-postgres"]["image"].startswith("postgres:")
    assert services["mattermost"]["image"] == yaml.safe_load(
        (ROOT / "deploy" / "docker-compose.yml").read_text())["services"]["mattermost"]["image"]


def test_replicas_share_what_must_be_shared_and_nothing_per_replica_in_files():
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    required = {f"{ENV_PREFIX}{name.upper()}" for name, field in Settings.model_fields.items() if field.is_required()}
    environments = [service["environment"] for service in replicas().values()]
    for environment in environments:
        assert set(environment) <= known, set(environment) - known
        assert required <= set(environment)
        assert environment["CC_DATABASE_URL"].startswith("postgresql://")
        assert environment["CC_PUBLIC_URL"] == "http://command-center:8080"  # the proxy, for every replica
        assert environment["CC_SIGNING_SECRET"]
    shared = ("CC_DATABASE_URL", "CC_SIGNING_SECRET", "CC_PUBLIC_URL", "CC_BOT_TOKEN", "CC_LEASE_MS")
    for key in shared:
        assert len({environment[key] for environment in environments}) == 1, key
    assert len({environment["CC_REPLICA_ID"] for environment in environments}) == 2
    for service in replicas().values():
        assert not service.get("volumes"), "a replica keeps nothing of its own in files"
    mattermost_env = compose()["services"]["mattermost"]["environment"]
    assert "command-center" in mattermost_env["MM_SERVICESETTINGS_ALLOWEDUNTRUSTEDINTERNALCONNECTIONS"].split()


def test_the_proxy_spreads_callbacks_and_never_repeats_a_sent_post():
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    for name in replicas():
        assert f"server {name}:8080" in text
    assert "listen 8080;" in text and "proxy_pass http://command_center;" in text
    directives = "\n".join(line for line in text.splitlines() if not line.strip().startswith("#"))
    assert "non_idempotent" not in directives and "proxy_next_upstream error timeout" in directives
