"""TFRecord export read back with TensorFlow and the OD API decoder's feature spec."""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path

import pytest
import tensorflow as tf

from core.boxes import Box
from core.dataset.exporter import export_dataset
from core.formats.label_map import parse_label_map
from core.formats.tfrecord.features import FEATURE_SPEC, box_from_normalised, box_to_normalised
from core.formats.tfrecord.parse import parse_example
from core.formats.tfrecord.wire import ExampleObject, example_head
from db.engine import session_scope
from db.models import Image, ImageStatus, Label
from tests.core.dataset_factory import make_dataset

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_normalised_round_trip() -> None:
    box = Box(10.5, 20.25, 110.0, 200.0)
    n = box_to_normalised(box, 200, 400)
    assert n == (10.5 / 200, 20.25 / 400, 110 / 200, 200 / 400)
    back = box_from_normalised(*n, 200, 400)
    for a, b in zip((back.x_min, back.y_min, back.x_max, back.y_max), (10.5, 20.25, 110.0, 200.0), strict=True):
        assert a == pytest.approx(b, abs=1e-9)
    assert box_to_normalised(Box(-5, -1, 250, 500), 200, 400) == (0.0, 0.0, 1.0, 1.0)  # clamped


def test_tfrecord_export_matches_database(engine, settings, project_id, tmp_path: Path) -> None:
    made = make_dataset(engine, settings, project_id, n=14)
    out = tmp_path / "tf"
    summary = export_dataset(engine, settings, project_id, "tfrecord", out, num_shards=2)

    # Layout: label map with ids 1..N in label order, only id and quoted name.
    with session_scope(engine) as session:
        label_names = [lab.name for lab in session.query(Label).filter_by(project_id=project_id).order_by(Label.order)]
        images = {i.id: i for i in session.query(Image).filter_by(project_id=project_id)}
        for i in images.values():
            session.expunge(i)
    text = (out / "label_map.pbtxt").read_text()
    assert parse_label_map(text) == dict(enumerate(label_names, start=1))
    assert text.startswith('item {\n  id: 1\n  name: "' + label_names[0] + '"\n}\n')
    assert set(line.split(":")[0].strip() for line in text.splitlines() if ":" in line) == {"id", "name"}
    for split in ("train", "val", "test"):
        assert sorted(p.name for p in out.glob(f"{split}.record-*")) == [
            f"{split}.record-00000-of-00002",
            f"{split}.record-00001-of-00002",
        ]

    seen: dict[int, str] = {}
    source_ids = set()
    for path in sorted(glob.glob(str(out / "*.record-*"))):
        split = Path(path).name.split(".")[0]
        for raw in tf.data.TFRecordDataset(path):
            p = tf.io.parse_single_example(raw, FEATURE_SPEC)
            image_id = int(p["image/source_id"].numpy())
            assert image_id not in source_ids
            source_ids.add(image_id)
            row = images[image_id]
            seen[image_id] = split
            assert row.split.value == split
            encoded = p["image/encoded"].numpy()
            # The stored file, byte for byte: no re-encode.
            assert encoded == (settings.data_dir / row.stored_path).read_bytes()
            assert p["image/key/sha256"].numpy().decode() == hashlib.sha256(encoded).hexdigest()
            decoded = tf.io.decode_image(encoded, channels=3)
            assert decoded.shape[0] == p["image/height"].numpy() == row.height
            assert decoded.shape[1] == p["image/width"].numpy() == row.width
            assert p["image/format"].numpy().decode() == ("png" if row.stored_path.endswith(".png") else "jpeg")
            status, boxes = made.images[image_id]
            xmin = tf.sparse.to_dense(p["image/object/bbox/xmin"]).numpy()
            ymin = tf.sparse.to_dense(p["image/object/bbox/ymin"]).numpy()
            xmax = tf.sparse.to_dense(p["image/object/bbox/xmax"]).numpy()
            ymax = tf.sparse.to_dense(p["image/object/bbox/ymax"]).numpy()
            texts = [t.decode() for t in tf.sparse.to_dense(p["image/object/class/text"]).numpy()]
            labels = tf.sparse.to_dense(p["image/object/class/label"]).numpy().tolist()
            assert len(xmin) == len(boxes)
            for k, (name, (x0, y0, x1, y1)) in enumerate(boxes):
                assert texts[k] == name
                assert labels[k] == label_names.index(name) + 1
                assert xmin[k] * row.width == pytest.approx(x0, abs=1e-3)
                assert ymin[k] * row.height == pytest.approx(y0, abs=1e-3)
                assert xmax[k] * row.width == pytest.approx(x1, abs=1e-3)
                assert ymax[k] * row.height == pytest.approx(y1, abs=1e-3)
            assert tf.sparse.to_dense(p["image/object/difficult"]).numpy().tolist() == [0] * len(boxes)
            # Extra features a standard reader ignores, read here with the proto.
            parsed = parse_example(raw.numpy())
            assert parsed["attributes"] == row.attributes
            assert len(parsed["boxes"]) == len(boxes)
            for got, (_n, b) in zip(parsed["boxes"], boxes, strict=True):
                assert (got.x_min, got.y_min, got.x_max, got.y_max) == pytest.approx(b, abs=1e-3)
            assert parsed["labels"] == labels and parsed["texts"] == texts
            assert parsed["encoded"] == encoded and parsed["filename"].startswith("img_")
            proto = tf.train.Example.FromString(raw.numpy())
            feats = proto.features.feature
            assert len(feats["image/object/truncated"].int64_list.value) == len(boxes)
            assert [v.decode() for v in feats["image/object/view"].bytes_list.value] == ["Unspecified"] * len(boxes)

    ground_truth = {i for i, (s, _b) in made.images.items() if s in (ImageStatus.DONE, ImageStatus.NO_OBJECTS)}
    assert set(seen) == ground_truth  # new and skipped images stay out; empty ones are in
    assert any(not made.images[i][1] for i in seen)
    assert summary["images"] == len(ground_truth)
    assert sum(summary["splits"].values()) == len(ground_truth)


