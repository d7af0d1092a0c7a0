"""Where Tagrack keeps its database and files.

Resolution order for each setting: an explicit argument (``--db``, ``--data-dir``), then
the environment (``TAGRACK_DB_URL``, ``TAGRACK_DATA_DIR``), then the defaults: a
``tagrack-data/`` folder in the working directory holding ``tagrack.db`` (SQLite) and the
image blob store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = "tagrack-data"


@dataclass(frozen=True)
class Settings:
    """Resolved locations.

    Attributes:
        db_url: SQLAlchemy database URL.
        data_dir: Folder for image blobs, display copies, job logs and models.
    """

    db_url: str
    data_dir: Path

    @classmethod
    def resolve(cls, db_url: str | None = None, data_dir: str | os.PathLike[str] | None = None) -> Settings:
        """Resolves settings from arguments, then environment, then defaults."""
        data = Path(data_dir or os.environ.get("TAGRACK_DATA_DIR") or DEFAULT_DATA_DIR).resolve()
        url = db_url or os.environ.get("TAGRACK_DB_URL") or f"sqlite:///{data / 'tagrack.db'}"
        return cls(db_url=url, data_dir=data)

    @property
    def blob_dir(self) -> Path:
        """Content-addressed originals and display copies."""
        return self.data_dir / "blobs"

    @property
    def jobs_dir(self) -> Path:
        """Job logs and scratch space."""
        return self.data_dir / "jobs"

    @property
    def models_dir(self) -> Path:
        """Saved model versions."""
        return self.data_dir / "models"
