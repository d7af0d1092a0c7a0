"""The pages in a 1400x900 laptop window, checked by where their elements are drawn.

Main actions visible without scrolling, button labels not cut, the canvas toolbar clear of
the text above it, tables as wide as the page at most. Each check saves a screenshot under
test-artifacts/ for people to look at.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import AppServer, screenshot, wait_for_app

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 1400, 900


def _open(page, server: AppServer, path: str, ready: str | re.Pattern[str]) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server.url}/{path}")
    wait_for_app(page, timeout=180_000)
    page.get_by_text(ready).first.wait_for(timeout=90_000)
    wait_for_app(page)
    # The canvas component reruns the page once it has mounted; let that settle.
    page.wait_for_timeout(1000)
    wait_for_app(page)


def _in_viewport(page, box: dict[str, float]) -> bool:  # type: ignore[no-untyped-def]
    vp = page.viewport_size
    return (
        box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= vp["width"]
        and (box["y"] + box["height"] <= vp["height"])
    )


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


# Anything inside an element drawn wider than its box (an ellipsis, a clipped label).
_CUT = """el => [el, ...el.querySelectorAll('*')]
    .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)
    .map(e => e.textContent)"""

# The data grid's scroll area: wider content than box means columns off to the right.
_GRID = """el => { const s = el.querySelector('.dvn-scroller'); const r = el.getBoundingClientRect();
    return {right: r.right, content: s.scrollWidth, visible: s.clientWidth}; }"""


def test_annotate_save_next_previous_visible_without_scrolling(page, models_server: AppServer) -> None:  # type: ignore[no-untyped-def]
    assert page.viewport_size == {"width": WIDTH, "height": HEIGHT}
    _open(page, models_server, "annotate", "Label for new boxes")
    screenshot(page, "layout_annotate")
    for name in (r"^Save\b", r"^Next(?! new)", r"^Previous"):
        button = page.get_by_role("button", name=re.compile(name))
        box = button.bounding_box()
        assert box is not None and _in_viewport(page, box), f"{name}: {box} is outside the 1400x900 window"
    # Every action's label whole, its key hint beside it ("No g…" with Shift+N in half a column).
    for name in (r"^Save\b", r"^Next(?! new)", r"^Previous", r"^Copy previous", r"^No garments", r"^Next new"):
        button = page.get_by_role("button", name=re.compile(name))
        assert button.evaluate(_CUT) == [], f"the label of {name!r} is cut"


def test_review_buttons_uncut_and_toolbar_clear_of_the_item_line(page, models_server: AppServer) -> None:  # type: ignore[no-untyped-def]
    _open(page, models_server, "review", re.compile(r"to review · top score"))
    page.locator(".dc-container canvas").last.wait_for()
    names = ("Accept as is", "Save corrections", "Reject image", "Skip", "No garments in this image")
    for name in names:
        button = page.get_by_role("button", name=re.compile(rf"^{name}"))
        assert button.evaluate(_CUT) == [], f"the label of {name!r} is cut"
        box = button.bounding_box()
        assert box is not None and _in_viewport(page, box), f"{name}: {box} is outside the 1400x900 window"
    # The toolbar shows when the pointer is over the canvas and sits above its top edge.
    page.locator(".dc-container canvas").last.hover()
    toolbar = page.locator(".dc-toolbar-card")
    page.wait_for_timeout(600)  # its fade-in and slide (0.25 s in the component's CSS)
    screenshot(page, "layout_review")
    item_line = page.get_by_text(re.compile(r"to review · top score")).first.bounding_box()
    bar = toolbar.bounding_box()
    assert item_line is not None and bar is not None
    assert not _overlap(bar, item_line), f"the canvas toolbar {bar} covers the item line {item_line}"


def test_train_start_buttons_visible_without_scrolling(page, models_server: AppServer) -> None:  # type: ignore[no-untyped-def]
    """Both training forms: the Start button above the fold, with the estimate and the fit's text above it.

    On a server without the offline weights, the button that prepares them shows beside Start.
    """
    _open(page, models_server, "train", "Model versions")
    screenshot(page, "layout_train")
    page.get_by_text(re.compile(r"epochs over \d+ training images")).wait_for()  # the long estimate is drawn
    button = page.get_by_role("button", name="Start training")
    box = button.bounding_box()
    assert box is not None and _in_viewport(page, box), f"Start training: {box} is outside the 1400x900 window"
    # This server has no offline weights prepared, as on a fresh install: preparing them is the
    # first thing to do there, so its button shows beside Start.
    prepare = page.get_by_role("button", name=re.compile("Prepare offline ImageNet weights"))
    box = prepare.bounding_box()
    assert box is not None and _in_viewport(page, box), f"Prepare weights: {box} is outside the 1400x900 window"
    page.get_by_text("Tags (category and attributes per image)").click()
    wait_for_app(page)
    button = page.get_by_role("button", name="Start tags training")
    button.wait_for()
    screenshot(page, "layout_train_tags")
    box = button.bounding_box()
    assert box is not None and _in_viewport(page, box), f"Start tags training: {box} is outside the 1400x900 window"


@pytest.mark.parametrize(("path", "ready"), [("train", "Model versions"), ("evaluate", "COCO-style metrics")])
def test_model_version_tables_fit_the_main_area(page, models_server: AppServer, path: str, ready: str) -> None:  # type: ignore[no-untyped-def]
    _open(page, models_server, path, ready)
    main = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()
    table = page.locator('[data-testid="stDataFrame"]').first
    table.scroll_into_view_if_needed()
    screenshot(page, f"layout_{path}_table")
    grid = table.evaluate(_GRID)
    assert grid["right"] <= main["x"] + main["width"]
    assert grid["content"] <= grid["visible"], (
        f"{path}: columns {grid['content']} px wide in a {grid['visible']} px table"
    )
