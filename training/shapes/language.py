"""Language of the shapes world: canonical descriptions, questions (with paraphrases) and their ONE canonical answer
style, generation prompts (full and partial) with the constraints they state, and edit instructions with the scenes
they produce. Index 0 of every template list is the canonical form (what the eval set uses); the rest are training
paraphrases. The TypeScript side (src/shapes/language.ts) parses what this module writes.

Canonical answers (lower case, one sentence, final period):
  describe    "a small blue square at the top left and a large red circle in the center on a white background."
              objects in reading order of their cells; "A", "A and B", "A, B and C" (no Oxford comma);
              each object "a {size} {color} {shape} {position phrase}"; then " on a {bg} background."
  color       "red."
  shape       "a circle."
  count       "two."          (number words one/two/three, never digits)
  where       "at the top left."   (the position phrase, see vocab.POSITION_PHRASES)
  background  "white."
  exists      "yes." / "no."
"""
from __future__ import annotations

import random
from collections import Counter

from .scene import Scene, ShapeObject, sample_jitter, sample_object, sample_scene
from .vocab import BACKGROUNDS, COLORS, NUMBER_WORDS, POSITION_PHRASES, POSITIONS, SHAPE_PLURALS, SHAPES, SIZES

# ---------------------------------------------------------------------------------------------------------------
# Phrases

