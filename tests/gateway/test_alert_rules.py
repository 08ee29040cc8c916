"""The routing rules file and the three alert payloads (gateway/alerts.py, README "Alerts")."""

from __future__ import annotations

import pytest

from domain.alerts import AlertIn, AlertMode, AlertStatus
from gateway.alerts import (
    AlertPayloadError,
    AlertSource,
    RulesFormatError,
    authenticated,
    body_signature,
    parse_notification,
    parse_rules,
    read_rules,
)

GOOD = """\
flood:
  window: 15m
  max_posts: 4
  incident_posts_every: 10m
  batch_delay: 5s
rules:
  - name: payments
    match:
      labels:
        service: {regex: "pay(ments|outs)"}
        severity: critical
      annotations:
        runbook_url: {exists: true}
    team: acme
    channel: "~payments-alerts"
    playbook: Payments outage
    mode: declare
    commander: "@alice"
    incident_name: "{alertname} on {labels.instance}"
  - name: everything-else
    team: acme
    channel: triage
    playbook: Incident Response
    mode: suggest
"""


def alert(**labels: str) -> AlertIn:
    return AlertIn(fingerprint="f", status=AlertStatus.FIRING, title=labels.get("alertname", "A"), group_key="g",
                   labels=labels, annotations={"runbook_url": "https://runbooks/1"})


def problems(text: str) -> list[str]:
    with pytest.raises(RulesFormatError) as caught:
        parse_rules(text)
    return [str(problem) for problem in caught.value.problems]


def test_a_good_file_parses_and_the_first_matching_rule_wins():
    rules = parse_rules(GOOD)
    assert [rule.name for rule in rules.rules] == ["payments", "everything-else"]
    payments = rules.rules[0]
    assert (payments.channel, payments.commander, payments.mode, payments.line) == ("payments-alerts", "alice",
                                                                                    AlertMode.DECLARE, 7)
    assert (rules.flood.window_ms, rules.flood.max_posts, rules.flood.incident_posts_every_ms,
            rules.flood.batch_delay_ms) == (15 * 60_000, 4, 10 * 60_000, 5000)
    assert rules.route(alert(service="payments", severity="critical")) is payments
    assert rules.route(alert(service="payouts", severity="critical")) is payments
    # The regex matches the whole value, as Alertmanager's do; a missing label never matches.
    assert rules.route(alert(service="payments-eu", severity="critical")).name == "everything-else"
    assert rules.route(alert(severity="critical")).name == "everything-else"
    name = payments.name_for(alert(alertname="HighErrorRate", instance="api-1", service="payments"), "alertmanager")
    assert name == "HighErrorRate on api-1"


def test_exists_false_and_annotation_equals():
    rules = parse_rules("""\
rules:
  - name: no-owner
    match:
      labels: {owner: {exists: false}}
      annotations: {summary: {equals: "disk full"}}
    team: acme
    channel: triage
    playbook: P
    mode: suggest
""")
    matching = AlertIn(fingerprint="f", status=AlertStatus.FIRING, title="t", group_key="g",
                       annotations={"summary": "disk full"})
    assert rules.route(matching) is not None
    assert rules.route(AlertIn(fingerprint="f", status=AlertStatus.FIRING, title="t", group_key="g",
                               labels={"owner": "x"}, annotations={"summary": "disk full"})) is None
    assert parse_rules("rules: []").route(matching) is None


def test_every_problem_is_reported_at_its_line():
    found = problems("""\
flood:
  window: 10 minutes
  max_posts: 0
rules:
  - name: Bad Name
    team: acme
    channel: triage
    playbook: P
    mode: declare
  - name: two
    mode: shout
    team: acme
    channel: "not a channel"
    playbook: P
    colour: red
  - name: three
    team: acme
    channel: triage
    playbook: P
    mode: suggest
    commander: bob
    incident_name: "{labels.}"
    match:
      labels:
        zone: {regex: "eu-("}
        env: {exists: maybe}
""")
    assert found == [
        'Line 2, flood, window: "10 minutes" is not a duration; write it like 30s, 10m or 1h.',
        "Line 3, flood, max_posts: expected a whole number from 1 to 100.",
        "Line 5, rule 'Bad Name': a rule name is lowercase letters, digits, '.', '_' or '-' (1–64).",
        "Line 5, rule 'Bad Name': a `declare` rule names the `commander` of the incidents it starts.",
        "Line 11, rule 'two', mode: the mode is `suggest` or `declare`.",
        'Line 13, rule \'two\', channel: "not a channel" is not a channel name.',
        "Line 15, rule 2, colour: unknown field; the fields allowed here are: name, match, team, channel, playbook, "
        "mode, commander, incident_name.",
        "Line 21, rule 'three', commander: only a `declare` rule has a commander: whoever clicks Start incident "
        "commands.",
        "Line 22, rule 'three', incident_name: {labels.} is not a placeholder; use {title}, {source}, {fingerprint}, "
        "{labels.NAME}, {annotations.NAME} or {NAME} (a label).",
        "Line 25, rule 'three', match, labels, zone: not a valid regular expression: missing ), unterminated "
        "subpattern at position 3.",
        "Line 26, rule 'three', match, labels, env: exists is true or false.",
    ]


