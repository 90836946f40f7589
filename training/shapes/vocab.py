"""The shapes world's vocabulary: the ONE place on the Python side that names shapes, colours, sizes, positions,
backgrounds and their RGB values / pixel sizes. `src/shapes/vocab.ts` mirrors it; `tests/fixtures/shapes/vocab.json`
(written by `python -m shapes.fixtures`) is compared against the TypeScript copy by `tests/shapes/vocab.test.ts`.
"""
from __future__ import annotations

IMAGE_SIZE = 64          # images are IMAGE_SIZE x IMAGE_SIZE RGB
GRID = 3                 # a GRID x GRID grid of cells, one object per cell at most
MIN_OBJECTS = 1
MAX_OBJECTS = 3
RENDER_SCALE = 4         # shapes are drawn at 4x and box-downsampled (anti-aliasing)
JITTER = 2.0             # each object's centre is offset by up to +-JITTER px (quarter-pixel steps) inside its cell

SHAPES = ("circle", "square", "triangle")
SHAPE_PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles"}

# Object colours. Chosen so that every pair (objects and backgrounds together) is >= 100 apart in RGB
# (closest pairs: yellow/orange 102, red/orange 113, purple/gray 124).
COLORS = {
    "red": (225, 25, 35),
    "green": (40, 175, 40),
    "blue": (40, 80, 240),
    "yellow": (250, 230, 20),
    "purple": (160, 40, 210),
    "orange": (250, 130, 0),
    "cyan": (30, 210, 230),
}

BACKGROUNDS = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
}

# Size name -> extent in pixels (diameter of a circle, side of a square, base and height of an upright triangle).
SIZES = {"small": 10, "large": 16}

# Cell names in reading order (row-major): index = row * 3 + column.
POSITIONS = ("top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right")

# Canonical phrase of a position inside a sentence ("a red circle at the top left").
POSITION_PHRASES = {
    "top left": "at the top left",
    "top": "at the top",
    "top right": "at the top right",
    "left": "on the left",
    "center": "in the center",
    "right": "on the right",
    "bottom left": "at the bottom left",
    "bottom": "at the bottom",
    "bottom right": "at the bottom right",
}

NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}


def as_json() -> dict:
    """The vocabulary as JSON (what the TypeScript side must agree with)."""
    return {
        "imageSize": IMAGE_SIZE,
        "grid": GRID,
        "minObjects": MIN_OBJECTS,
        "maxObjects": MAX_OBJECTS,
        "jitter": JITTER,
        "shapes": list(SHAPES),
        "shapePlurals": dict(SHAPE_PLURALS),
        "colors": {k: list(v) for k, v in COLORS.items()},
        "backgrounds": {k: list(v) for k, v in BACKGROUNDS.items()},
        "sizes": dict(SIZES),
        "positions": list(POSITIONS),
        "positionPhrases": dict(POSITION_PHRASES),
        "numberWords": {str(k): v for k, v in NUMBER_WORDS.items()},
    }