def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def join_phrases(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def object_phrase(obj: ShapeObject) -> str:
    """Canonical: "a small blue square at the top left"."""
    return f"a {obj.size} {obj.color} {obj.shape} {POSITION_PHRASES[obj.position]}"


def describe(scene: Scene) -> str:
    """The canonical description (also the canonical answer to "Describe the image.")."""
    return join_phrases([object_phrase(o) for o in scene.objects]) + f" on a {scene.background} background."


def reference(scene: Scene, obj: ShapeObject) -> str | None:
    """Canonical name of an object in questions and edits: its shape alone when no other object has that shape,
    else colour and shape when that is unique, else None (the object cannot be named unambiguously)."""
    if sum(o.shape == obj.shape for o in scene.objects) == 1:
        return obj.shape
    if sum(o.shape == obj.shape and o.color == obj.color for o in scene.objects) == 1:
        return f"{obj.color} {obj.shape}"
    return None


def references(scene: Scene, obj: ShapeObject) -> list[str]:
    """Every unambiguous name of an object (for paraphrases); canonical first."""
    out: list[str] = []
    if sum(o.shape == obj.shape for o in scene.objects) == 1:
        out.append(obj.shape)
    if sum(o.shape == obj.shape and o.color == obj.color for o in scene.objects) == 1:
        out.append(f"{obj.color} {obj.shape}")
    if sum(o.key()[:3] == obj.key()[:3] for o in scene.objects) == 1:
        out.append(f"{obj.size} {obj.color} {obj.shape}")
    return out


# Position phrase variants a prompt or instruction may use (canonical first). The TS parser accepts all of them.
POSITION_VARIANTS: dict[str, list[str]] = {
    "top left": ["at the top left", "in the top left", "in the top left corner", "at the upper left"],
    "top": ["at the top", "at the top center", "in the top middle"],
    "top right": ["at the top right", "in the top right", "in the top right corner", "at the upper right"],
    "left": ["on the left", "at the left", "in the middle left"],
    "center": ["in the center", "in the middle", "at the center"],
    "right": ["on the right", "at the right", "in the middle right"],
    "bottom left": ["at the bottom left", "in the bottom left", "in the bottom left corner", "at the lower left"],
    "bottom": ["at the bottom", "at the bottom center", "in the bottom middle"],
    "bottom right": ["at the bottom right", "in the bottom right", "in the bottom right corner",
                     "at the lower right"],
}
assert all(POSITION_VARIANTS[p][0] == POSITION_PHRASES[p] for p in POSITIONS)

# ---------------------------------------------------------------------------------------------------------------
# Understanding: questions and canonical answers

QUESTION_TEMPLATES: dict[str, list[str]] = {
    "describe": [
        "Describe the image.", "What is in the image?", "What do you see?", "Describe this picture.",
        "What does the image show?", "Can you describe the image?", "Give a description of the image.",
        "What's in this picture?",
    ],
    "color": [
        "What color is the {ref}?", "What is the color of the {ref}?", "Which color does the {ref} have?",
        "What colour is the {ref}?", "Tell me the color of the {ref}.", "The {ref} is what color?",
    ],
    "shape": [
        "What shape is the {color} object?", "What is the shape of the {color} object?", "Which shape is {color}?",
        "What kind of shape is the {color} one?", "What is the {color} object?",
        "Name the shape of the {color} object.",
    ],
    "count": [
        "How many shapes are there?", "How many objects are in the image?", "Count the shapes.",
        "How many shapes do you see?", "What is the number of objects?", "How many things are in the picture?",
    ],
    "where": [
        "Where is the {ref}?", "What is the position of the {ref}?", "Where is the {ref} located?",
        "In which part of the image is the {ref}?", "Where can I find the {ref}?", "Where's the {ref}?",
    ],
    "background": [
        "What color is the background?", "What is the background color?", "Which color is the background?",
        "What colour is the background?", "What's the color of the background?", "Tell me the background color.",
    ],
    "exists": [
        "Is there {a} {color} {shape}?", "Is there {a} {color} {shape} in the image?", "Do you see {a} {color} {shape}?",
        "Does the image contain {a} {color} {shape}?", "Can you find {a} {color} {shape}?",
        "Is {a} {color} {shape} present?",
    ],
}
QUESTION_KINDS = tuple(QUESTION_TEMPLATES)


def answer_for(scene: Scene, kind: str, obj: ShapeObject | None = None, exists: bool | None = None) -> str:
    if kind == "describe":
        return describe(scene)
    if kind == "color":
        return f"{obj.color}."
    if kind == "shape":
        return f"a {obj.shape}."
    if kind == "count":
        return f"{NUMBER_WORDS[len(scene.objects)]}."
    if kind == "where":
        return f"{POSITION_PHRASES[obj.position]}."
    if kind == "background":
        return f"{scene.background}."
    if kind == "exists":
        return "yes." if exists else "no."
    raise ValueError(kind)


def possible_kinds(scene: Scene) -> list[str]:
    kinds = ["describe", "count", "background", "exists"]
    shapes = Counter(o.shape for o in scene.objects)
    colors = Counter(o.color for o in scene.objects)
    pairs = Counter((o.color, o.shape) for o in scene.objects)
    if any(v == 1 for v in shapes.values()):
        kinds.append("color")
    if any(v == 1 for v in colors.values()):
        kinds.append("shape")
    if any(v == 1 for v in pairs.values()):
        kinds.append("where")
    return kinds


def ask(scene: Scene, rng: random.Random, kind: str | None = None, paraphrase: bool = True) -> dict | None:
    """A question about the scene: {"kind", "question", "canonical_question", "answer"}; None when `kind` cannot be
    asked unambiguously about this scene. With paraphrase=False, question == canonical_question."""
    kinds = possible_kinds(scene)
    if kind is None:
        kind = rng.choice(kinds)
    elif kind not in kinds:
        return None
    templates = QUESTION_TEMPLATES[kind]
    template = rng.choice(templates) if paraphrase else templates[0]
    fields: dict[str, str] = {}
    canon_fields: dict[str, str] = {}
    obj = None
    exists = None
    if kind == "color":
        obj = rng.choice([o for o in scene.objects if sum(p.shape == o.shape for p in scene.objects) == 1])
        fields["ref"] = canon_fields["ref"] = obj.shape
    elif kind == "shape":
        obj = rng.choice([o for o in scene.objects if sum(p.color == o.color for p in scene.objects) == 1])
        fields["color"] = canon_fields["color"] = obj.color
    elif kind == "where":
        obj = rng.choice([o for o in scene.objects
                          if sum((p.color, p.shape) == (o.color, o.shape) for p in scene.objects) == 1])
        canon_fields["ref"] = f"{obj.color} {obj.shape}"
        fields["ref"] = rng.choice(references(scene, obj)) if paraphrase else canon_fields["ref"]
    elif kind == "exists":
        present = {(o.color, o.shape) for o in scene.objects}
        exists = rng.random() < 0.5
        if exists:
            color, shape = rng.choice(sorted(present))
        else:
            # Negatives that share the colour or the shape of an object half of the time (harder).
            absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present]
            near = [(c, s) for (c, s) in absent if any(c == pc or s == ps for pc, ps in present)]
            color, shape = rng.choice(near if near and rng.random() < 0.5 else absent)
        fields.update(a=article(color), color=color, shape=shape)
        canon_fields.update(fields)
    question = template.format(**fields)
    canonical = templates[0].format(**canon_fields)
    return {"kind": kind, "question": question, "canonical_question": canonical,
            "answer": answer_for(scene, kind, obj, exists)}


