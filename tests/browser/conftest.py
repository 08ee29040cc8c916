"""Browser tests of the backstage (issue 19): a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, which `.ci/run` and `make setup` install) driven by Selenium, against the real
bot on the sandbox.

Selenium's calls block, and the bot and the sandbox run on this test's event loop, so every browser
call runs in a worker thread (:class:`Browser`); the loop keeps serving the pages meanwhile.
Screenshots go to ``SCREENSHOTS`` (``build/screenshots``; ``CC_SCREENSHOTS`` moves it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import bot, e2e_database, sandbox, start_bot  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("CC_SCREENSHOTS", ROOT / "build" / "screenshots"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: How long a wait for something on a page may take before the test fails (s).
WAIT_S = 20


class Browser:
    """One headless Chromium window; every method runs the blocking Selenium call in a thread."""

    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    async def _run(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(call, *args)

    async def open(self, path: str) -> None:
        """Go to a backstage path (``/backstage/...``) or an absolute URL."""
        await self._run(self.driver.get, path if "://" in path else self.base_url + path)

    async def find(self, css: str) -> WebElement:
        def wait() -> WebElement:
            return WebDriverWait(self.driver, WAIT_S).until(lambda d: d.find_element(By.CSS_SELECTOR, css))
        return await self._run(wait)

    async def find_all(self, css: str) -> list[WebElement]:
        return await self._run(self.driver.find_elements, By.CSS_SELECTOR, css)

    async def click(self, css: str) -> None:
        element = await self.find(css)
        await self._run(element.click)

    async def type(self, css: str, text: str, *, clear: bool = True) -> None:
        element = await self.find(css)
        if clear:
            await self._run(element.clear)
        await self._run(element.send_keys, text)

    async def text(self, css: str = "body") -> str:
        element = await self.find(css)
        return await self._run(lambda: element.text)

    async def wait_for_text(self, text: str, css: str = "body") -> None:
        """Wait until ``css`` holds ``text``; an element of the page being left (after a click that
        navigates) that goes stale mid-wait is looked up again on the new page."""
        def wait() -> None:
            WebDriverWait(self.driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,)).until(
                lambda d: text in d.find_element(By.CSS_SELECTOR, css).text)
        await self._run(wait)

    @property
    def url(self) -> str:
        return self.driver.current_url

    async def source(self) -> str:
        return await self._run(lambda: self.driver.page_source)

    async def screenshot(self, name: str) -> Path:
        """Save the window as ``SCREENSHOTS/<name>.png`` and return the path."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        saved = await self._run(self.driver.save_screenshot, str(path))
        assert saved and path.stat().st_size > 0
        return path

    async def console_errors(self) -> list[str]:
        """What the page logged as errors (a Content-Security-Policy refusal shows here)."""
        logs = await self._run(self.driver.get_log, "browser")
        return [entry["message"] for entry in logs if entry.get("level") == "SEVERE"]


def _driver() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-sync", "--disable-component-update"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture
async def browser(bot) -> AsyncIterator[Browser]:  # noqa: F811  (the e2e bot fixture)
    """A fresh headless Chromium for the bot of this test (closed at the end)."""
    driver = await asyncio.to_thread(_driver)
    try:
        yield Browser(driver, bot.callback_base_url)
    finally:
        await asyncio.to_thread(driver.quit)


async def sign_in_with_link(browser: Browser, bot, sandbox, username: str) -> None:  # noqa: F811
    """Sign in as a person does without OAuth: open the login link from the DM, press Continue."""
    token = bot.web_auth.login_token(sandbox.user_id(username))
    await browser.open(f"/backstage/login/link?t={token}")
    await browser.click("#continue")
    await browser.wait_for_text(f"@{username}", "#signed-in-as")
