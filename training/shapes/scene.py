"""Scenes: a background and 1-3 objects, each in its own cell of a 3x3 grid. JSON form (shared with src/shapes/scene.ts):

    {"background": "white",
     "objects": [{"shape": "circle", "color": "red", "size": "large", "position": "top left", "dx": 1.25, "dy": -0.5}]}

Objects are always kept in reading order of their cells. dx/dy is the render jitter in pixels (quarter-pixel steps,
|dx|, |dy| <= 2); it is not part of the scene's meaning (two scenes that differ only in jitter are the same scene).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace

from .vocab import BACKGROUNDS, COLORS, JITTER, MAX_OBJECTS, MIN_OBJECTS, POSITIONS, SHAPES, SIZES


def sample_jitter(rng: random.Random) -> float:
    steps = int(JITTER * 4)
    return rng.randint(-steps, steps) / 4.0


@dataclass(frozen=True)
class ShapeObject:
    shape: str
    color: str
    size: str
    position: str
    dx: float = 0.0
    dy: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}")
        if self.color not in COLORS:
            raise ValueError(f"unknown color {self.color!r}")
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}")
        if self.position not in POSITIONS:
            raise ValueError(f"unknown position {self.position!r}")
        if abs(self.dx) > JITTER or abs(self.dy) > JITTER:
            raise ValueError("jitter out of range")

    @property
    def cell(self) -> int:
        return POSITIONS.index(self.position)

    def key(self) -> tuple[str, str, str, str]:
        """The object's meaning (jitter excluded)."""
        return (self.shape, self.color, self.size, self.position)

    def to_json(self) -> dict:
        return {"shape": self.shape, "color": self.color, "size": self.size, "position": self.position,
                "dx": self.dx, "dy": self.dy}

    @staticmethod
    def from_json(d: dict) -> "ShapeObject":
        return ShapeObject(d["shape"], d["color"], d["size"], d["position"], float(d.get("dx", 0.0)),
                           float(d.get("dy", 0.0)))

    def rejitter(self, rng: random.Random) -> "ShapeObject":
        return replace(self, dx=sample_jitter(rng), dy=sample_jitter(rng))


@dataclass(frozen=True)
class Scene:
    background: str
    objects: tuple[ShapeObject, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}")
        objs = tuple(sorted(self.objects, key=lambda o: o.cell))
        object.__setattr__(self, "objects", objs)
        if not (MIN_OBJECTS <= len(objs) <= MAX_OBJECTS):
            raise ValueError(f"a scene holds {MIN_OBJECTS}-{MAX_OBJECTS} objects, not {len(objs)}")
        cells = [o.cell for o in objs]
        if len(set(cells)) != len(cells):
            raise ValueError("two objects in one cell")

    def key(self) -> tuple:
        """The scene's meaning (jitter excluded); equal keys = same scene."""
        return (self.background, tuple(o.key() for o in self.objects))

    def same_as(self, other: "Scene") -> bool:
        return self.key() == other.key()

    def free_cells(self) -> list[str]:
        used = {o.position for o in self.objects}
        return [p for p in POSITIONS if p not in used]

    def to_json(self) -> dict:
        return {"background": self.background, "objects": [o.to_json() for o in self.objects]}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))

    @staticmethod
    def from_json(d: dict | str) -> "Scene":
        if isinstance(d, str):
            d = json.loads(d)
        return Scene(d["background"], tuple(ShapeObject.from_json(o) for o in d["objects"]))


def sample_object(rng: random.Random, position: str, shape: str | None = None, color: str | None = None,
                  size: str | None = None) -> ShapeObject:
    return ShapeObject(
        shape=shape or rng.choice(SHAPES),
        color=color or rng.choice(list(COLORS)),
        size=size or rng.choice(list(SIZES)),
        position=position,
        dx=sample_jitter(rng),
        dy=sample_jitter(rng),
    )


def sample_scene(rng: random.Random, n_objects: int | None = None, background: str | None = None) -> Scene:
    """A uniformly random scene: 1-3 objects (uniform count), distinct random cells, independent attributes."""
    n = n_objects if n_objects is not None else rng.randint(MIN_OBJECTS, MAX_OBJECTS)
    cells = rng.sample(POSITIONS, n)
    bg = background or rng.choice(list(BACKGROUNDS))
    return Scene(bg, tuple(sample_object(rng, c) for c in cells))


def scene_from_seed(seed: int) -> Scene:
    return sample_scene(random.Random(seed))
