"""The toy world: scenes of coloured, patterned shapes, their captions, and three rendering styles.

Vocabulary
----------
Every object ("thing") in a scene has four nameable attributes, all ordinary English words that the
standard CLIP BPE tokenizer encodes:

* ``colour``  — one of :data:`COLOURS` (11 names, each a prototype RGB jittered per object);
* ``shape``   — one of :data:`SHAPES` (9 names; objects stand roughly upright, rotated by at most 20°,
  so a square never turns into a diamond);
* ``pattern`` — one of :data:`PATTERNS`: a flat fill or stripes / dots / checks in a darker or lighter
  shade of the object's own colour (so the colour name stays true);
* ``size``    — ``small``, ``medium`` or ``large`` (radius as a fraction of the image side).

Styles (the domain gap)
-----------------------
``clean``  — the *pretraining* world: one object on a flat background of a named colour, light pixel
             noise. Its captions (:func:`caption`) name the shape and a random subset of the colour,
             pattern, size and background colour, in varying sentence templates.
``photo``  — the *downstream* world (``toy-b2n``, ``toy-xd``): the object sits on an unnamed
             two-colour gradient background among one or two small clutter objects of random
             attributes, under uneven lighting and stronger noise. Pretraining never shows clutter,
             gradients or lighting, so zero-shot transfer works but is imperfect — the headroom that
             prompt learning is meant to recover.
``sketch`` — the *shifted* world (``toy-shift``): the object is drawn as a thick coloured outline with
             sparse hatching on noisy paper, slightly blurred; no clutter. Same class semantics, a
             different rendering (the ImageNet-Sketch analogue).

A :class:`Scene` is a plain value sampled from a ``numpy.random.Generator``; :func:`render` turns it
into a PIL image deterministically, so the same seed always gives the same pixels and captions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RGB = Tuple[int, int, int]

COLOURS: Dict[str, RGB] = {
    "red": (215, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (240, 215, 35),
    "green": (40, 165, 55),
    "blue": (35, 75, 215),
    "purple": (135, 45, 185),
    "pink": (245, 135, 190),
    "brown": (125, 75, 35),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
}
SHAPES: Tuple[str, ...] = ("circle", "square", "triangle", "star", "heart", "cross", "diamond", "moon", "arrow")
PATTERNS: Tuple[str, ...] = ("plain", "striped", "dotted", "checkered")
#: radius range of each size, as a fraction of the image side
SIZES: Dict[str, Tuple[float, float]] = {"small": (0.14, 0.2), "medium": (0.22, 0.28), "large": (0.3, 0.38)}
STYLES: Tuple[str, ...] = ("clean", "photo", "sketch")

#: sentence frames of pretraining captions; ``{}`` is a noun phrase with its article ("a red star")
CAPTION_TEMPLATES: Tuple[str, ...] = (
    "a photo of {}.",
    "a picture of {}.",
    "an image of {}.",
    "a drawing of {}.",
    "a rendering of {}.",
    "a photo of the {}.",
    "there is {} in the image.",
    "{}.",
)

_CANVAS = 128  # shapes are drawn on a canvas of at least this side, then box-filtered down (anti-aliasing)
_MAX_ANGLE = 20.0
_CLUTTER_RADIUS = (0.08, 0.12)


@dataclass(frozen=True)
class Thing:
    """One object: its named attributes plus the continuous placement that no caption mentions."""

    shape: str
    colour: str
    pattern: str
    size: str
    rgb: RGB
    radius: float  # fraction of the image side
    cx: float  # centre, fractions of the image side
    cy: float
    angle: float  # degrees


@dataclass(frozen=True)
class Scene:
    """A rendered-to-be image: style, background, the main object and clutter objects behind it."""

    style: str
    background: str  # named background colour (``clean``); ``""`` for unnamed backgrounds
    bg_rgb: Tuple[RGB, RGB]  # gradient end points (equal for a flat background)
    main: Thing
    clutter: Tuple[Thing, ...]
    light: Tuple[float, float, float]  # lighting gradient: gain at one side, gain at the other, direction
    noise: float  # pixel-noise standard deviation (0-255 scale)
    noise_seed: int


# --------------------------------------------------------------------------------------------------
# sampling


def _jitter(rng: np.random.Generator, rgb: RGB, amount: int = 14) -> RGB:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _far_colour(rng: np.random.Generator, avoid: RGB, min_dist: float = 110.0) -> RGB:
    """A random unnamed RGB colour at least ``min_dist`` away from ``avoid`` (for unnamed backgrounds)."""
    while True:
        rgb = tuple(int(c) for c in rng.integers(0, 256, size=3))
        if np.linalg.norm(np.subtract(rgb, avoid)) >= min_dist:
            return rgb


def _thing(
    rng: np.random.Generator, shape: str, colour: str, pattern: str, size: str, radius: Optional[float] = None
) -> Thing:
    r = float(rng.uniform(*SIZES[size])) if radius is None else radius
    margin = r * 1.05
    return Thing(
        shape=shape,
        colour=colour,
        pattern=pattern,
        size=size,
        rgb=_jitter(rng, COLOURS[colour]),
        radius=r,
        cx=float(rng.uniform(margin, 1 - margin)),
        cy=float(rng.uniform(margin, 1 - margin)),
        angle=float(rng.uniform(-_MAX_ANGLE, _MAX_ANGLE)),
    )


def _pick(rng: np.random.Generator, options, given: Optional[str]) -> str:
    return given if given is not None else str(options[rng.integers(len(options))])


def sample_scene(
    rng: np.random.Generator,
    style: str,
    *,
    shape: Optional[str] = None,
    colour: Optional[str] = None,
    pattern: Optional[str] = None,
) -> Scene:
    """Sample a scene of ``style``; attributes not given are drawn uniformly.

    ``clean`` scenes draw the size from all of :data:`SIZES` and a named background colour different
    from the object's; ``photo`` and ``sketch`` scenes use medium or large main objects.
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {STYLES}")
    shape, colour, pattern = _pick(rng, SHAPES, shape), _pick(rng, list(COLOURS), colour), _pick(rng, PATTERNS, pattern)
    noise_seed = int(rng.integers(2**31))
    if style == "clean":
        main = _thing(rng, shape, colour, pattern, _pick(rng, list(SIZES), None))
        background = _pick(rng, [c for c in COLOURS if c != colour], None)
        bg = _jitter(rng, COLOURS[background], 10)
        return Scene(style, background, (bg, bg), main, (), (1.0, 1.0, 0.0), 3.0, noise_seed)
    main = _thing(rng, shape, colour, pattern, _pick(rng, ["medium", "large"], None))
    if style == "sketch":
        paper = _jitter(rng, (235, 230, 215), 12)
        return Scene(style, "", (paper, paper), main, (), (1.0, 1.0, 0.0), 10.0, noise_seed)
    clutter = tuple(
        _thing(
            rng,
            _pick(rng, SHAPES, None),
            _pick(rng, list(COLOURS), None),
            _pick(rng, PATTERNS, None),
            "small",
            radius=float(rng.uniform(*_CLUTTER_RADIUS)),
        )
        for _ in range(int(rng.integers(1, 3)))
    )
    bg = (_far_colour(rng, main.rgb), _far_colour(rng, main.rgb))
    light = (float(rng.uniform(0.6, 0.9)), float(rng.uniform(1.0, 1.25)), float(rng.uniform(0, 2 * np.pi)))
    return Scene(style, "", bg, main, clutter, light, 9.0, noise_seed)


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """A pretraining caption: the shape, a random subset of its other attributes, a random frame.

    Attributes appear in English adjective order (size, pattern, colour, shape); ``plain`` patterns
    and ``medium`` sizes are left unsaid; the background colour is named about half the time.
    """
    t = scene.main
    words = []
    if t.size != "medium" and rng.random() < 0.5:
        words.append(t.size)
    if t.pattern != "plain" and rng.random() < 0.6:
        words.append(t.pattern)
    if rng.random() < 0.85:
        words.append(t.colour)
    words.append(t.shape)
    phrase = " ".join(words)
    phrase = ("an " if phrase[0] in "aeiou" else "a ") + phrase
    if scene.background and rng.random() < 0.5:
        phrase += f" on a {scene.background} background"
    frame = CAPTION_TEMPLATES[rng.integers(len(CAPTION_TEMPLATES))]
    if "the {}" in frame:
        phrase = phrase.split(" ", 1)[1]
    return frame.format(phrase)


