"""Reusable headless-Chromium fixtures: Debian's chromium with every network request refused.

Registered for every test module by ``pytest_plugins`` in ``tests/conftest.py``: request the
fixtures and mark the tests ``@pytest.mark.browser``. ``offline_page`` yields an
:class:`OfflinePage` whose ``errors`` list collects console errors, uncaught exceptions and
dialogs (an ``alert`` from an XSS payload lands there), and whose ``requests`` list every request
the page tried beyond ``file:``/``data:``/``about:`` URLs (all refused).
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOCAL = ("file:", "data:", "about:", "blob:")


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """One Chromium per test session (Debian's ``chromium`` package, never a downloaded build)."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Debian chromium is not installed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class OfflinePage:
    """A page with networking off, and what it complained about."""

    page: object
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def open(self, path: Path, *, wait_ms: int = 0) -> None:
        """Load a local file and wait until it has loaded (plus ``wait_ms``)."""
        self.page.goto(Path(path).resolve().as_uri(), wait_until="load")
        if wait_ms:
            self.page.wait_for_timeout(wait_ms)

    def drawn_pixels(self, selector: str) -> int:
        """Pixels of the element that differ from its most common colour (the background)."""
        from PIL import Image

        png = self.page.locator(selector).first.screenshot()
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
        colors, counts = np.unique(pixels, axis=0, return_counts=True)
        background = colors[counts.argmax()]
        return int((pixels != background).any(axis=1).sum())


@pytest.fixture
def offline_page(chromium: object) -> Iterator[OfflinePage]:
    """A fresh page in an offline context that refuses every non-local request."""
    context = chromium.new_context(offline=True, viewport={"width": 1400, "height": 900})
    result = OfflinePage(context.new_page())

    def refuse(route: object) -> None:
        url = route.request.url
        if url.startswith(LOCAL):
            route.continue_()
        else:
            result.requests.append(url)
            route.abort()

    context.route("**/*", refuse)
    page = result.page
    page.on("console", lambda m: m.type == "error" and result.errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: result.errors.append(f"pageerror: {e}"))

    def dialog(d: object) -> None:
        result.errors.append(f"dialog {d.type}: {d.message}")
        d.dismiss()

    page.on("dialog", dialog)
    try:
        yield result
    finally:
        context.close()