# ---------------------------------------------------------------------------------------------------------------
# Generation prompts. Constraints (JSON, shared with TS):
#   {"background": "white" | None, "objects": [{"shape": ..|None, "color": ..|None, "size": ..|None,
#                                                 "position": ..|None}, ...]}
# The number of objects is always stated (len(objects)); every other None is left to the model.

FULL_PREFIXES = ["", "draw ", "generate ", "create ", "generate an image of ", "draw an image of ", "an image of ",
                 "a picture of ", "show me ", "paint ", "make a picture of ", "render ", "please draw ",
                 "can you draw ", "create an image with ", "i want "]
PARTIAL_PREFIXES = FULL_PREFIXES


def _style(rng: random.Random, body: str) -> str:
    """Optional capitalisation and final period, for paraphrased prompts."""
    if rng.random() < 0.3:
        body = body[0].upper() + body[1:]
    if rng.random() < 0.4 and not body.endswith("."):
        body += "."
    return body


def full_constraints(scene: Scene) -> dict:
    return {"background": scene.background,
            "objects": [{"shape": o.shape, "color": o.color, "size": o.size, "position": o.position}
                        for o in scene.objects]}


def _object_words(size: str | None, color: str | None, shape: str | None, plural: bool, rng: random.Random,
                  paraphrase: bool) -> str:
    words = [w for w in (size, color) if w]
    if shape:
        words.append(SHAPE_PLURALS[shape] if plural else shape)
    else:
        noun = rng.choice(["shape", "object"]) if paraphrase else "shape"
        words.append(noun + "s" if plural else noun)
    return " ".join(words)


def generation_prompt(rng: random.Random, full: bool | None = None, paraphrase: bool = True,
                      scene: Scene | None = None) -> dict:
    """A text-to-image example: {"prompt", "canonical_prompt", "full", "constraints", "scene"}. `scene` (JSON) is a
    target that satisfies the constraints, with every unstated attribute sampled at random. Full prompts state
    everything: canonical prompt = the canonical description; paraphrases add a lead-in ("draw ...") and vary
    position phrases. Partial canonical prompt: the bare phrase list ("a red circle and two green squares on a black
    background", no lead-in, no period). With paraphrase=False, prompt == canonical_prompt."""
    if scene is None:
        scene = sample_scene(rng)
    if full is None:
        full = rng.random() < 0.4
    if full:
        if not paraphrase:
            prompt = describe(scene)
        else:
            parts = []
            for o in scene.objects:
                pos = rng.choice(POSITION_VARIANTS[o.position]) if rng.random() < 0.3 else POSITION_PHRASES[o.position]
                parts.append(f"a {o.size} {o.color} {o.shape} {pos}")
            bg = scene.background if rng.random() < 0.9 else "grey" if scene.background == "gray" else scene.background
            body = join_phrases(parts) + f" on a {bg} background"
            prompt = _style(rng, rng.choice(FULL_PREFIXES) + body)
        return {"prompt": prompt, "canonical_prompt": describe(scene), "full": True,
                "constraints": full_constraints(scene), "scene": scene.to_json()}

    # Partial: each attribute of each object is stated with probability 1/2, the background with 2/5;
    # objects whose stated attributes are identical (and whose position is unstated) are merged ("two green squares").
    stated = []
    for o in scene.objects:
        stated.append({
            "shape": o.shape if rng.random() < 0.6 else None,
            "color": o.color if rng.random() < 0.5 else None,
            "size": o.size if rng.random() < 0.4 else None,
            "position": o.position if rng.random() < 0.3 else None,
        })
    groups: list[tuple[dict, int]] = []
    for s in stated:
        if s["position"] is None:
            for i, (g, n) in enumerate(groups):
                if g == s:
                    groups[i] = (g, n + 1)
                    break
            else:
                groups.append((s, 1))
        else:
            groups.append((s, 1))
    rng.shuffle(groups)
    parts = []
    canon_parts = []
    constraints_objects = []
    for s, n in groups:
        canon_words = _object_words(s["size"], s["color"], s["shape"], n > 1, rng, False)
        words = _object_words(s["size"], s["color"], s["shape"], n > 1, rng, paraphrase) if paraphrase else canon_words
        if n == 1:
            canon_det = article(canon_words.split(" ")[0])
            det = article(words.split(" ")[0]) if (not paraphrase or rng.random() < 0.9) else "one"
        else:
            canon_det = det = NUMBER_WORDS[n]
        phrase = f"{det} {words}"
        canon = f"{canon_det} {canon_words}"
        if s["position"]:
            pos = rng.choice(POSITION_VARIANTS[s["position"]]) if paraphrase else POSITION_PHRASES[s["position"]]
            phrase += f" {pos}"
            canon += f" {POSITION_PHRASES[s['position']]}"
        parts.append(phrase)
        canon_parts.append(canon)
        constraints_objects.extend(dict(s) for _ in range(n))
    body = join_phrases(parts)
    canonical = join_phrases(canon_parts)
    bg = None
    if rng.random() < 0.4:
        bg = scene.background
        bg_word = "grey" if (bg == "gray" and paraphrase and rng.random() < 0.1) else bg
        body += f" on a {bg_word} background"
        canonical += f" on a {bg} background"
    prompt = _style(rng, rng.choice(PARTIAL_PREFIXES) + body) if paraphrase else body
    return {"prompt": prompt, "canonical_prompt": canonical, "full": False,
            "constraints": {"background": bg, "objects": constraints_objects}, "scene": scene.to_json()}


