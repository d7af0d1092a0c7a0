"""The catalogue check over hand-made TagPrediction rows in a real database, the decisions, the CLI."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from core.catalogue.check import CatalogueCheckError, choose_threshold, run_check, stored_results
from core.catalogue.decisions import decide, decision_counts, export_csv, queue
from core.catalogue.importer import import_catalogue
from core.settings import Settings
from db.engine import session_scope
from db.models import CatalogueItem, ModelVersion, Project, Split
from db.models import Image as ImageRow
from tests.core.catalogue.factory import photo_folder, predict, tags_version

ROOT = Path(__file__).resolve().parents[3]

CATALOGUE = (
    "sku,image,title,description\n"
    "S1,hood.jpg,Grey hoodie,Soft fleece\n"
    "S2,tee.jpg,Classic tee,Cotton\n"
    "S3,ls1.jpg;ls2.jpg,Long sleeve top,Two photos\n"
    "S4,none.jpg,Slim chinos,No prediction at all\n"
    "S5,set.jpg,Shirt and shorts set,Two garments\n"
)


def _setup(engine: Engine, settings: Settings, project_id: int, tmp_path: Path) -> tuple[int, dict[str, int]]:
    photos = photo_folder(tmp_path / "p", ["hood.jpg", "tee.jpg", "ls1.jpg", "ls2.jpg", "none.jpg", "set.jpg"])
    import_catalogue(engine, settings.data_dir, project_id, CATALOGUE.encode(), photos)
    with session_scope(engine) as session:
        ids = dict(session.execute(select(ImageRow.original_name, ImageRow.id)).all())
    version = tags_version(engine, project_id)
    predict(engine, version, ids["hood.jpg"], "category", {"Shoes": 0.94, "Hoodie": 0.02})
    predict(engine, version, ids["tee.jpg"], "category", {"T-Shirt": 0.9})
    predict(engine, version, ids["ls1.jpg"], "category", {"Longsleeve": 0.8, "T-Shirt": 0.1})
    predict(engine, version, ids["ls1.jpg"], "sleeve_length", {"full": 0.7, "half": 0.3})
    predict(engine, version, ids["set.jpg"], "category", {"Shirt": 0.6, "Shorts": 0.3})
    return version, ids


@pytest.mark.both_databases
def test_check_scores_explains_and_names_missing_predictions(
    engine: Engine, settings: Settings, project_id: int, tmp_path: Path
) -> None:
    version, _ = _setup(engine, settings, project_id, tmp_path)
    summary = run_check(engine, project_id, version)
    assert summary["threshold"]["source"] == "fallback" and summary["threshold"]["threshold"] == 0.5
    assert (summary["checked"], summary["partly_checked"], summary["not_checked"]) == (2, 1, 1)
    assert summary["nothing_to_compare"] == 1  # S5 names two garments
    with session_scope(engine) as session:
        results = {r["sku"]: r for r in stored_results(session, project_id, version)}
    hoodie = results["S1"]
    assert hoodie["mismatch_score"] == pytest.approx(0.98)
    assert "family" not in hoodie["claims"][0]  # look-alikes weigh fully by default
    assert hoodie["flagged"] is True
    assert hoodie["reasons"] == ["title says Hoodie · photo looks like Shoes (0.94)"]
    assert hoodie["claims"][0]["phrase"] == "hoodie" and hoodie["claims"][0]["values"] == ["Hoodie"]
    assert hoodie["predictions"][0]["tags"]["category"]["top"][0] == ["Shoes", 0.94]
    assert results["S2"]["mismatch_score"] == pytest.approx(0.1)
    assert results["S2"]["flagged"] is False
    two = results["S3"]
    assert two["status"] == "partly checked" and two["missing_predictions"] == ["ls2.jpg"]
    assert any("no prediction from this model version for ls2.jpg" in r for r in two["reasons"])
    assert results["S4"]["status"] == "not checked" and results["S4"]["mismatch_score"] is None
    assert results["S4"]["flagged"] is False and results["S4"]["missing_predictions"] == ["none.jpg"]
    assert results["S5"]["flagged"] is True and "names 2 garments" in results["S5"]["reasons"][0]
    # the page's queue: highest score first, ambiguous (unscored) last
    with session_scope(engine) as session:
        assert [q["sku"] for q in queue(session, project_id, version)] == ["S1", "S5"]
        assert [q["sku"] for q in queue(session, project_id, version, tag="category")] == ["S1"]


@pytest.mark.both_databases
def test_decisions_model_wrong_makes_the_claim_ground_truth(
    engine: Engine, settings: Settings, project_id: int, tmp_path: Path
) -> None:
    version, ids = _setup(engine, settings, project_id, tmp_path)
    run_check(engine, project_id, version)
    with session_scope(engine) as session:
        items = dict(session.execute(select(CatalogueItem.sku, CatalogueItem.id)).all())
        decide(session, items["S1"], "model_wrong", version, who="ana")
        decide(session, items["S5"], "description_wrong", version, who="ana")
    with session_scope(engine) as session:
        assert session.get(ImageRow, ids["hood.jpg"]).attributes["category"] == "Hoodie"
        project = session.get(Project, project_id)
        assert "Hoodie" in project.attribute_schema["category"]
        assert decision_counts(session, project_id) == {
            "description_wrong": 1,
            "photo_wrong": 0,
            "model_wrong": 1,
            "fine": 0,
        }
        assert queue(session, project_id, version) == []
        rows = list(csv.DictReader(io.StringIO(export_csv(session, project_id, version))))
    assert [(r["sku"], r["decision"], r["who"]) for r in rows] == [
        ("S1", "model_wrong", "ana"),
        ("S5", "description_wrong", "ana"),
    ]
    assert "photo looks like Shoes" in rows[0]["reasons"]


def _validation_hoodies(engine: Engine, settings: Settings, project_id: int, tmp_path: Path) -> int:
    """Twelve validation listings titled "Grey hoodie": six photos really are shoes (the listing is wrong)."""
    names = [f"v{i}.jpg" for i in range(12)]
    photos = photo_folder(tmp_path / "v", names)
    rows = "".join(f"V{i},v{i}.jpg,Grey hoodie\n" for i in range(12))
    import_catalogue(engine, settings.data_dir, project_id, ("sku,image,title\n" + rows).encode(), photos)
    version = tags_version(engine, project_id)
    with session_scope(engine) as session:
        for i, image in enumerate(session.scalars(select(ImageRow).order_by(ImageRow.id))):
            image.split = Split.VAL
            image.attributes = {"category": "Shoes" if i < 6 else "Hoodie"}
            p_hoodie = [0.05, 0.1, 0.15, 0.2, 0.3, 0.7, 0.4, 0.8, 0.85, 0.9, 0.95, 0.97][i]
            predict(engine, version, image.id, "category", {"Hoodie": p_hoodie, "Shoes": 1 - p_hoodie})
    return version


def test_threshold_is_chosen_on_validation_listings_and_stored(
    engine: Engine, settings: Settings, project_id: int, tmp_path: Path
) -> None:
    version = _validation_hoodies(engine, settings, project_id, tmp_path)
    summary = run_check(engine, project_id, version)
    choice = summary["threshold"]
    # scores 0.95 .. 0.7 are all mismatches, 0.6 (a hoodie) then 0.3 (shoes): lowest cut at precision >= 0.8
    assert choice["source"] == "validation", choice
    assert choice["threshold"] == pytest.approx(0.3)
    assert choice["precision"] == pytest.approx(6 / 7, abs=1e-3) and choice["recall"] == 1.0
    again = run_check(engine, project_id, version)
    assert again["threshold"]["source"] == "validation"  # the stored one, not chosen again
    assert run_check(engine, project_id, version, threshold=0.9)["threshold"] == {"threshold": 0.9, "source": "given"}


@pytest.mark.both_databases
def test_look_alikes_half_weighs_a_disagreement_inside_a_family_half(
    engine: Engine, settings: Settings, project_id: int, tmp_path: Path
) -> None:
    """With the option, a shirt-looking photo titled "long sleeve top" is a weaker contradiction than "sneakers"."""
    from core.catalogue.settings import save_vocabulary
    from core.catalogue.vocabulary import Vocabulary

    photos = photo_folder(tmp_path / "f", ["a.jpg", "b.jpg"])
    rows = "F1,a.jpg,Long sleeve top\nF2,b.jpg,White sneakers\n"
    import_catalogue(engine, settings.data_dir, project_id, ("sku,image,title\n" + rows).encode(), photos)
    with session_scope(engine) as session:
        ids = dict(session.execute(select(ImageRow.original_name, ImageRow.id)).all())
    version = tags_version(engine, project_id)
    for name in ("a.jpg", "b.jpg"):  # both photos look like a shirt
        predict(engine, version, ids[name], "category", {"Shirt": 0.9, "Longsleeve": 0.04, "Shoes": 0.02})
        predict(engine, version, ids[name], "sleeve_length", {"full": 0.9})

    def check(**options: str) -> dict[str, dict]:
        summary = run_check(engine, project_id, version, threshold=0.8, **options)
        assert summary["look_alikes"] == options.get("look_alikes", "full")
        with session_scope(engine) as session:
            return {r["sku"]: r for r in stored_results(session, project_id, version)}

    default = check()  # every disagreement weighs fully: both flagged
    assert default["F1"]["mismatch_score"] == pytest.approx(0.96) and default["F1"]["flagged"] is True
    assert default["F2"]["mismatch_score"] == pytest.approx(0.98) and default["F2"]["flagged"] is True
    results = check(look_alikes="half")
    same, other = results["F1"], results["F2"]
    assert same["claims"][0]["family"] == ["tops"]
    # F1: Longsleeve 0.04; its family (tops) adds Shirt 0.9, and T-Shirt and Hoodie at 0.04 / 5 each
    assert same["mismatch_score"] == pytest.approx(1 - (0.04 + 0.956) / 2, abs=1e-4)
    assert same["flagged"] is False and same["reasons"] == [
        'title says "Long sleeve top" (Longsleeve) · photo looks like Shirt (0.90)'
    ]
    # F2: Shoes 0.02, and footwear holds nothing else
    assert other["mismatch_score"] == pytest.approx(0.98) and other["flagged"] is True
    # a vocabulary without families: the option has nothing to weigh
    plain = Vocabulary.from_csv("tag,value,phrase\ncategory,Longsleeve,long sleeve\ncategory,Shoes,sneakers\n")
    with session_scope(engine) as session:
        save_vocabulary(session, project_id, plain)
    results = check(look_alikes="half")
    assert results["F1"]["mismatch_score"] == pytest.approx(0.96) and results["F1"]["flagged"] is True
    assert "family" not in results["F1"]["claims"][0]
    with pytest.raises(CatalogueCheckError, match="look_alikes must be one of full, half"):
        run_check(engine, project_id, version, look_alikes="quarter")


def test_a_stored_threshold_is_chosen_again_under_another_vocabulary_or_scoring(
    engine: Engine, settings: Settings, project_id: int, tmp_path: Path
) -> None:
    from core.catalogue.settings import save_vocabulary, stored_threshold
    from core.catalogue.vocabulary import Vocabulary

    version = _validation_hoodies(engine, settings, project_id, tmp_path)
    first = run_check(engine, project_id, version)["threshold"]
    assert first["source"] == "validation" and first["scoring"].startswith("claim-1-full:")
    # a stored choice without the scoring it was made under (an older Tagrack's) is not trusted
    with session_scope(engine) as session:
        from core.catalogue.settings import store_threshold

        store_threshold(session, project_id, version, {"threshold": 0.99, "source": "validation"})
    assert run_check(engine, project_id, version)["threshold"]["threshold"] == first["threshold"]
    with session_scope(engine) as session:
        save_vocabulary(session, project_id, Vocabulary.from_csv("tag,value,phrase\ncategory,Hoodie,hoodie\n"))
    second = run_check(engine, project_id, version)["threshold"]
    assert second["scoring"] != first["scoring"]
    with session_scope(engine) as session:
        assert stored_threshold(session, project_id, version)["scoring"] == second["scoring"]
    third = run_check(engine, project_id, version, look_alikes="half")["threshold"]
    assert third["scoring"].startswith("claim-1-half:") and third["source"] == "validation"


def test_choose_threshold() -> None:
    # at 0.8: 2 of 2 right; at 0.7: 2 of 3; at 0.2: 3 of 4 (0.75): 0.8 is the lowest with precision >= 0.8
    assert choose_threshold([0.9, 0.8, 0.7, 0.2], [True, True, False, True]) == {
        "threshold": 0.8,
        "precision": 1.0,
        "recall": 0.6667,
    }
    assert choose_threshold([0.9], [False]) is None


def test_a_detector_version_is_refused(engine: Engine, settings: Settings, project_id: int) -> None:
    with session_scope(engine) as session:
        mv = ModelVersion(project_id=project_id, name="det", path="x")
        session.add(mv)
        session.flush()
        mv_id = mv.id
    with pytest.raises(CatalogueCheckError, match="detector model; the catalogue check needs a tags model"):
        run_check(engine, project_id, mv_id)


def test_cli_import_and_check_print_json_per_sku(
    engine: Engine, settings: Settings, project_id: int, tmp_path: Path
) -> None:
    version, _ = _setup(engine, settings, project_id, tmp_path)
    base = ["--db", settings.db_url, "--data-dir", str(settings.data_dir), "--project", "Test project"]
    (tmp_path / "cat.csv").write_text(CATALOGUE + "S9,absent.jpg,Tee,\n")
    imp = subprocess.run(
        [sys.executable, "-m", "core", "catalogue", "import", str(tmp_path / "cat.csv"), *base],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imp.returncode == 0, imp.stderr
    assert json.loads(imp.stdout)["unchanged"] == 5 and "row 7: S9: image 'absent.jpg'" in imp.stderr
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "catalogue",
            "check",
            "--model-version",
            str(version),
            "--threshold",
            "0.9",
            "--look-alikes",
            "half",
            *base,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out[0]["sku"] == "S1" and out[0]["flagged"] is True
    assert set(out[0]) >= {"sku", "mismatch_score", "flagged", "claims", "predictions", "reasons"}
    assert out[0]["claims"][0]["family"] == ["tops"]  # the option reached the job
    assert "2 listings have photos without a prediction" in run.stderr


def test_model_wrong_leaves_a_broad_word_to_people(
    engine: Engine, settings: Settings, project_id: int, tmp_path: Path
) -> None:
    photos = photo_folder(tmp_path / "j", ["j.jpg"])
    import_catalogue(engine, settings.data_dir, project_id, b"sku,image,title\nJ1,j.jpg,Lightweight jacket\n", photos)
    heads = {"category": ["Outwear", "Blazer", "Shoes"]}
    version = tags_version(engine, project_id, heads)
    with session_scope(engine) as session:
        image_id = session.scalar(select(ImageRow.id))
    predict(engine, version, image_id, "category", {"Shoes": 0.9, "Outwear": 0.06, "Blazer": 0.04})
    run_check(engine, project_id, version)
    with session_scope(engine) as session:
        result = stored_results(session, project_id, version)[0]
        # "jacket" accepts Outwear or Blazer: their probabilities add up
        assert result["claims"][0]["values"] == ["Outwear", "Blazer"]
        assert result["mismatch_score"] == pytest.approx(0.9)
        item_id = session.scalar(select(CatalogueItem.id))
        row = decide(session, item_id, "model_wrong", version, who="ana")
        assert row.details["ground_truth"] == {}
        assert row.details["skipped"] == ['"jacket" means Outwear or Blazer: set category on Annotate']
    with session_scope(engine) as session:
        assert session.get(ImageRow, image_id).attributes == {}


def test_a_detectors_main_garment_is_evidence_beside_the_score(
    engine: Engine, settings: Settings, project_id: int, tmp_path: Path
) -> None:
    from db.models import Label, Prediction

    version, ids = _setup(engine, settings, project_id, tmp_path)
    with session_scope(engine) as session:
        labels = dict(session.execute(select(Label.name, Label.id).where(Label.project_id == project_id)).all())
        detector = ModelVersion(project_id=project_id, name="detector", path="x")
        session.add(detector)
        session.flush()
        boxes = [
            ("hood.jpg", "Shoes", 0.9, 200),  # the largest box: the main garment
            ("hood.jpg", "Tshirts", 0.8, 50),
            ("hood.jpg", "Jeans", 0.3, 400),  # larger but under the score floor
            ("tee.jpg", "Tshirts", 0.85, 100),
        ]
        for name, label, score, size in boxes:
            session.add(
                Prediction(
                    model_version_id=detector.id,
                    image_id=ids[name],
                    label_id=labels[label],
                    x_min=0,
                    y_min=0,
                    x_max=size,
                    y_max=size,
                    score=score,
                )
            )
        detector_id = detector.id
    run_check(engine, project_id, version, detector_version_id=detector_id)
    with session_scope(engine) as session:
        results = {r["sku"]: r for r in stored_results(session, project_id, version)}
    assert results["S1"]["detector"] == [{"photo": 0, "label": "Shoes", "score": 0.9, "agrees": False}]
    assert results["S1"]["reasons"][-1] == "detector finds Shoes on the photo (0.90)"
    assert results["S1"]["mismatch_score"] == pytest.approx(0.98)  # the score is the tags model's alone
    assert results["S2"]["detector"] == [{"photo": 0, "label": "Tshirts", "score": 0.85, "agrees": True}]
    with pytest.raises(CatalogueCheckError, match="is not a detector of this project"):
        run_check(engine, project_id, version, detector_version_id=version)
