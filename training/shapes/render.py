"""Rendering: draw at RENDER_SCALE x with PIL, box-downsample to 64x64 (anti-aliased edges).

    render(scene) -> np.ndarray uint8 (64, 64, 3)
    render_image(scene) -> PIL.Image (RGB, 64x64)
    render_png(scene) -> bytes

Geometry: the object's centre is its cell's centre plus the jitter (dx, dy). Extent E = SIZES[size] px: a circle of
diameter E, a square of side E, an upright isosceles triangle with base E and height E (apex up). With E <= 16 and
|jitter| <= 2, an object stays at least 0.67 px inside its cell, so objects in neighbouring cells never touch.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from .scene import Scene, ShapeObject
from .vocab import BACKGROUNDS, COLORS, GRID, IMAGE_SIZE, RENDER_SCALE, SIZES

_CELL = IMAGE_SIZE / GRID


def object_center(obj: ShapeObject) -> tuple[float, float]:
    """Centre of the object (of its bounding box) in output pixels."""
    row, col = divmod(obj.cell, GRID)
    return ((col + 0.5) * _CELL + obj.dx, (row + 0.5) * _CELL + obj.dy)


def _draw_object(draw: ImageDraw.ImageDraw, obj: ShapeObject) -> None:
    s = RENDER_SCALE
    cx, cy = object_center(obj)
    e = SIZES[obj.size] * s
    x0 = int(round(cx * s - e / 2))
    y0 = int(round(cy * s - e / 2))
    x1, y1 = x0 + e - 1, y0 + e - 1          # PIL boxes are inclusive
    fill = COLORS[obj.color]
    if obj.shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=fill)
    elif obj.shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=fill)
    else:
        draw.polygon(((x0 + x1) / 2, y0, x1, y1, x0, y1), fill=fill)


def render_image(scene: Scene) -> Image.Image:
    size = IMAGE_SIZE * RENDER_SCALE
    big = Image.new("RGB", (size, size), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(big)
    for obj in scene.objects:
        _draw_object(draw, obj)
    return big.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BOX)


def render(scene: Scene) -> np.ndarray:
    return np.asarray(render_image(scene), dtype=np.uint8)


def render_png(scene: Scene) -> bytes:
    buf = io.BytesIO()
    render_image(scene).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def render_batch(scenes: list[Scene]) -> np.ndarray:
    """uint8 array (N, 64, 64, 3)."""
    out = np.empty((len(scenes), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i, sc in enumerate(scenes):
        out[i] = np.asarray(render_image(sc), dtype=np.uint8)
    return out