def satisfies(scene: Scene, constraints: dict) -> bool:
    """Does the scene meet every stated constraint (same object count, a one-to-one match of objects)?"""
    if constraints.get("background") and constraints["background"] != scene.background:
        return False
    wanted = constraints["objects"]
    if len(wanted) != len(scene.objects):
        return False
    from itertools import permutations
    for perm in permutations(scene.objects):
        if all(all(w[k] is None or w[k] == getattr(o, k) for k in ("shape", "color", "size", "position"))
               for w, o in zip(wanted, perm)):
            return True
    return False


# ---------------------------------------------------------------------------------------------------------------
# Edit instructions. Fields: {ref} object name, {cref} "color shape", {color} new colour, {pos} position name,
# {where} position phrase, {size}/{shape} of the added object, {bg} new background, {bigger} bigger|smaller.

EDIT_TEMPLATES: dict[str, list[str]] = {
    "recolor": [
        "make the {ref} {color}", "change the {cref} to {color}", "turn the {ref} {color}", "color the {ref} {color}",
        "paint the {ref} {color}", "recolor the {ref} to {color}", "change the color of the {ref} to {color}",
        "make the {ref} {color} instead",
    ],
    "move": [
        "move the {ref} to the {pos}", "put the {ref} {where}", "shift the {ref} to the {pos}",
        "place the {ref} {where}", "drag the {ref} to the {pos}", "move the {ref} over to the {pos}",
    ],
    "remove": [
        "remove the {ref}", "delete the {ref}", "take away the {ref}", "get rid of the {ref}", "erase the {ref}",
        "remove the {ref} from the image",
    ],
    "add": [
        "add a {size} {color} {shape} {where}", "put a {size} {color} {shape} {where}",
        "draw a {size} {color} {shape} {where}", "insert a {size} {color} {shape} {where}",
        "add a {size} {color} {shape} to the {pos}", "also draw a {size} {color} {shape} {where}",
    ],
    "background": [
        "change the background to {bg}", "make the background {bg}", "set the background to {bg}",
        "turn the background {bg}", "change the background color to {bg}", "use a {bg} background",
    ],
    "resize": [
        "make the {ref} {size}", "make the {ref} {bigger}", "change the {ref} to {size}",
        "resize the {ref} to {size}", "make the {ref} {size} instead", "{enlarge} the {ref}",
    ],
}
EDIT_OPS = tuple(EDIT_TEMPLATES)
# Canonical templates (eval); "recolor" has two, picked at random.
CANONICAL_EDIT_TEMPLATES = {op: [t[0]] for op, t in EDIT_TEMPLATES.items()}
CANONICAL_EDIT_TEMPLATES["recolor"] = EDIT_TEMPLATES["recolor"][:2]


