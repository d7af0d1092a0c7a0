"""TFRecord export throughput against the classic pipeline and a plain copy, side by side.

Builds 2,000 distinct real-size JPEGs with boxes at run time in a temporary folder (the
1,004 street photos of /work/shared/data/ccp-detection plus mirrored copies with mirrored
boxes), imports them as a VOC dataset into a fresh Tagrack project, then times, in
alternating rounds on the same warm files:

- ours: ``core.dataset.exporter.export_dataset(..., "tfrecord", ...)``;
- (a) the classic pipeline: write VOC XML from the database, convert the XMLs to one CSV
  (pandas, as ``xml_to_csv.py`` does), then a writer that for every CSV row reopens the
  image, re-reads its bytes and opens it with Pillow for its size, and writes one
  ``tf.train.Example`` per image (as ``generate_tfrecord.py`` does);
- (b) a plain copy of the same image bytes into as many output files: the physical limit.

Reports images/s and MB/s (of image bytes) per method and the ratios; targets are ours >=
5x (a) and >= 50% of (b). Run: ``python benchmarks/export.py [--images 2000] [--rounds 3]``.
Skips with a message when the shared data is absent. Nothing is written to the repository.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = Path(os.environ.get("TAGRACK_SHARED_DATA", ROOT.parent / "shared" / "data")) / "ccp-detection"
if not (SHARED / "JPEGImages").is_dir():
    SHARED = Path("/work/shared/data/ccp-detection")


def build_dataset(dst: Path, count: int) -> None:
    """A VOC folder of ``count`` distinct JPEGs: originals, then mirrored copies with mirrored boxes."""
    from PIL import Image, ImageOps

    (dst / "JPEGImages").mkdir(parents=True)
    (dst / "Annotations").mkdir()
    xmls = sorted((SHARED / "Annotations").glob("*.xml"))
    made = 0
    round_ = 0
    while made < count:
        for xml in xmls:
            if made >= count:
                break
            tree = ET.parse(xml)
            root = tree.getroot()
            name = root.findtext("filename")
            src = SHARED / "JPEGImages" / name
            if not src.is_file():
                continue
            stem = f"{Path(name).stem}_{round_}"
            if round_ == 0:
                shutil.copyfile(src, dst / "JPEGImages" / f"{stem}.jpg")
            else:
                with Image.open(src) as im:
                    w = im.width
                    flipped = ImageOps.mirror(im.convert("RGB"))
                    flipped.save(dst / "JPEGImages" / f"{stem}.jpg", quality=90 - round_)
                for bb in root.iter("bndbox"):
                    x0, x1 = int(bb.findtext("xmin")), int(bb.findtext("xmax"))
                    bb.find("xmin").text, bb.find("xmax").text = str(w - x1 + 1), str(w - x0 + 1)
            root.find("filename").text = f"{stem}.jpg"
            tree.write(dst / "Annotations" / f"{stem}.xml")
            made += 1
        round_ += 1


def classic_pipeline(engine, settings, project_id: int, out: Path) -> None:
    """(a): DB -> VOC XML files -> CSV -> per-row reopening TFRecord writer."""
    import pandas as pd
    import tensorflow as tf
    from PIL import Image as PILImage
    from sqlalchemy import select

    from core.formats.voc import VocObject, format_voc_xml
    from db.engine import session_scope
    from db.models import Image, ImageStatus, Label

    xml_dir, img_dir = out / "Annotations", settings.data_dir
    xml_dir.mkdir(parents=True)
    with session_scope(engine) as session:
        names = {lab.id: lab.name for lab in session.scalars(select(Label).where(Label.project_id == project_id))}
        order = {n: i for i, n in enumerate(sorted(names.values()), start=1)}
        for img in session.scalars(
            select(Image).where(Image.project_id == project_id, Image.status.in_([ImageStatus.DONE]))
        ):
            objs = [VocObject(b.box if hasattr(b, "box") else _box(b), names[b.label_id]) for b in img.boxes]
            xml = format_voc_xml(img.stored_path, img.width, img.height, objs)
            (xml_dir / f"{img.id}.xml").write_text(xml)
    # xml_to_csv.py
    rows = []
    for xml_file in sorted(xml_dir.glob("*.xml")):
        root = ET.parse(xml_file).getroot()
        for member in root.findall("object"):
            bb = member.find("bndbox")
            rows.append(
                (
                    root.find("filename").text,
                    int(root.find("size/width").text),
                    int(root.find("size/height").text),
                    member.find("name").text,
                    int(bb.find("xmin").text),
                    int(bb.find("ymin").text),
                    int(bb.find("xmax").text),
                    int(bb.find("ymax").text),
                )
            )
    df = pd.DataFrame(rows, columns=["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax"])
    df.to_csv(out / "labels.csv", index=False)
    # generate_tfrecord.py, the naive way: every row reopens and re-reads its image.
    df = pd.read_csv(out / "labels.csv")
    writer = tf.io.TFRecordWriter(str(out / "train.record"))

    def flush(filename, encoded, width, height, objs):
        feature = {
            "image/height": tf.train.Feature(int64_list=tf.train.Int64List(value=[height])),
            "image/width": tf.train.Feature(int64_list=tf.train.Int64List(value=[width])),
            "image/filename": tf.train.Feature(bytes_list=tf.train.BytesList(value=[filename.encode()])),
            "image/source_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[filename.encode()])),
            "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
            "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"jpeg"])),
            "image/object/bbox/xmin": tf.train.Feature(
                float_list=tf.train.FloatList(value=[o[1] / width for o in objs])
            ),
            "image/object/bbox/xmax": tf.train.Feature(
                float_list=tf.train.FloatList(value=[o[3] / width for o in objs])
            ),
            "image/object/bbox/ymin": tf.train.Feature(
                float_list=tf.train.FloatList(value=[o[2] / height for o in objs])
            ),
            "image/object/bbox/ymax": tf.train.Feature(
                float_list=tf.train.FloatList(value=[o[4] / height for o in objs])
            ),
            "image/object/class/text": tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[o[0].encode() for o in objs])
            ),
            "image/object/class/label": tf.train.Feature(
                int64_list=tf.train.Int64List(value=[order[o[0]] for o in objs])
            ),
        }
        writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())

    current, objs, enc, prev_size = None, [], b"", (0, 0)
    for row in df.itertuples(index=False):
        with tf.io.gfile.GFile(str(img_dir / row.filename), "rb") as fid:
            encoded = fid.read()
        with PILImage.open(io.BytesIO(encoded)) as im:
            size = im.size
        if current is not None and row.filename != current:
            flush(current, enc, *prev_size, objs)
            objs = []
        current, enc, prev_size = row.filename, encoded, size
        objs.append((row[3], row.xmin, row.ymin, row.xmax, row.ymax))
    if current is not None:
        flush(current, enc, *prev_size, objs)
    writer.close()


def _box(b):
    from core.boxes import Box

    return Box.from_row(b)


def plain_copy(settings, paths: list[str], out: Path, shards: int) -> None:
    """(b): the same bytes read and written into as many output files, nothing else."""
    out.mkdir(parents=True)
    files = [open(out / f"copy-{i}", "wb") for i in range(shards)]  # noqa: SIM115
    try:
        for i, rel in enumerate(paths):
            with open(settings.data_dir / rel, "rb") as fh:
                files[i % shards].write(fh.read())
    finally:
        for f in files:
            f.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not (SHARED / "JPEGImages").is_dir():
        print(f"skipped: {SHARED} is absent (the shared ccp-detection data)")
        return 0
    import tensorflow as tf  # noqa: F401 - imported before timing: every method pays it once
    from sqlalchemy import select

    from core.database import open_database
    from core.dataset.exporter import export_dataset
    from core.dataset.importer import import_annotations
    from core.project.projects import create_project
    from core.project.splits import EXPORTABLE_STATUSES
    from core.settings import Settings
    from db.engine import session_scope
    from db.models import Image

    with tempfile.TemporaryDirectory(prefix="tagrack-bench-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        build_dataset(tmp / "voc", args.images)
        t_build = time.perf_counter() - t0
        settings = Settings.resolve(db_url=f"sqlite:///{tmp / 'db.sqlite'}", data_dir=tmp / "data")
        engine = open_database(settings)
        labels = (SHARED / "labels.txt").read_text().split()
        with session_scope(engine) as session:
            pid = create_project(session, "bench", labels=labels).id
        t0 = time.perf_counter()
        report = import_annotations(engine, settings, pid, "voc", tmp / "voc")
        t_import = time.perf_counter() - t0
        with session_scope(engine) as session:
            paths = list(
                session.scalars(
                    select(Image.stored_path).where(Image.project_id == pid, Image.status.in_(EXPORTABLE_STATUSES))
                )
            )
        n = len(paths)
        mb = sum((settings.data_dir / p).stat().st_size for p in paths) / 1e6
        print(
            f"dataset: {n} JPEGs, {mb:.1f} MB, built in {t_build:.1f}s; VOC import {t_import:.1f}s "
            f"({n / t_import:.0f} img/s); import summary {report.summary()}"
        )

        times: dict[str, list[float]] = {"ours": [], "classic": [], "copy": []}
        cpu: dict[str, list[float]] = {"ours": [], "classic": [], "copy": []}
        for r in range(args.rounds):
            for name in ("copy", "ours", "classic"):
                out = tmp / f"out-{name}-{r}"
                os.sync()  # start each method with no dirty pages of the previous one
                t0, c0 = time.perf_counter(), time.process_time()
                if name == "ours":
                    export_dataset(engine, settings, pid, "tfrecord", out, num_shards=2)
                elif name == "classic":
                    classic_pipeline(engine, settings, pid, out)
                else:
                    plain_copy(settings, paths, out, 6)
                os.sync()  # the bytes are on disk, not only in the page cache
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                shutil.rmtree(out)
        med = {k: statistics.median(v) for k, v in times.items()}
        mcpu = {k: statistics.median(v) for k, v in cpu.items()}
        for k in ("ours", "classic", "copy"):
            print(
                f"{k:8s} median {med[k]:6.2f}s  {n / med[k]:7.0f} images/s  {mb / med[k]:7.1f} MB/s  "
                f"cpu {mcpu[k]:.2f}s  (wall runs: " + ", ".join(f"{t:.2f}" for t in times[k]) + ")"
            )
        print(
            f"ours vs classic: {med['classic'] / med['ours']:.1f}x faster wall, "
            f"{mcpu['classic'] / mcpu['ours']:.1f}x less CPU (target >= 5x)"
        )
        print(
            f"ours vs plain copy: {med['copy'] / med['ours'] * 100:.0f}% of copy throughput wall, "
            f"{mcpu['copy'] / mcpu['ours'] * 100:.0f}% by CPU time (target >= 50%)"
        )
        # Streaming: Python's peak allocations while exporting the whole dataset stay a few MB.
        import tracemalloc

        for fmt, archive in (("tfrecord", False), ("voc", True), ("coco", True)):
            out = tmp / f"mem-{fmt}{'.zip' if archive else ''}"
            tracemalloc.start()
            result = export_dataset(engine, settings, pid, fmt, out, archive=archive)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(
                f"memory: {fmt} {'zip' if archive else 'folder'}: {result['bytes'] / 1e6:.0f} MB written, "
                f"peak Python allocations {peak / 1e6:.1f} MB"
            )
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
