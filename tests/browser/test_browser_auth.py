"""Signing in with Mattermost in a real headless Chromium (issue 19): the backstage's button, the
sandbox's login page and Allow page, back on the backstage signed in, a token created, logging out."""

from __future__ import annotations

import pytest

from tests.e2e.oauth_flow import start_oauth_bot


@pytest.fixture
async def bot(start_bot, sandbox):
    """The bot with "Sign in with Mattermost" configured (the browser fixture opens its pages)."""
    started, _ = await start_oauth_bot(start_bot, sandbox)
    return started


async def test_sign_in_with_mattermost_and_log_out(browser, bot, sandbox):
    await browser.open("/backstage/tokens")
    await browser.wait_for_text("Sign in with Mattermost", "#oauth-login")  # signed out: the login page
    await browser.screenshot("login-oauth")
    await browser.click("#oauth-login")
    # Mattermost: signed out there too, so its login page first, then the Allow page.
    await browser.type("#login-id", "alice")
    await browser.type("#login-password", "alice-password")
    await browser.click("#login-submit")
    await browser.wait_for_text("would like to access your", "#authorize-title")
    assert browser.url.startswith(sandbox.url + "/oauth/authorize?")
    await browser.click("#allow")
    # Back on the backstage, signed in, where the person was going.
    await browser.wait_for_text("@alice", "#signed-in-as")
    assert browser.url == bot.callback_base_url + "/backstage/tokens"
    await browser.type("#token-name", "grafana")
    await browser.click("#create-token")
    assert (await browser.text("#token-secret")).startswith("cct_")
    await browser.screenshot("tokens")
    ours = [entry for entry in await browser.console_errors() if bot.callback_base_url in entry]
    assert ours == []  # nothing of ours refused by the Content-Security-Policy
    await browser.click("#logout")
    await browser.wait_for_text("Sign in", "h1")
    await browser.open("/backstage/tokens")
    await browser.wait_for_text("Sign in with Mattermost", "#oauth-login")
