"""The home page in a real browser: the first start shows the demo project's counts."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import AppServer, screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def metric_value(page, label: str) -> str:
    metric = page.locator('[data-testid="stMetric"]', has_text=label).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip()


def test_home_reads_demo_counts(app_server: AppServer, page) -> None:
    page.goto(app_server.url)
    wait_for_app(page, timeout=120_000)
    page.get_by_text("Demo: clothing scenes").first.wait_for(timeout=60_000)
    page.locator('[data-testid="stMetric"]').first.wait_for()
    assert metric_value(page, "Images") == "300"
    assert metric_value(page, "Done") == "200"
    assert metric_value(page, "New") == "100"
    assert int(metric_value(page, "Boxes")) > 300
    page.get_by_text("Boxes by class").wait_for()
    screenshot(page, "home")
