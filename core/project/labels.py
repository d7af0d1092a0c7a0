"""The clothing label set, attribute schema and label colours that new projects start with.

Pure data (no database, no Pillow), so the demo generator and the projects module share it.
"""

from __future__ import annotations

# The nine classes of the e-commerce clothing-tagging use case, in its order.
CLOTHING_LABELS: tuple[str, ...] = (
    "Jackets",
    "Jeans",
    "Shirts",
    "Shoes",
    "Skirts",
    "Sunglasses",
    "Tops",
    "Trousers",
    "Tshirts",
)

# Image-level attributes of the fashion-attribute use case; the first value is the default.
DEFAULT_ATTRIBUTE_SCHEMA: dict[str, list[str]] = {
    "type": ["upper wear", "bottom wear"],
    "sleeve_length": ["half", "full"],
    "colour": ["single", "multi"],
    "pattern": ["solid", "printed"],
}

# Sasha Trubetskoy's 20 distinct colours: readable on photos and told apart by most people.
PALETTE: tuple[str, ...] = (
    "#e6194b",
    "#3cb44b",
    "#ffe119",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#46f0f0",
    "#f032e6",
    "#bcf60c",
    "#fabebe",
    "#008080",
    "#e6beff",
    "#9a6324",
    "#fffac8",
    "#800000",
    "#aaffc3",
    "#808000",
    "#ffd8b1",
    "#000075",
    "#808080",
)