def test_splits_stay_across_exports(engine, settings, project_id, tmp_path: Path) -> None:
    make_dataset(engine, settings, project_id, n=14)
    export_dataset(engine, settings, project_id, "tfrecord", tmp_path / "a")
    with session_scope(engine) as session:
        first = {i.id: i.split for i in session.query(Image).filter_by(project_id=project_id)}
    # Different fractions and seed the second time: already placed images keep their split.
    second = export_dataset(engine, settings, project_id, "tfrecord", tmp_path / "b", fractions=(0.2, 0.4, 0.4), seed=9)
    with session_scope(engine) as session:
        again = {i.id: i.split for i in session.query(Image).filter_by(project_id=project_id)}
    assert first == again
    assert second["new_splits"] == {"train": 0, "val": 0, "test": 0}
    assert (tmp_path / "a" / "train.record-00000-of-00001").exists()


def test_tfrecord_export_as_zip(engine, settings, project_id, tmp_path: Path) -> None:
    import zipfile

    make_dataset(engine, settings, project_id, n=6)
    (tmp_path / "exports").mkdir()
    summary = export_dataset(engine, settings, project_id, "tfrecord", tmp_path / "exports" / "out.zip", archive=True)
    with zipfile.ZipFile(summary["path"]) as zf:
        names = set(zf.namelist())
    assert {"label_map.pbtxt", "train.record-00000-of-00001", "test.record-00000-of-00001"} <= names
    assert [p.name for p in (tmp_path / "exports").iterdir()] == ["out.zip"]  # scratch folder removed


@pytest.mark.parametrize("n_objects", [0, 1, 3])
def test_fast_serialisation_equals_the_proto(n_objects: int) -> None:
    from tests.core.dataset_factory import jpeg_bytes
    from tests.core.formats.tfrecord_oracle import build_example, example_image

    data = jpeg_bytes(300, 200, 5) + b"\0" * 200  # long enough for multi-byte lengths
    objects = [
        ExampleObject(Box(1.5 * k, 2, 50 + k, 60), f"cls{k}é", k + 1, difficult=k % 2, truncated=1, view="Frontal")
        for k in range(n_objects)
    ]
    image = example_image(data, 300, 200, "dir/ä.jpg", "123", objects, {"colour": "multi", "n": 3, "skip": None})
    fast = example_head(image, len(data)) + data
    assert tf.train.Example.FromString(fast) == build_example(data, image)
    parsed = parse_example(fast)
    assert parsed["encoded"] == data and parsed["attributes"] == {"colour": "multi", "n": "3"}


