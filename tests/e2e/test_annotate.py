"""The annotate page in headless Chromium: draw, label by key, save, navigate, move, delete, two tabs.

The server runs on a prepared data folder (one 4000x3000 photo, so boxes go through the
downscaled display copy, plus small ones); every check reads the real SQLite file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from PIL import Image as PILImage
from PIL import ImageDraw
from sqlalchemy import select

from core.annotate.save import save_boxes
from core.annotate.state import DraftBox, load_image
from core.boxes import Box
from core.database import open_database
from core.project.imagestore import ImageStore
from core.project.ingest import ingest_one
from core.project.projects import create_project
from core.settings import Settings
from db.engine import session_scope
from db.models import BoxChange, Image
from tests.e2e.conftest import AppServer, screenshot, start_server, stop_server, wait_for_app

pytestmark = pytest.mark.e2e

# Image name -> size; the queue orders by name, so the big photo comes first.
IMAGES = {"a_big.jpg": (4000, 3000), "b_next.jpg": (800, 600), "c_move.jpg": (900, 700), "d_conflict.jpg": (640, 480)}
SHIRTS_RGB = (0xFF, 0xE1, 0x19)  # the third label's palette colour (#ffe119)


def _photo(size: tuple[int, int], seed: int) -> bytes:
    w, h = size
    im = PILImage.new("RGB", size, (215, 210 - 30 * seed, 190))
    draw = ImageDraw.Draw(im)
    draw.rectangle([w // 4, h // 4, w // 2, h // 2], fill=(40, 40, 110))  # a 'garment' to box
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """A server on a project with four images; c_move.jpg already has one saved box."""
    data_dir = tmp_path_factory.mktemp("annotate") / "data"
    data_dir.mkdir()
    settings = Settings.resolve(f"sqlite:///{data_dir / 'tagrack.db'}", data_dir)
    engine = open_database(settings)
    with session_scope(engine) as session:
        project_id = create_project(session, "E2E annotate").id
        for i, (name, size) in enumerate(IMAGES.items()):
            out = ingest_one(session, ImageStore(data_dir), project_id, name, _photo(size, i))
            assert out.outcome == "imported", out
    with session_scope(engine) as session:
        save_boxes(session, _image_id(engine, "c_move.jpg"), 0, [DraftBox("Jeans", Box(200, 150, 500, 450))], "seed")
    engine.dispose()
    srv = start_server(data_dir)
    yield srv
    stop_server(srv)


def _engine(server: AppServer):  # type: ignore[no-untyped-def]
    return open_database(Settings.resolve(server.db_url, server.data_dir))


def _image_id(engine, name: str) -> int:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return session.scalar(select(Image.id).where(Image.original_name == name))  # type: ignore[return-value]


def _state(server: AppServer, name: str):  # type: ignore[no-untyped-def]
    engine = _engine(server)
    try:
        with session_scope(engine) as session:
            return load_image(session, _image_id(engine, name))
    finally:
        engine.dispose()


def open_annotate(page, server: AppServer, image: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Opens the app, goes to Annotate, optionally jumps to an image by name."""
    page.goto(server.url)
    wait_for_app(page)
    # Until app.py has run st.navigation, Streamlit shows its automatic list of pages/
    # (lower-case names, pages run without app.py); wait for the app's own sidebar.
    page.get_by_text("Your name").wait_for(timeout=60_000)
    page.get_by_role("link", name="Annotate", exact=True).click()
    try:
        page.get_by_text("Label for new boxes").wait_for(timeout=60_000)
    except Exception:
        screenshot(page, "annotate_failed_open")
        raise
    if image:
        box = page.get_by_label("Jump to image (name)")
        box.fill(image)
        box.press("Enter")
        header(page, image)
    wait_for_app(page)


def header(page, name: str):  # type: ignore[no-untyped-def]
    """Waits until the page shows ``name`` as the current image."""
    loc = page.get_by_text(re.compile(rf"^{re.escape(name)}"), exact=False).first
    page.locator("strong", has_text=name).first.wait_for(timeout=30_000)
    return loc


def wait_text(page, text: str | re.Pattern[str], timeout: float = 20_000) -> None:  # type: ignore[no-untyped-def]
    """Waits for text on the page; on failure saves a screenshot to look at."""
    try:
        page.get_by_text(text).first.wait_for(timeout=timeout)
    except Exception:
        screenshot(page, "annotate_failed_wait")
        raise


