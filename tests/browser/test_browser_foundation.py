"""The backstage in a real headless Chromium: signing in with a login link, the policy holds (the
browser reports no refused resource), logging out."""

from __future__ import annotations

from .conftest import sign_in_with_link


async def test_sign_in_with_a_link_and_log_out(browser, bot, sandbox):
    await browser.open("/backstage/")
    await browser.wait_for_text("Sign in", "h1")  # signed out: the login page
    await sign_in_with_link(browser, bot, sandbox, "alice")
    assert browser.url.endswith("/backstage/")
    await browser.screenshot("home")
    # The stylesheet loaded under the Content-Security-Policy and nothing was refused.
    assert await browser.console_errors() == []
    background = await browser._run(lambda: browser.driver.execute_script(
        "return getComputedStyle(document.body).backgroundColor"))
    assert background == "rgb(246, 248, 250)"
    await browser.click("#logout")
    await browser.wait_for_text("Sign in", "h1")
    await browser.open("/backstage/")
    await browser.wait_for_text("Sign in", "h1")
