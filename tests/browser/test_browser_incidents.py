"""The incident pages in a real headless Chromium (issue 19): find an incident in the list, open it,
check a step in the page and see the card change in the sandbox; be refused a private incident."""

from __future__ import annotations

from tests.e2e.conftest import make_playbook
from tests.e2e.test_incidents import card, card_text, start_incident

from .conftest import sign_in_with_link


async def test_find_an_incident_open_it_and_check_a_step_the_card_changes(browser, bot, sandbox):
    await make_playbook(bot, sandbox, members=("alice", "bob"))
    await start_incident(sandbox, bot, user="bob", name="Database down", description="Primary is read-only")
    incident, _ = await start_incident(sandbox, bot, user="bob", name="Checkout errors",
                                       description="Checkout returns 502 for a third of requests")
    await sign_in_with_link(browser, bot, sandbox, "bob")
    await browser.open("/backstage/incidents")
    await browser.wait_for_text("Database down", "#incidents")
    await browser.type("#q", "checkout")
    await browser.click("#apply")
    await browser.wait_for_text("1–1 of 1", "#range")
    assert "Database down" not in await browser.text("#incidents")
    await browser.screenshot("incident-list")
    await browser.click("a.incident-link")
    await browser.wait_for_text("Checkout errors", "#incident-name")
    await browser.click("#check-1\\.1")
    await browser.wait_for_text("Step checked", "#notice")
    assert "done by @bob" in await browser.text("#step-1\\.1")
    await sandbox.wait_for(lambda: "✅ **1.1**" in card_text(card(sandbox, incident)))
    assert "done by @bob" in card_text(card(sandbox, incident))
    await browser.screenshot("incident-detail")
    assert await browser.console_errors() == []


async def test_a_private_incident_is_refused_to_a_non_member(browser, bot, sandbox):
    await make_playbook(bot, sandbox, title="Private response", members=("bob",), public=False)
    incident, _ = await start_incident(sandbox, bot, user="bob", name="Payroll leak")
    await sign_in_with_link(browser, bot, sandbox, "dave")
    await browser.open("/backstage/incidents")
    await browser.wait_for_text("No incidents you can see", "#empty")
    await browser.open(f"/backstage/incidents/{incident.id}")
    await browser.wait_for_text("Not found", "h1")
    assert "Payroll leak" not in await browser.text()
    assert "ask the incident's commander to add you" in await browser.text("#refusal")
    await browser.screenshot("incident-refused")
