"""The Catalogue page in headless Chromium: import a small catalogue, run the check, decide by keyboard.

The project holds five photos and a tags model version whose predictions of them are inserted
directly (no training in a browser test; the check reads stored predictions only). The browser
uploads the catalogue CSV, runs the check as a real background job, then decides one flagged
listing of each kind with its key; the test finds the decisions and the new tag ground truth in
the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from core.database import open_database
from core.project.ingest import ingest_sources, sources_from_paths
from core.project.projects import create_project
from core.settings import Settings
from db.engine import session_scope
from db.models import CatalogueDecision, CatalogueItem
from db.models import Image as ImageRow
from tests.core.catalogue.factory import photo_folder, predict, tags_version
from tests.e2e.conftest import AppServer, screenshot, start_server, stop_server, wait_for_app

pytestmark = pytest.mark.e2e

CATALOGUE = (
    "sku,image,title,description\n"
    "SKU-D,d.jpg,Grey hoodie,Soft fleece hoodie\n"
    "SKU-P,p.jpg,Slim chinos,Stretch cotton\n"
    "SKU-M,m.jpg,Linen shirt,Button-down collar\n"
    "SKU-F,f.jpg,Classic tee,Crew neck\n"
    "SKU-OK,ok.jpg,Red dress,Midi length\n"
)
# photo -> (the model's top value, its probability, the claimed value's probability)
PREDICTIONS = {
    "d.jpg": ("Shoes", 0.94, ("Hoodie", 0.01)),
    "p.jpg": ("Dress", 0.9, ("Pants", 0.03)),
    "m.jpg": ("T-Shirt", 0.8, ("Shirt", 0.05)),
    "f.jpg": ("Shorts", 0.7, ("T-Shirt", 0.1)),
    "ok.jpg": ("Dress", 0.95, ("Dress", 0.95)),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppServer, object]]:
    root = tmp_path_factory.mktemp("catalogue")
    data_dir = root / "data"
    data_dir.mkdir()
    settings = Settings.resolve(f"sqlite:///{data_dir / 'tagrack.db'}", data_dir)
    engine = open_database(settings)
    with session_scope(engine) as session:
        pid = create_project(session, "E2E catalogue").id
    ingest_sources(engine, data_dir, pid, sources_from_paths([photo_folder(root / "photos", list(PREDICTIONS))]))
    version = tags_version(engine, pid)
    with session_scope(engine) as session:
        ids = dict(session.execute(select(ImageRow.original_name, ImageRow.id)).all())
    for name, (top, p, (claimed, p_claimed)) in PREDICTIONS.items():
        predict(engine, version, ids[name], "category", {top: p, claimed: p_claimed} if top != claimed else {top: p})
    engine.dispose()
    (root / "catalogue.csv").write_text(CATALOGUE)
    srv = start_server(data_dir)
    yield srv, root / "catalogue.csv"
    stop_server(srv)


def test_import_check_and_decide_one_of_each_kind_by_keyboard(page, server) -> None:  # type: ignore[no-untyped-def]
    srv, csv_path = server
    page.goto(f"{srv.url}/catalogue")
    wait_for_app(page)
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Catalogue CSV")
    uploader.locator('input[type="file"]').set_input_files(str(csv_path))
    wait_for_app(page)
    page.get_by_role("button", name="Import catalogue").click()
    page.get_by_text("5 listings added, 0 updated, 0 unchanged, 0 refused.").wait_for()
    wait_for_app(page)  # the panels below the report are redrawn in the same run: let them settle
    run = page.get_by_role("button", name="Run the check")
    if not run.is_visible():
        page.get_by_text("Check against a tags model").click()  # open its panel
    run.click()
    try:
        page.get_by_text(re.compile(r"Checked 5 listings: 4 flagged")).wait_for(timeout=90_000)
    except Exception:
        screenshot(page, "catalogue_check_failed")
        raise
    page.get_by_text(re.compile(r"4 to review · mismatch score 0\.99")).wait_for()
    page.get_by_text("title says Hoodie · photo looks like Shoes (0.94)").wait_for()
    wait_for_app(page)
    for name in ("Description wrong", "Photo wrong", "Model wrong", "Fine", "Skip"):
        button = page.get_by_role("button", name=re.compile(f"^{name}"))
        box = button.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900, f"{name} must be visible without scrolling"
        # the whole label is shown, not cut with an ellipsis
        assert button.evaluate("b => [...b.querySelectorAll('p')].every(p => p.scrollWidth <= p.clientWidth)")
    screenshot(page, "catalogue_first_listing")

    for key, left in (("d", 3), ("p", 2), ("m", 1)):
        page.locator("h1").first.click()  # keys go to the page, not to a widget
        page.keyboard.press(key)
        page.get_by_text(re.compile(rf"{left} to review · mismatch score")).wait_for(timeout=30_000)
        wait_for_app(page)
    page.get_by_text("stored as the photos' tags: category = Shirt", exact=False).wait_for()
    page.locator("h1").first.click()
    page.keyboard.press("f")
    page.get_by_text("No flagged listing to review").wait_for(timeout=30_000)
    page.get_by_text(
        re.compile(r"0 flagged to review · 1 description wrong · 1 photo wrong · 1 model wrong · 1 fine")
    ).wait_for()
    screenshot(page, "catalogue_all_decided")

    engine = open_database(Settings.resolve(srv.db_url, srv.data_dir))
    try:
        with session_scope(engine) as session:
            decided = session.execute(
                select(CatalogueItem.sku, CatalogueDecision.decision, CatalogueDecision.who)
                .join(CatalogueItem, CatalogueItem.id == CatalogueDecision.item_id)
                .order_by(CatalogueDecision.id)
            ).all()
            truth = session.scalar(select(ImageRow).where(ImageRow.original_name == "m.jpg")).attributes
        assert [tuple(r) for r in decided] == [
            ("SKU-D", "description_wrong", "e2e-tester"),
            ("SKU-P", "photo_wrong", "e2e-tester"),
            ("SKU-M", "model_wrong", "e2e-tester"),
            ("SKU-F", "fine", "e2e-tester"),
        ]
        assert truth == {"category": "Shirt"}
    finally:
        engine.dispose()