def test_missing_fields_duplicate_names_and_hostile_yaml():
    assert problems("") == ["The file: the file is empty; it needs a `rules:` list."]
    assert problems("flood: {}") == ["Line 1, rules: this field is missing."]
    assert problems("rules: {a: 1}") == ["Line 1, rules: expected a list of rules, each starting with `- name:`."]
    found = problems("rules:\n  - name: a\n  - name: a\n    team: t\n    channel: c\n    playbook: p\n    mode: suggest\n")
    assert "Line 2, rule 'a': the `team` field is missing." in found
    assert "Line 3, rule 'a': another rule has this name; names must differ." in found
    assert problems("rules:\n  - &x {name: a}\n  - *x\n") == [
        "Line 3: anchors and aliases (*name) are not supported; write the values out."]
    assert problems("rules: [")[0].startswith("Line 1: not valid YAML")
    assert problems("x" * 300_000)[0].startswith("The file: the file is 300,000 characters long")
    assert problems("rules: " + "[" * 10 + "]" * 10)[0].endswith("nested too deeply for routing rules.")


def test_read_rules_names_the_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RulesFormatError) as caught:
        read_rules(missing)
    assert str(missing) in str(caught.value) and "cannot read" in str(caught.value)
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - name: x\n", encoding="utf-8")
    with pytest.raises(RulesFormatError) as caught:
        read_rules(bad)
    assert str(caught.value).startswith(str(bad)) and "Line 2" in str(caught.value)


# Payloads -----------------------------------------------------------------------------------------

def test_alertmanager_payload_without_fingerprints_gets_stable_ones():
    body = {"version": "4", "status": "firing", "receiver": "r", "groupKey": "{}:{a=\"b\"}",
            "alerts": [{"status": "firing", "labels": {"alertname": "A", "x": "1"}, "annotations": {}}]}
    [first] = parse_notification(AlertSource.ALERTMANAGER, body)
    [second] = parse_notification(AlertSource.ALERTMANAGER, body)
    assert first.fingerprint == second.fingerprint and len(first.fingerprint) == 16
    assert (first.title, first.group_key, first.status) == ("A", "{}:{a=\"b\"}", AlertStatus.FIRING)


def test_grafana_value_string_and_panel_url():
    body = {"status": "firing", "orgId": 1, "groupKey": "k", "version": "1",
            "alerts": [{"status": "firing", "labels": {"alertname": "CPU"}, "annotations": {},
                        "fingerprint": "abc", "panelURL": "https://g/panel", "generatorURL": "https://g/gen",
                        "valueString": "[ var='B' value=97 ]", "values": {"B": 97}}]}
    [parsed] = parse_notification(AlertSource.GRAFANA, body)
    assert parsed.url == "https://g/panel" and parsed.annotations["value"] == "[ var='B' value=97 ]"


def test_generic_form_defaults_and_refusals():
    [parsed] = parse_notification(AlertSource.GENERIC, {"title": "Disk full", "labels": {"host": "db1"}})
    assert parsed.status is AlertStatus.FIRING and parsed.group_key == parsed.fingerprint
    for body, where in (({"title": ""}, "title"), ({"title": "x", "status": "burning"}, "status"),
                        ({"title": "x", "colour": 1}, "colour"), ({"title": "x", "labels": {"a": 1}}, "labels.a"),
                        ({"title": "x", "labels": {f"k{i}": "v" for i in range(65)}}, "labels")):
        with pytest.raises(AlertPayloadError) as caught:
            parse_notification(AlertSource.GENERIC, body)
        assert f": {where}" in str(caught.value) and "Nothing was recorded" in str(caught.value)
    with pytest.raises(AlertPayloadError):
        parse_notification(AlertSource.ALERTMANAGER, [1, 2])
    with pytest.raises(AlertPayloadError) as caught:
        parse_notification(AlertSource.ALERTMANAGER, {"version": "4", "status": "firing", "groupKey": "k",
                                                      "alerts": [{"status": "firing", "labels": {}}] * 1001})
    assert "alerts" in str(caught.value)


def test_secrets_bearer_or_signature_in_constant_time():
    secret = "s" * 20
    body = b'{"a": 1}'
    assert authenticated(secret, {"Authorization": f"Bearer {secret}"}, body)
    assert authenticated(secret, {"Authorization": f"bearer {secret}"}, body)
    assert not authenticated(secret, {"Authorization": f"Basic {secret}"}, body)
    assert not authenticated(secret, {"Authorization": "Bearer " + "t" * 20}, body)
    assert not authenticated(secret, {}, body)
    signature = body_signature(secret, body)
    assert authenticated(secret, {"X-Command-Center-Signature": f"sha256={signature}"}, body)
    assert authenticated(secret, {"X-Grafana-Alerting-Signature": signature.upper()}, body)
    assert not authenticated(secret, {"X-Command-Center-Signature": signature}, body + b" ")
