"""SQLAlchemy 2 typed models: the whole Tagrack schema.

Coordinates in :class:`BoxRow` and :class:`Prediction` are original-image pixels, the space
of :class:`core.boxes.Box`. Every change to this file comes with an Alembic migration in
``db/migrations/versions``; ``tests/db/test_migrations.py`` checks they agree.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names so that Alembic batch migrations on SQLite can find them.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Current time in UTC, timezone-naive (SQLite stores no zone; we always mean UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base with the shared metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class ImageStatus(enum.StrEnum):
    """Where an image stands in annotation."""

    NEW = "new"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    NO_OBJECTS = "no_objects"
    SKIPPED = "skipped"


class Split(enum.StrEnum):
    """Dataset split an image belongs to."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class BoxSource(enum.StrEnum):
    """Who made a box."""

    HUMAN = "human"
    MODEL = "model"


class JobStatus(enum.StrEnum):
    """Life cycle of a background job (queued -> running -> one of the final three)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True for succeeded, failed and cancelled."""
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as the enum's value in a VARCHAR (native_enum=False) so that PostgreSQL and
    # SQLite behave alike and adding a member needs no ALTER TYPE.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=24,
        values_callable=lambda e: [m.value for m in e],
    )


class Project(Base):
    """A labelling project: its label set and image-level attribute schema."""

    __tablename__ = "project"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # {"sleeve_length": ["half", "full"], ...}: attribute name -> allowed values, first
    # value is the default.
    attribute_schema: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    labels: Mapped[list[Label]] = relationship(
        back_populates="project", order_by="Label.order", cascade="all, delete-orphan"
    )


class Label(Base):
    """A box class of a project."""

    __tablename__ = "label"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    colour: Mapped[str] = mapped_column(String(9), default="#e6194b")
    order: Mapped[int] = mapped_column(Integer, default=0)

    project: Mapped[Project] = relationship(back_populates="labels")


