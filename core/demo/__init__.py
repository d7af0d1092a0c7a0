"""The demo project: synthetic clothing scenes and the project built from them.

The package's shared constants live here, below the modules that use them (garments,
scenes, project), so that none of those has to import another for them.
"""

from __future__ import annotations

from core.project.labels import CLOTHING_LABELS

# The demo uses the clothing label set every new project starts with.
DEMO_LABELS: tuple[str, ...] = CLOTHING_LABELS

DEFAULT_SIZE = (512, 384)