def _records_for_framing() -> list[bytes]:
    from tests.core.dataset_factory import jpeg_bytes
    from tests.core.formats.tfrecord_oracle import example_image

    small = jpeg_bytes(64, 48, 1)
    big = jpeg_bytes(640, 480, 7) + bytes(range(256)) * 600  # past 2**16: multi-byte lengths in every head
    objs = [ExampleObject(Box(10, 20, 300, 400), "Shirts", 3, truncated=1)]
    return [
        example_head(example_image(small, 64, 48, "a.jpg", "1", objs), len(small)) + small,
        example_head(example_image(big, 640, 480, "b.jpg", "2", [], {"colour": "red"}), len(big)) + big,
        b"",  # an empty record is legal in the format
    ]


def test_record_writer_writes_what_tensorflow_writes(tmp_path: Path) -> None:
    """Our framing (google-crc32c + os.writev) is byte for byte TF's, and TF reads it back."""
    from core.formats.tfrecord.records import RecordWriter, fast_framing_available, open_record_writer

    assert fast_framing_available()  # google-crc32c's C extension: the path the exporter takes here
    records = _records_for_framing()
    with tf.io.TFRecordWriter(str(tmp_path / "tf.record")) as w:
        for r in records:
            w.write(r)
    with RecordWriter(tmp_path / "ours.record") as w:
        for r in records:
            w.write(r[:5], r[5:])  # a record given in parts is one record
    assert (tmp_path / "ours.record").read_bytes() == (tmp_path / "tf.record").read_bytes()
    assert [x.numpy() for x in tf.data.TFRecordDataset(str(tmp_path / "ours.record"))] == records
    assert isinstance(open_record_writer(tmp_path / "x.record"), RecordWriter)
    # The exporter's head + image parts equal the whole serialized example.
    from tests.core.dataset_factory import jpeg_bytes
    from tests.core.formats.tfrecord_oracle import example_image

    data = jpeg_bytes(64, 48, 1)
    objs = [ExampleObject(Box(10, 20, 300, 400), "Shirts", 3)]
    head = example_head(example_image(data, 64, 48, "a.jpg", "1", objs), len(data))
    assert tf.io.parse_single_example(head + data, FEATURE_SPEC)["image/encoded"].numpy() == data


@pytest.mark.parametrize("where", ["length", "length_crc", "data", "data_crc"])
def test_corrupted_record_is_rejected_by_tensorflow(tmp_path: Path, where: str) -> None:
    """A flipped byte anywhere in a record written by RecordWriter fails TF's checksum check."""
    from core.formats.tfrecord.records import RecordWriter

    records = _records_for_framing()[:2]
    path = tmp_path / "ours.record"
    with RecordWriter(path) as w:
        for r in records:
            w.write(r)
    raw = bytearray(path.read_bytes())
    first = len(records[0])
    offset = {"length": 0, "length_crc": 9, "data": 12 + first // 2, "data_crc": 12 + first + 1}[where]
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(path)))


def test_tensorflow_fallback_writer_is_equivalent(tmp_path: Path) -> None:
    """Where google-crc32c is not native, the exporter falls back to TF's writer with the same parts API."""
    from core.formats.tfrecord.records import RecordWriter, _TFWriter

    records = _records_for_framing()
    ours, theirs = RecordWriter(tmp_path / "a.record"), _TFWriter(tmp_path / "b.record")
    for r in records:
        ours.write(r[:3], r[3:])
        theirs.write(r[:3], r[3:])
    ours.close()
    theirs.close()
    assert (tmp_path / "a.record").read_bytes() == (tmp_path / "b.record").read_bytes()