class Image(Base):
    """An image of a project. The file lives in the blob store under its SHA-256."""

    __tablename__ = "image"
    __table_args__ = (
        UniqueConstraint("project_id", "sha256"),
        Index("ix_image_project_status", "project_id", "status"),
        Index("ix_image_project_split", "project_id", "split"),
        Index("ix_image_project_name", "project_id", "original_name"),
        # Migration 0008 (projects of 100,000 images): the queue's next-to-do and status filter in
        # name order, and "mine today" in the annotation progress.
        Index("ix_image_project_status_name", "project_id", "status", "original_name", "id"),
        Index("ix_image_project_status_split", "project_id", "status", "split"),
        Index("ix_image_project_who_time", "project_id", "updated_by", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    # Paths relative to the data directory; the original as decoded (orientation applied)
    # and a downscaled copy for display.
    stored_path: Mapped[str] = mapped_column(String(300))
    display_path: Mapped[str] = mapped_column(String(300))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    original_name: Mapped[str] = mapped_column(String(500))
    status: Mapped[ImageStatus] = mapped_column(_enum(ImageStatus, "image_status"), default=ImageStatus.NEW)
    split: Mapped[Split | None] = mapped_column(_enum(Split, "split"), default=None)
    # Bumped on every save of the image's boxes; a save that names an older revision
    # is refused (optimistic locking, so two tabs never silently overwrite each other).
    revision: Mapped[int] = mapped_column(Integer, default=0)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(100), default=None)
    # Why an annotation import could not take (all of) the image's boxes from its file: the
    # image is left to annotate and Annotate shows this. None for images no import refused.
    import_note: Mapped[str | None] = mapped_column(Text, default=None)

    boxes: Mapped[list[BoxRow]] = relationship(back_populates="image", cascade="all, delete-orphan")


class BoxRow(Base):
    """A labelled box in original-image pixels."""

    __tablename__ = "box"
    # Migration 0008: a label's boxes with their images from the index alone (queue label filter, counts).
    __table_args__ = (Index("ix_box_label_image", "label_id", "image_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), index=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label.id", ondelete="RESTRICT"), index=True)
    x_min: Mapped[float] = mapped_column(Float)
    y_min: Mapped[float] = mapped_column(Float)
    x_max: Mapped[float] = mapped_column(Float)
    y_max: Mapped[float] = mapped_column(Float)
    source: Mapped[BoxSource] = mapped_column(_enum(BoxSource, "box_source"), default=BoxSource.HUMAN)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    created_by: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(100), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    image: Mapped[Image] = relationship(back_populates="boxes")
    label: Mapped[Label] = relationship()


class Job(Base):
    """A detached background process (training, prediction, big import or export)."""

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_project_kind_status", "project_id", "kind", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "job_status"), default=JobStatus.QUEUED)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    # Free-form progress the page shows, e.g. {"done": 10, "total": 300, "message": "..."}.
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    log_path: Mapped[str | None] = mapped_column(String(500), default=None)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class ModelKind(enum.StrEnum):
    """What a model version predicts: boxes (the detector) or image-level tags (the tags classifier)."""

    DETECTOR = "detector"
    TAGS = "tags"


class ModelVersion(Base):
    """A trained model (detector or tags classifier): the saved file, what it saw and how good it is."""

    __tablename__ = "model_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ModelKind] = mapped_column(
        _enum(ModelKind, "model_kind"), default=ModelKind.DETECTOR, server_default=ModelKind.DETECTOR.value
    )
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"), default=None)
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(500))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dataset_hash: Mapped[str] = mapped_column(String(64), default="")
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prediction(Base):
    """A box a model version predicted, with its score, in original-image pixels."""

    __tablename__ = "prediction"
    __table_args__ = (
        Index("ix_prediction_model_image", "model_version_id", "image_id"),
        Index("ix_prediction_image", "image_id"),
        # Covers the review queue's per-image aggregates (top score, margin, boxes under threshold).
        Index("ix_prediction_model_image_score", "model_version_id", "image_id", "label_id", "score"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_version.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    label_id: Mapped[int] = mapped_column(ForeignKey("label.id", ondelete="CASCADE"))
    x_min: Mapped[float] = mapped_column(Float)
    y_min: Mapped[float] = mapped_column(Float)
    x_max: Mapped[float] = mapped_column(Float)
    y_max: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewDecision(Base):
    """What a reviewer did with a prediction (or a box they added that the model missed)."""

    __tablename__ = "review_decision"
    __table_args__ = (
        Index("ix_review_decision_image", "image_id"),
        Index("ix_review_decision_version_image", "model_version_id", "image_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    prediction_id: Mapped[int | None] = mapped_column(
        ForeignKey("prediction.id", ondelete="SET NULL"), default=None, index=True
    )
    box_id: Mapped[int | None] = mapped_column(ForeignKey("box.id", ondelete="SET NULL"), default=None)
    # The model version under review (also for "added" rows, which have no prediction).
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_version.id", ondelete="CASCADE"), default=None
    )
    # accepted, moved, relabelled, deleted, added, rejected (per prediction, and one image-level
    # row without a prediction), auto_accepted, audit (an image auto-accept left for people)
    decision: Mapped[str] = mapped_column(String(20))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    who: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Activity(Base):
    """An entry of the project's activity feed (imports, saves, jobs)."""

    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_project_time", "project_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    who: Mapped[str | None] = mapped_column(String(100), default=None)
    action: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BoxChange(Base):
    """One change to an image's boxes: who did what, when, with the box before and after.

    ``box_id`` is a plain integer, not a foreign key: the history must outlive a deleted
    box. ``before``/``after`` hold ``{"label": name, "x_min": .., "y_min": .., "x_max": ..,
    "y_max": .., "source": .., "score": ..}`` in original-image pixels (``before`` is null for
    a created box, ``after`` for a deleted one).
    """

    __tablename__ = "box_change"
    __table_args__ = (Index("ix_box_change_image_time", "image_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    box_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # created, edited (moved/resized/relabelled; a model box becomes human), deleted
    action: Mapped[str] = mapped_column(String(20))
    revision: Mapped[int] = mapped_column(Integer)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    who: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TagPrediction(Base):
    """A tags model version's prediction of one tag (category or a schema attribute) for one image.

    ``value`` is the top value and ``confidence`` its calibrated probability (temperature scaling
    fitted on the validation split, stored with the model version); ``probabilities`` maps every
    value of the head to its calibrated probability, so a claim (catalogue check) or a reviewer's
    alternative can be scored without running the model again.
    """

    __tablename__ = "tag_prediction"
    __table_args__ = (
        UniqueConstraint("model_version_id", "image_id", "tag"),
        Index("ix_tag_prediction_image", "image_id"),
        # The tags review queue: lowest confidence first within one version and tag.
        Index("ix_tag_prediction_model_tag_confidence", "model_version_id", "tag", "confidence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_version.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float)
    probabilities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogueItem(Base):
    """A seller's listing (one SKU) of a project: what the seller wrote, beside the project's photos of it.

    ``structured`` holds the listing's structured tag columns as given (``{"category": "Hoodie"}``);
    the photos are :class:`CatalogueItemImage` rows, in the listing's order. Re-importing a
    catalogue updates a listing by SKU, so its id (and the decisions on it) stay.
    """

    __tablename__ = "catalogue_item"
    __table_args__ = (UniqueConstraint("project_id", "sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    structured: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    images: Mapped[list[CatalogueItemImage]] = relationship(
        order_by="CatalogueItemImage.position", cascade="all, delete-orphan"
    )


class CatalogueItemImage(Base):
    """One photo of a listing (a listing may have several, in order)."""

    __tablename__ = "catalogue_item_image"
    __table_args__ = (UniqueConstraint("item_id", "position"), Index("ix_catalogue_item_image_image", "image_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalogue_item.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)


class CatalogueResult(Base):
    """The catalogue check of one listing against one tags model version (replaced by each new check).

    ``details`` holds what the page and the CLI show: claims, predictions per photo, reasons,
    the photos without a prediction. ``mismatch_score`` is None when no claim could be compared.
    """

    __tablename__ = "catalogue_result"
    __table_args__ = (
        UniqueConstraint("item_id", "model_version_id"),
        Index("ix_catalogue_result_version_score", "model_version_id", "mismatch_score"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalogue_item.id", ondelete="CASCADE"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_version.id", ondelete="CASCADE"))
    mismatch_score: Mapped[float | None] = mapped_column(Float, default=None)
    flagged: Mapped[bool] = mapped_column(default=False)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogueDecision(Base):
    """What a reviewer decided about a listing: description wrong, photo wrong, model wrong or fine.

    Kept across re-imports (the listing keeps its id); ``details`` holds the claims and score
    the reviewer saw and, for "model wrong", the tags it stored as ground truth.
    """

    __tablename__ = "catalogue_decision"
    __table_args__ = (Index("ix_catalogue_decision_item_time", "item_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalogue_item.id", ondelete="CASCADE"))
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_version.id", ondelete="SET NULL"), default=None
    )
    decision: Mapped[str] = mapped_column(String(30))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    who: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogueSettings(Base):
    """A project's catalogue-check settings: its vocabulary (None: the shipped default) and chosen thresholds.

    ``vocabulary`` is a list of ``[tag, value, phrase]``; ``thresholds`` maps a model version id
    (as a string) to ``{"threshold", "precision", "recall", "validation_skus", "source"}``.
    """

    __tablename__ = "catalogue_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), unique=True)
    vocabulary: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    thresholds: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Account(Base):
    """A person who signs in. ``role`` is global (admin, reviewer, annotator); ``ProjectRole`` overrides it per project.

    ``password_hash`` is an argon2id hash (never the password); it is empty for an account that only
    signs in through single sign-on (matched by ``email``). A disabled account keeps its rows and its
    name in every history but can no longer sign in.
    """

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    role: Mapped[str] = mapped_column(String(20), default="annotator")
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(default=None)


class ProjectRole(Base):
    """An account's role in one project, overriding its global role there."""

    __tablename__ = "project_role"

    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))


class SignInThrottle(Base):
    """Failed sign-ins per typed user name (existing or not, so that the answers cannot tell which)."""

    __tablename__ = "sign_in_throttle"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime | None] = mapped_column(default=None)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)


class AuthSession(Base):
    """A signed-in browser session. The browser holds a random token; the table holds only its SHA-256."""

    __tablename__ = "auth_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditEvent(Base):
    """One audited action: sign-ins and failures, account changes, imports, exports, trainings, deletions, reviews.

    ``who`` is kept as text (and ``project_id`` without a foreign key) so that the trail outlives the
    account's or project's deletion.
    """

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_at", "at"), Index("ix_audit_event_action_at", "action", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    who: Mapped[str | None] = mapped_column(String(100), default=None)
    action: Mapped[str] = mapped_column(String(40))
    project_id: Mapped[int | None] = mapped_column(Integer, default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ImageAssignment(Base):
    """Which annotator an image is assigned to (an image without a row is unassigned)."""

    __tablename__ = "image_assignment"
    __table_args__ = (Index("ix_image_assignment_account", "account_id"),)

    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"))
    assigned_at: Mapped[datetime] = mapped_column(default=utcnow)
    assigned_by: Mapped[str | None] = mapped_column(String(100), default=None)


class ProjectWorkflow(Base):
    """Per-project workflow switches: whether human work waits for a reviewer before it counts."""

    __tablename__ = "project_workflow"

    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"), primary_key=True)
    review_stage: Mapped[bool] = mapped_column(default=False)


class ImageReview(Base):
    """An image's place in the review stage: pending (waits for a reviewer), returned (with a comment), accepted."""

    __tablename__ = "image_review"
    __table_args__ = (Index("ix_image_review_state", "state"),)

    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text, default="")
    annotator: Mapped[str | None] = mapped_column(String(100), default=None)
    reviewer: Mapped[str | None] = mapped_column(String(100), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelExport(Base):
    """A model version exported for deployment (SavedModel, TFLite, ONNX): the zip and its check against Keras.

    ``path`` is the zip, relative to the data folder; ``check_result`` holds the figures of
    :mod:`core.model.export.check` (mAP@0.5 of both, matched-box IoU, top-class agreement).
    Exporting the same version to the same format again replaces the row and its zip.
    """

    __tablename__ = "model_export"
    __table_args__ = (UniqueConstraint("model_version_id", "format"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_version.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(String(40))
    path: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(Integer)
    check_result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CountDelta(Base):
    """A signed change (+1 / -1, or a folded sum) to one of a project's counts, written by triggers (0011).

    ``kind`` ``"image"``: ``key`` is ``"status|split"``; ``kind`` ``"label"``: ``key`` is the
    label id. A count is the sum of its rows; :mod:`db.counts` reads and folds them. Nothing in
    Python writes a delta: the database's triggers on ``image`` and ``box`` do, in the write's
    own transaction.
    """

    __tablename__ = "count_delta"
    __table_args__ = (Index("ix_count_delta_project", "project_id", "kind", "key", "n"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    key: Mapped[str] = mapped_column(String(64))
    n: Mapped[int] = mapped_column(Integer)


# Home's people panel (finished images per person and this week) reads this index alone (0011).
Index("ix_image_project_status_who_time", Image.project_id, Image.status, Image.updated_by, Image.updated_at)

# Export's count of tagged images visits only the images that store any attribute (0012); the
# condition is the query's, word for word, per dialect (see that migration).
Index(
    "ix_image_project_with_attributes",
    Image.project_id,
    sqlite_where=text("attributes != '{}'"),
    postgresql_where=text("attributes::text <> '{}'"),
)