# --------------------------------------------------------------------------------------------------
# rendering


def _unit_outline(shape: str) -> np.ndarray:
    """Polygon of ``shape`` with circumradius ~1 around the origin (y points down)."""
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    if shape == "circle":
        return np.stack([np.cos(t), np.sin(t)], 1)
    if shape == "square":
        return np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * 0.78
    if shape == "triangle":
        a = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([np.cos(a), np.sin(a) + 0.2], 1)
    if shape == "star":
        a = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        return np.stack([r * np.cos(a), r * np.sin(a)], 1)
    if shape == "heart":
        x = 16 * np.sin(t) ** 3
        y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        return np.stack([x, -y - 2], 1) / 17
    if shape == "cross":
        w = 0.32
        return (
            np.array(
                [
                    [-w, -1],
                    [w, -1],
                    [w, -w],
                    [1, -w],
                    [1, w],
                    [w, w],
                    [w, 1],
                    [-w, 1],
                    [-w, w],
                    [-1, w],
                    [-1, -w],
                    [-w, -w],
                ]
            )
            * 0.95
        )
    if shape == "diamond":
        return np.array([[0, -1], [0.62, 0], [0, 1], [-0.62, 0]])
    if shape == "moon":  # unit disc minus a disc of radius 0.78 centred at (0.55, 0): outer arc, inner arc back
        d, ri = 0.55, 0.78
        xi = (1 + d * d - ri * ri) / (2 * d)  # x of the two circles' intersections
        a_out = np.arctan2(np.sqrt(1 - xi * xi), xi)
        a_in = np.arctan2(np.sqrt(1 - xi * xi), xi - d)
        outer = np.linspace(a_out, 2 * np.pi - a_out, 32)
        inner = np.linspace(2 * np.pi - a_in, a_in, 24)
        return np.concatenate(
            [np.stack([np.cos(outer), np.sin(outer)], 1), np.stack([d + ri * np.cos(inner), ri * np.sin(inner)], 1)]
        )
    if shape == "arrow":
        return np.array([[-1, -0.3], [0.15, -0.3], [0.15, -0.75], [1, 0], [0.15, 0.75], [0.15, 0.3], [-1, 0.3]])
    raise ValueError(f"unknown shape {shape!r}")


