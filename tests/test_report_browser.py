"""reports/index.html opened in headless Chromium from the file system: every image loads
and the page is not blank. Built by the real explain stage from a small generated run."""
from __future__ import annotations

from explain_run import make_explain_run

from browser import browser_page, require_browser, screenshot_is_blank
from helpers import REPO_ROOT
from pipeline import explain
from pipeline.config import load_config


def test_report_page_renders_every_image_in_a_real_browser(mlflow_tmp):
    require_browser()  # skip before building anything when there is no browser
    make_explain_run(mlflow_tmp)
    explain.run(load_config(REPO_ROOT / "params.yaml", {"features.sift.n_words": 8, "features.n_jobs": 1}))
    index = mlflow_tmp / "reports/index.html"

    with browser_page() as page:
        page.goto(index.as_uri(), wait_until="load")
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => ({src: e.getAttribute('src'), complete: e.complete, width: e.naturalWidth}))")
        title = page.title()
        headings = page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)")
        png = page.screenshot(full_page=True)

    assert len(images) >= 15  # plots, galleries, per-class, confusion difference, 3 images x 5 drawings, lecture
    broken = [i["src"] for i in images if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"images that did not load: {broken}"
    assert "hog-logreg" in title and "lenet5" in title
    assert {"Leaderboard", "Classical right, deep wrong", "Deep right, classical wrong",
            "Confusion difference"} <= set(headings)
    assert not screenshot_is_blank(png)
