"""The playbook editor and the stats page in a real headless Chromium: add a step and save it
without any JavaScript (the page's buttons are form submits), see it saved; the stats page draws its
SVG charts under the Content-Security-Policy (no refusal in the console)."""

from __future__ import annotations

from selenium.webdriver.support.wait import WebDriverWait

from domain.metrics import week_start
from tests.e2e.conftest import make_playbook
from tests.e2e.test_history import quick_incident
from tests.e2e.test_stats import MINUTE, ended

from .conftest import sign_in_with_link


async def test_edit_a_playbook_add_a_step_and_save(browser, bot, sandbox):
    playbook = await make_playbook(bot, sandbox, title="Payments down", members=("alice",))
    await sign_in_with_link(browser, bot, sandbox, "alice")
    await browser.open("/backstage/playbooks")
    await browser.wait_for_text("Payments down", "#playbooks")
    await browser.click(f'a[href^="/backstage/playbooks/{playbook.id}"]')
    await browser.wait_for_text("Payments down", "#playbook-title")
    await browser.click("#add-step-1")  # a submit: the draft comes back with step 1.4
    await browser.type("#step-1-4-title", "Tell the support team")
    await browser.type("#step-1-4-command", "/echo support told")
    await browser.type("#title", "Payments down (v2)")
    assert (await bot.store.get_playbook(playbook.id)).version == playbook.version  # nothing saved yet
    await browser._run(lambda: browser.driver.set_window_size(1280, 2200))
    await browser.screenshot("playbook-editor")
    await browser.click("#save")
    # Saved: redirected to the page (the draft page had a notice too, so wait for the new address first).
    await browser._run(lambda: WebDriverWait(browser.driver, 10).until(lambda d: "saved=1" in d.current_url))
    await browser.wait_for_text("Saved.", "#notice")
    await browser.wait_for_text("Tell the support team", "#outline")
    saved = await bot.store.get_playbook(playbook.id)
    assert saved.title == "Payments down (v2)" and saved.stages[0].steps[-1].title == "Tell the support team"
    assert saved.stages[0].steps[-1].command == "/echo support told"
    assert await browser.console_errors() == []


async def test_the_stats_page_draws_its_charts(browser, bot, sandbox):
    playbook = await make_playbook(bot, sandbox, title="Outage", members=("alice", "bob"))
    now = bot.ctx.clock()
    starts = [now - (3 + 7 * n) * 86_400_000 for n in range(4)]
    for n, (start, minutes) in enumerate(zip(starts, (12, 45, 90, 20), strict=True)):
        incident = await quick_incident(bot, sandbox, playbook, f"Outage {n}", "bob", at=start)
        await ended(bot, incident, minutes, severity="SEV1" if n % 2 else "SEV2")
    await quick_incident(bot, sandbox, playbook, "Ongoing", "bob", at=now - 2 * MINUTE)
    weeks_with_one = len({week_start(at) for at in [*starts, now - 2 * MINUTE]})
    await sign_in_with_link(browser, bot, sandbox, "alice")
    await browser.open("/backstage/stats?days=90")
    await browser.wait_for_text("Incidents per week", "main")
    bars = await browser.find_all("#chart-per-week rect.bar")
    assert len(bars) >= 5
    heights = [float(await browser._run(bar.get_attribute, "height")) for bar in bars]
    assert sum(1 for h in heights if h > 0) == weeks_with_one
    assert len(await browser.find_all("#chart-trend circle.point.median")) == 4
    assert len(await browser.find_all("#chart-playbooks rect.bar")) == 1
    # The bars are painted by the stylesheet (a class), which the policy allowed.
    fill = await browser._run(lambda: browser.driver.execute_script(
        "return getComputedStyle(document.querySelector('#chart-per-week rect.bar')).fill"))
    assert fill == "rgb(28, 88, 217)"
    assert "5" in await browser.text("#total-count")
    await browser._run(lambda: browser.driver.set_window_size(1280, 1800))
    await browser.screenshot("stats")
    assert await browser.console_errors() == []
