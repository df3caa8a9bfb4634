"""Headless Chromium for the tests that must look at a rendered page (the HTML report, the
MLflow UI). Debian's ``chromium`` driven by Playwright (``executable_path``: Playwright's own
browser downloads fail on a closed network). :func:`require_browser` skips the calling test
with the reason when either is missing; ``.ci/run`` installs the package when it can.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

# Without the background-networking flags Chromium keeps dialling Google's hosts, which a
# closed network refuses; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    for name in (os.environ.get("CVD_CHROMIUM", ""), "chromium", "chromium-browser"):
        path = shutil.which(name) if name else None
        if path:
            return path
    return None


def require_browser() -> str:
    """The Chromium executable, or skip the test saying what is missing."""
    path = chromium_path()
    if path is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install chromium; .ci/run does this)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
    return path


@contextmanager
def browser_page(width: int = 1280, height: int = 900) -> Iterator:
    """A fresh Playwright page in headless Debian Chromium; skips when none is available."""
    executable = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def screenshot_is_blank(png: bytes) -> bool:
    """True when every pixel of the screenshot has the same colour."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return bool((pixels == pixels[0, 0]).all())