def _outline(t: Thing, side: int, x0: int, y0: int) -> list:
    """Vertices of a thing on a ``side``-pixel canvas, relative to the window corner ``(x0, y0)``."""
    a = np.deg2rad(t.angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = _unit_outline(t.shape) @ rot.T * (t.radius * side) + [t.cx * side - x0, t.cy * side - y0]
    return [tuple(p) for p in pts]


def _shade(rgb: RGB) -> np.ndarray:
    """The pattern colour: a darker shade of a light colour, a lighter shade of a dark one."""
    c = np.asarray(rgb, dtype=np.float32)
    return c * 0.45 if c @ [0.299, 0.587, 0.114] > 110 else c + (255 - c) * 0.5


def _pattern(t: Thing, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where the pattern colour replaces the fill colour; ``x``, ``y`` are image-side fractions."""
    a = np.deg2rad(t.angle)
    u = (x - t.cx) * np.cos(a) + (y - t.cy) * np.sin(a)
    v = -(x - t.cx) * np.sin(a) + (y - t.cy) * np.cos(a)
    if t.pattern == "striped":
        return np.mod((u + v) / 0.11, 1.0) < 0.5
    if t.pattern == "dotted":
        p = 0.15
        return (np.mod(u, p) - p / 2) ** 2 + (np.mod(v, p) - p / 2) ** 2 < 0.045**2
    if t.pattern == "checkered":
        return (np.floor(u / 0.085) + np.floor(v / 0.085)) % 2 == 0
    return np.zeros(x.shape, dtype=bool)


def _paint(canvas: np.ndarray, t: Thing, sketch: bool) -> None:
    """Composite one thing onto ``canvas`` in place, working only inside its bounding box."""
    side = canvas.shape[0]
    x0, y0 = (max(0, int((c - t.radius * 1.1) * side)) for c in (t.cx, t.cy))
    x1, y1 = (min(side, int((c + t.radius * 1.1) * side) + 2) for c in (t.cx, t.cy))
    pts = _outline(t, side, x0, y0)
    layer = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(layer).polygon(pts, fill=255)
    mask = np.asarray(layer, dtype=np.float32) / 255.0
    y, x = np.mgrid[y0:y1, x0:x1].astype(np.float32) / side
    fill = np.broadcast_to(np.asarray(t.rgb, dtype=np.float32), (*mask.shape, 3)).copy()
    if sketch:  # sparse hatching inside a thick outline, paper showing through
        mask *= np.mod((x - y) / 0.07, 1.0) < 0.45
        stroke = Image.new("L", layer.size, 0)
        ImageDraw.Draw(stroke).line(pts + pts[:1], fill=255, width=max(2, round(0.045 * side)), joint="curve")
        mask = np.maximum(mask, np.asarray(stroke, dtype=np.float32) / 255.0)
    else:
        fill[_pattern(t, x, y)] = _shade(t.rgb)
    window = canvas[y0:y1, x0:x1]
    window += (fill - window) * mask[..., None]


def render(scene: Scene, size: int) -> Image.Image:
    """Draw ``scene`` as a ``size`` x ``size`` RGB image (deterministic: noise comes from the scene)."""
    side = size * -(-_CANVAS // size)
    frac = np.linspace(0.0, 1.0, side, dtype=np.float32)[None, :, None]
    lo, hi = (np.asarray(c, dtype=np.float32) for c in scene.bg_rgb)
    canvas = np.broadcast_to(lo + (hi - lo) * frac, (side, side, 3)).copy()
    for thing in (*scene.clutter, scene.main):
        _paint(canvas, thing, scene.style == "sketch")
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).resize((size, size), Image.BOX)
    if scene.style == "sketch":
        img = img.filter(ImageFilter.GaussianBlur(0.6))
    arr = np.asarray(img, dtype=np.float32)
    g0, g1, direction = scene.light
    if g0 != g1:
        y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1)
        ramp = (x - 0.5) * np.cos(direction) + (y - 0.5) * np.sin(direction) + 0.5
        arr = arr * (g0 + (g1 - g0) * ramp)[..., None]
    noise = np.random.default_rng(scene.noise_seed).normal(0.0, scene.noise, arr.shape)
    return Image.fromarray(np.clip(arr + noise, 0, 255).round().astype(np.uint8))