def possible_edits(scene: Scene) -> list[str]:
    named = [o for o in scene.objects if reference(scene, o)]
    ops = ["background"]
    if named:
        ops += ["recolor", "move", "resize"]
    if len(scene.objects) >= 2 and named:
        ops.append("remove")
    if len(scene.objects) < 3:
        ops.append("add")
    return ops


def edit(scene: Scene, rng: random.Random, op: str | None = None, paraphrase: bool = True) -> dict | None:
    """An edit of the scene: {"op", "instruction", "canonical_instruction", "target"} (target: scene JSON). Only
    valid edits: the named object is unambiguous, the target cell is free, 1-3 objects remain, something changes.
    Unnamed objects keep their attributes and their jitter; moved and added objects get fresh jitter."""
    ops = possible_edits(scene)
    if op is None:
        op = rng.choice(ops)
    elif op not in ops:
        return None
    named = [o for o in scene.objects if reference(scene, o)]
    others = list(scene.objects)
    f: dict[str, str] = {}
    if op == "background":
        bg = rng.choice([b for b in BACKGROUNDS if b != scene.background])
        target = Scene(bg, scene.objects)
        f["bg"] = bg
    else:
        if op == "add":
            pos = rng.choice(scene.free_cells())
            new = sample_object(rng, pos)
            target = Scene(scene.background, scene.objects + (new,))
            f.update(size=new.size, color=new.color, shape=new.shape, pos=pos)
        else:
            obj = rng.choice(named)
            others.remove(obj)
            if op == "recolor":
                color = rng.choice([c for c in COLORS if c != obj.color])
                changed = ShapeObject(obj.shape, color, obj.size, obj.position, obj.dx, obj.dy)
                target = Scene(scene.background, tuple(others) + (changed,))
                f.update(color=color, cref=f"{obj.color} {obj.shape}")
                if sum((o.color, o.shape) == (obj.color, obj.shape) for o in scene.objects) != 1:
                    f["cref"] = ""   # "change the {cref} ..." impossible; other templates still fine
            elif op == "move":
                pos = rng.choice(scene.free_cells())
                moved = ShapeObject(obj.shape, obj.color, obj.size, pos, sample_jitter(rng), sample_jitter(rng))
                target = Scene(scene.background, tuple(others) + (moved,))
                f["pos"] = pos
            elif op == "remove":
                target = Scene(scene.background, tuple(others))
            elif op == "resize":
                size = "small" if obj.size == "large" else "large"
                changed = ShapeObject(obj.shape, obj.color, size, obj.position, obj.dx, obj.dy)
                target = Scene(scene.background, tuple(others) + (changed,))
                f.update(size=size, bigger="bigger" if size == "large" else "smaller",
                         enlarge="enlarge" if size == "large" else "shrink")
            else:
                raise ValueError(op)
            canonical_ref = reference(scene, obj)
            f["ref"] = canonical_ref
    if "pos" in f:
        f["where"] = POSITION_PHRASES[f["pos"]]

    def fill(template: str, fields: dict) -> str:
        return template.format(**fields)

    canon_choices = [t for t in CANONICAL_EDIT_TEMPLATES[op] if "{cref}" not in t or f.get("cref")]
    canonical = fill(rng.choice(canon_choices), f)
    if paraphrase:
        choices = [t for t in EDIT_TEMPLATES[op] if "{cref}" not in t or f.get("cref")]
        pf = dict(f)
        if "ref" in pf:
            pf["ref"] = rng.choice(references(scene, obj))
        if "pos" in pf and rng.random() < 0.4:
            pf["where"] = rng.choice(POSITION_VARIANTS[pf["pos"]])
        instruction = fill(rng.choice(choices), pf)
        if rng.random() < 0.3:
            instruction = instruction[0].upper() + instruction[1:]
        if rng.random() < 0.3:
            instruction += "."
    else:
        instruction = canonical
    if target.same_as(scene):
        raise AssertionError("edit changed nothing")
    return {"op": op, "instruction": instruction, "canonical_instruction": canonical, "target": target.to_json()}