def canvas(page):  # type: ignore[no-untyped-def]
    """The drawing (upper) canvas of the component."""
    loc = page.locator(".dc-container canvas").last
    loc.wait_for()
    loc.scroll_into_view_if_needed()  # measure it in view: mouse coordinates are the viewport's
    return loc


def drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:  # type: ignore[no-untyped-def]
    """A mouse drag between two page points."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()


def expected_original(server: AppServer, name: str, cbox: dict, px: tuple[float, float]) -> tuple[float, float]:
    """Maps a page point on the canvas to original pixels with the contain-fit formula, independently of ui/canvas."""
    state = _state(server, name)
    with ImageStore(server.data_dir).open(state.display_path) as im:
        dw, dh = im.size
    cw, ch = cbox["width"], cbox["height"]
    s = min(cw / dw, ch / dh)
    ox, oy = (cw - dw * s) / 2, (ch - dh * s) / 2
    x, y = px[0] - cbox["x"], px[1] - cbox["y"]
    return (x - ox) / s * state.width / dw, (y - oy) / s * state.height / dh


def pixel(page, x: float, y: float) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """The RGB of the page at a point, read from the component's box layer."""
    rgba = (
        page.locator(".dc-container canvas")
        .nth(1)
        .evaluate(  # 0 is the background, 1 the boxes
            "(c, p) => Array.from(c.getContext('2d').getImageData(p[0], p[1], 1, 1).data)", [x, y]
        )
    )
    return tuple(rgba[:3])


def box_centre(page, server: AppServer, name: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The page point at the centre of the image's only stored box (the canvas may have moved)."""
    (b,) = _state(server, name).boxes
    state = _state(server, name)
    cbox = canvas(page).bounding_box()
    with ImageStore(server.data_dir).open(state.display_path) as im:
        dw, dh = im.size
    s = min(cbox["width"] / dw, cbox["height"] / dh)
    ox, oy = (cbox["width"] - dw * s) / 2, (cbox["height"] - dh * s) / 2
    mx, my = (b.box.x_min + b.box.x_max) / 2, (b.box.y_min + b.box.y_max) / 2
    return cbox["x"] + ox + mx * dw / state.width * s, cbox["y"] + oy + my * dh / state.height * s


def select_box(page, server: AppServer, name: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Turns on the toolbar's edit toggle and selects the image's box; returns the point clicked.

    The point is measured again right before every click: Streamlit can scroll or shift the
    page between two actions (a message appearing above the canvas, a rerun).
    """
    page.locator(".dc-root").hover()
    edit = page.get_by_role("button", name="Edit")
    assert edit.get_attribute("aria-pressed") == "false"  # every load starts out of edit mode
    edit.click()
    for _ in range(3):
        x, y = box_centre(page, server, name)
        page.mouse.click(x, y)
        try:
            page.wait_for_function(
                "el => !el.disabled",
                arg=page.get_by_role("button", name="Delete selected").element_handle(),
                timeout=3_000,
            )
            return box_centre(page, server, name)
        except Exception:
            page.wait_for_timeout(300)
    screenshot(page, "annotate_failed_select")
    now = page.locator(".dc-container canvas").last.bounding_box()
    raise AssertionError(f"could not select the box on the canvas at {(x, y)}; canvas now at {now}")


def focus_page(page) -> None:  # type: ignore[no-untyped-def]
    """Moves keyboard focus off any input so single-key shortcuts reach Streamlit."""
    page.locator("h1").first.click()


def test_draw_label_by_key_save_navigate_and_find_it_again(page, server: AppServer) -> None:
    page.set_viewport_size({"width": 1400, "height": 1300})
    open_annotate(page, server)
    header(page, "a_big.jpg")  # the first unannotated image comes first
    wait_for_app(page)  # the canvas' first value reruns the page: press keys once it has settled
    focus_page(page)
    shirts = page.get_by_text("Label for new boxes:").locator("..").get_by_text("Shirts")
    page.keyboard.press("3")  # third label: Shirts
    try:
        shirts.wait_for(timeout=15_000)
    except Exception:
        # A CI run lost this first key press (2026-12-03) while the page was still drawing; picking a
        # label is idempotent, so a second press tells a lost event from a broken shortcut.
        screenshot(page, "annotate_first_key_lost")
        focus_page(page)
        page.keyboard.press("3")
        shirts.wait_for()
    wait_for_app(page)

    c = canvas(page)
    cbox = c.bounding_box()
    # Whole page pixels: Chromium delivers mouse events at integer client coordinates.
    start = (round(cbox["x"]) + 150, round(cbox["y"]) + 120)
    end = (round(cbox["x"]) + 330, round(cbox["y"]) + 300)
    drag(page, start, end)
    wait_text(page, "Unsaved changes: 1 new")
    wait_for_app(page)
    page.keyboard.press("Control+s")
    wait_text(page, re.compile("Saved revision 1"))
    wait_for_app(page)
    screenshot(page, "annotate_saved")

    state = _state(server, "a_big.jpg")
    assert state.revision == 1 and state.status.value == "done"
    (b,) = state.boxes
    x0, y0 = expected_original(server, "a_big.jpg", cbox, start)
    x1, y1 = expected_original(server, "a_big.jpg", cbox, end)
    assert b.label == "Shirts"
    for got, want in zip((b.box.x_min, b.box.y_min, b.box.x_max, b.box.y_max), (x0, y0, x1, y1), strict=True):
        assert abs(got - want) <= 2, (b.box, (x0, y0, x1, y1))
    assert b.created_by == "e2e-tester"

    page.keyboard.press("f")  # next
    header(page, "b_next.jpg")
    wait_for_app(page)
    # Draw here and leave without saving: moving away saves first, nothing is dropped.
    nb = canvas(page).bounding_box()
    drag(page, (round(nb["x"]) + 40, round(nb["y"]) + 40), (round(nb["x"]) + 140, round(nb["y"]) + 160))
    wait_text(page, "Unsaved changes: 1 new")
    wait_for_app(page)
    page.keyboard.press("d")  # previous
    header(page, "a_big.jpg")
    page.get_by_text("All changes saved").wait_for()
    wait_for_app(page)
    page.wait_for_timeout(800)  # the background and boxes paint after the component mounts
    screenshot(page, "annotate_reloaded")
    # Drawn again: the box layer has the Shirts colour on the box's left edge, and the table lists it.
    c2 = canvas(page).bounding_box()
    edge_x, mid_y = start[0] - c2["x"], (start[1] + end[1]) / 2 - c2["y"]
    colours = [pixel(page, edge_x + dx, mid_y) for dx in (-1, 0, 1)]
    assert any(all(abs(a - e) <= 40 for a, e in zip(col, SHIRTS_RGB, strict=True)) for col in colours), colours
    inside = pixel(page, edge_x + 40, mid_y)
    assert not all(abs(a - e) <= 40 for a, e in zip(inside, SHIRTS_RGB, strict=True))
    autosaved = _state(server, "b_next.jpg")
    assert autosaved.revision == 1 and [b.label for b in autosaved.boxes] == ["Shirts"]

    # A plain click leaves a speck of a box: the page flags it, and "Discard and reload" drops it.
    page.mouse.click(start[0] + 250, start[1] + 20)
    wait_text(page, re.compile("a stray click"))
    wait_for_app(page)
    page.get_by_role("button", name="Discard and reload").click()
    wait_text(page, "Unsaved changes discarded")
    page.get_by_text("All changes saved").wait_for()
    assert len(_state(server, "a_big.jpg").boxes) == 1


def test_move_relabel_and_delete_a_box(page, server: AppServer) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 1400, "height": 1300})
    open_annotate(page, server, "c_move.jpg")
    (before,) = _state(server, "c_move.jpg").boxes
    wait_for_app(page)  # a rerun still drawing would load the canvas again, out of edit mode
    page.locator(".dc-root").hover()  # shows the toolbar; may scroll the page, so measure after
    edit = page.get_by_role("button", name="Edit")
    edit.click()
    # Under load the click can land before the toolbar is live (CI once drew a new box instead).
    page.wait_for_function("el => el.getAttribute('aria-pressed') === 'true'", arg=edit.element_handle())
    cbox = canvas(page).bounding_box()
    # The box centre in page coordinates (original 350,300 on a 900x700 photo).
    state = _state(server, "c_move.jpg")
    with ImageStore(server.data_dir).open(state.display_path) as im:
        dw, dh = im.size
    s = min(cbox["width"] / dw, cbox["height"] / dh)
    ox, oy = (cbox["width"] - dw * s) / 2, (cbox["height"] - dh * s) / 2
    cx = cbox["x"] + ox + 350 * dw / state.width * s
    cy = cbox["y"] + oy + 300 * dh / state.height * s
    drag(page, (cx, cy), (cx + 60, cy + 40))
    wait_text(page, "Unsaved changes: 0 new, 1 changed, 0 deleted")
    wait_for_app(page)
    page.get_by_role("button", name="Save").click()
    wait_text(page, re.compile("Saved revision 2"))
    wait_for_app(page)

    (moved,) = _state(server, "c_move.jpg").boxes
    assert moved.id == before.id and moved.updated_by == "e2e-tester"
    dx_orig, dy_orig = 60 / s * state.width / dw, 40 / s * state.height / dh
    assert abs(moved.box.x_min - (before.box.x_min + dx_orig)) <= 2
    assert abs(moved.box.y_min - (before.box.y_min + dy_orig)) <= 2
    assert abs(moved.box.width - before.box.width) <= 2 and abs(moved.box.height - before.box.height) <= 2

    # Relabel on the canvas: select the box, click it again, type the label's number.
    page.get_by_text("All changes saved").wait_for()
    wait_for_app(page)
    cx, cy = select_box(page, server, "c_move.jpg")
    page.mouse.click(cx, cy)  # a click on the selected box opens its label for typing
    page.locator(".dc-textarea-host textarea").wait_for(state="attached")
    page.keyboard.type("4")
    page.keyboard.press("Escape")
    cb = canvas(page).bounding_box()
    page.mouse.click(cb["x"] + 5, cb["y"] + 5)  # click off the box: the canvas sends its drawing
    wait_text(page, "Unsaved changes: 0 new, 1 changed, 0 deleted")
    wait_for_app(page)
    page.get_by_role("button", name="Save").click()
    wait_text(page, re.compile("Saved revision 3"))
    wait_for_app(page)
    (relabelled,) = _state(server, "c_move.jpg").boxes
    assert relabelled.id == before.id and relabelled.label == "Shoes" and relabelled.box == moved.box

    page.get_by_text("All changes saved").wait_for()
    wait_for_app(page)
    select_box(page, server, "c_move.jpg")
    page.get_by_role("button", name="Delete selected").click()
    wait_text(page, "Unsaved changes: 0 new, 0 changed, 1 deleted")
    wait_for_app(page)
    page.get_by_role("button", name="Save").click()
    wait_text(page, re.compile("Saved revision 4"))
    screenshot(page, "annotate_deleted")
    after = _state(server, "c_move.jpg")
    assert after.boxes == () and after.status.value == "in_progress"
    engine = _engine(server)
    with session_scope(engine) as session:
        actions = [
            (c.action, c.who)
            for c in session.scalars(select(BoxChange).where(BoxChange.box_id == before.id).order_by(BoxChange.id))
        ]
    engine.dispose()
    me = "e2e-tester"
    assert actions == [("created", "seed"), ("edited", me), ("edited", me), ("deleted", me)]


def test_two_tabs_second_save_is_refused_with_a_message(browser, server: AppServer) -> None:
    tabs = [browser.new_context(viewport={"width": 1400, "height": 1300}).new_page() for _ in range(2)]
    try:
        for tab in tabs:
            open_annotate(tab, server, "d_conflict.jpg")
        first, second = tabs
        for tab, offset in ((first, 0), (second, 200)):
            cbox = canvas(tab).bounding_box()
            drag(tab, (cbox["x"] + 60 + offset, cbox["y"] + 60), (cbox["x"] + 160 + offset, cbox["y"] + 180))
            wait_text(tab, "Unsaved changes: 1 new")
            wait_for_app(tab)
        first.get_by_role("button", name="Save").click()
        wait_text(first, re.compile("Saved revision 1"))

        second.get_by_role("button", name="Save").click()
        wait_text(second, re.compile("Not saved: 'd_conflict.jpg' was saved by e2e-tester"))
        wait_for_app(second)
        second.get_by_text("All changes saved").wait_for()  # reloaded: shows the first tab's box
        screenshot(second, "annotate_conflict")
        state = _state(server, "d_conflict.jpg")
        assert state.revision == 1 and len(state.boxes) == 1
        assert state.boxes[0].box.x_min < 200  # the first tab's box, not the second's
        second.get_by_text("revision 1").first.wait_for()
    finally:
        for tab in tabs:
            tab.context.close()
