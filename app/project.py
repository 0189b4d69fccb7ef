"""The studio's project: a story, the takes of each segment, and the undo/redo history.

Pure Python (no gradio). A project is a timeline of items; each item is a story segment
with a stable id, a "seed locked" flag and an active take. A take is one rendering of the
segment (its segment as rendered, the settings it was rendered with, the fingerprint of
the frames it continued, and the frames while they are in memory). Every edit validates
the whole result through `Story.validate` before it commits, so a failed edit leaves the
project as it was. Project files hold no paths: everything the server reads back is
inside the file itself (the init frames as PNG data) and is validated on load.
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from phenaki_core.pipelines.defaults import DEFAULT_GUIDANCE
from phenaki_core.story import MAX_PROMPT_CHARS, RenderedSegment, Segment, Story, StoryError

PROJECT_FORMAT = "phenaki-studio-project/1"
MAX_PROJECT_BYTES = 8 * 1024 * 1024
MAX_HISTORY = 100
SEGMENT_FIELDS = {"prompt", "frames", "seed", "transition"}
MAX_TAKES = 20
MAX_EXPORT_SIZE = 1024
MAX_FPS = 60
SEED_LIMIT = 2**31


class ProjectError(ValueError):
    """An edit or a project file that cannot be accepted; the message says why."""


@dataclass
class Settings:
    num_inference_steps: int = 12
    guidance_scale: float = DEFAULT_GUIDANCE
    context_frames: int = 5
    fps: float = 8
    export_size: int = 256

    def sampling_key(self) -> tuple:
        """What a rendering depends on beyond the segment and its context."""
        return (self.num_inference_steps, float(self.guidance_scale), self.context_frames)


@dataclass
class Take:
    id: int
    segment: Segment
    sampling: tuple  # Settings.sampling_key() at render time
    context_fingerprint: str
    frames: np.ndarray | None = None  # None: known recipe, frames not in memory (re-render to restore)
    # The clips' token grids (clips, latent frames, g, g), in the smallest integer type that
    # holds the codebook, and how many context frames each clip began with: exports at a size
    # the model draws draw these. None: not kept (an old file); the frames are tokenized again.
    tokens: np.ndarray | None = None
    context_lengths: tuple[int, ...] | None = None

    def rendered(self) -> RenderedSegment | None:
        if self.frames is None:
            return None
        if self.tokens is None or self.context_lengths is None:
            return RenderedSegment(self.segment, self.context_fingerprint, self.frames)
        return RenderedSegment(self.segment, self.context_fingerprint, self.frames, list(self.tokens),
                               list(self.context_lengths))

    def keep(self, frames: np.ndarray | None, tokens: np.ndarray | None = None, context_lengths=None):
        """Hold a rendering's frames with its tokens (or none): the two always change together,
        so a take never draws tokens of other frames."""
        self.frames = frames
        keep = frames is not None and tokens is not None and context_lengths is not None
        self.tokens = tokens if keep else None
        self.context_lengths = tuple(int(c) for c in context_lengths) if keep else None


@dataclass
class Item:
    id: str
    segment: Segment
    locked: bool = True
    active: int | None = None  # the id of the active take
    takes: list[Take] = field(default_factory=list)
    changed: int = 0  # the project version at which its segment or lock last changed

    def take(self, take_id: int | None) -> Take | None:
        return next((t for t in self.takes if t.id == take_id), None)


def token_dtype(codebook_size: int) -> np.dtype:
    """The smallest signed integer type that holds every code of a codebook this size."""
    return next(np.dtype(t) for t in ("int16", "int32", "int64") if codebook_size <= np.iinfo(t).max + 1)


def clean_prompt(text) -> str:
    """A prompt as the model will see it, or a ProjectError saying what is wrong with it."""
    if not isinstance(text, str):
        raise ProjectError(f"the prompt must be text, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ProjectError("the prompt contains invalid unicode (a lone surrogate); retype it") from None
    text = unicodedata.normalize("NFC", text).replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn")), None)
    if bad is not None:
        raise ProjectError(f"the prompt contains an unusable character U+{ord(bad):04X}; remove it")
    text = text.strip()
    if not text:
        raise ProjectError("the prompt is empty: describe what happens in this segment")
    # zero-width spaces, joiners and byte-order marks (Cf) and spaces (Z*) show nothing
    if all(unicodedata.category(c) == "Cf" or unicodedata.category(c).startswith("Z") for c in text):
        raise ProjectError("the prompt has no visible characters: describe what happens in this segment")
    if len(text) > MAX_PROMPT_CHARS:
        raise ProjectError(f"the prompt is {len(text)} characters; at most {MAX_PROMPT_CHARS}")
    return text


def _int(value, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or value is None:
        raise ProjectError(f"{what} must be a whole number from {lo} to {hi}, got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or value != int(value):
            raise ProjectError(f"{what} must be a whole number from {lo} to {hi}, got {value!r}")
        value = int(value)
    if not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ProjectError(f"{what} must be a whole number from {lo} to {hi}, got {value!r}")
    return int(value)


def _float(value, what: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or not lo <= value <= hi:
        raise ProjectError(f"{what} must be a number from {lo:g} to {hi:g}, got {value!r}")
    return float(value)


def random_seed() -> int:
    return secrets.randbelow(SEED_LIMIT)


def _png_b64(frame: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _png_from_b64(data, size: int) -> np.ndarray:
    if not isinstance(data, str) or len(data) > 2 * 1024 * 1024:
        raise ProjectError("init frames: each frame must be a PNG image as base64 text")
    try:
        raw = base64.b64decode(data, validate=True)
        with Image.open(io.BytesIO(raw)) as im:
            if im.format != "PNG" or im.size != (size, size):
                raise ProjectError(f"init frames: each frame must be a {size}x{size} PNG")
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except ProjectError:
        raise
    except Exception:
        raise ProjectError("init frames: a frame is not a readable PNG image") from None


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write to a temporary file beside `path`, fsync it, then rename it over `path`:
    a crash at any moment leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


class Project:
    """A timeline of segments with takes, settings, init frames and undo/redo."""

    def __init__(self, clip_frames: int = 11, temporal_patch: int = 2, frame_size: int = 64,
                 model_fps: float = 8, model: str = "phenaki-shapes-64", codebook_size: int | None = None,
                 token_shape: tuple[int, int, int] | None = None, tokenizer: str | None = None):
        self.clip_frames, self.temporal_patch, self.frame_size = clip_frames, temporal_patch, frame_size
        self.model_fps, self.model = model_fps, model
        # The model's tokens (the pipeline owns these facts): a clip's grid, the codes below which
        # every token lies, and the tokenizer's fingerprint (what the codes mean). None: unknown,
        # so renders keep no tokens (nothing could check them).
        self.codebook_size, self.tokenizer = codebook_size, tokenizer
        self.token_shape = None if token_shape is None else tuple(int(x) for x in token_shape)
        self.items: list[Item] = []
        self.settings = Settings(fps=model_fps)
        self.init_frames: np.ndarray | None = None
        self._undo: list[dict] = []
        self._redo: list[dict] = []
        self._next_take = 1
        self.version = 0  # one more for every change of the timeline or the settings
        self.actor: str | None = None  # who makes the current edit (a tab); its history entries say so
        self.made_with: str | None = None  # the model a loaded file was made with, when it says

    # -- what a project is made of -------------------------------------------------
    def limits(self) -> dict:
        return dict(clip_frames=self.clip_frames, temporal_patch=self.temporal_patch, frame_size=self.frame_size,
                    model_fps=self.model_fps, model=self.model, codebook_size=self.codebook_size,
                    token_shape=self.token_shape, tokenizer=self.tokenizer)

    def story(self) -> Story:
        s = self.settings
        return Story([replace(it.segment) for it in self.items], num_inference_steps=s.num_inference_steps,
                     guidance_scale=s.guidance_scale, context_frames=s.context_frames, model=self.model)

    def _validate(self, items: list[Item], settings: Settings):
        s = settings
        segs = [it.segment for it in items] or [Segment("x", 1, 0)]
        try:
            Story(segs, s.num_inference_steps, s.guidance_scale, s.context_frames, self.model).validate(
                self.clip_frames, self.temporal_patch)
        except StoryError as e:
            raise ProjectError(str(e)) from None
        _float(s.fps, "fps", 1, MAX_FPS)
        _int(s.export_size, "export size", 16, MAX_EXPORT_SIZE)

    def frames_from(self, duration, unit: str = "frames") -> int:
        """A duration in seconds (at the model's fps) or frames, as a frame count."""
        if unit not in ("seconds", "frames"):
            raise ProjectError(f"the duration unit must be seconds or frames, got {unit!r}")
        if isinstance(duration, bool) or not isinstance(duration, (int, float, np.integer, np.floating)) \
                or not math.isfinite(duration) or duration <= 0:
            raise ProjectError(f"the duration must be a positive number of {unit}, got {duration!r}")
        if duration > 1e7:
            raise ProjectError(f"the duration {duration:g} {unit} is far too long")
        frames = round(duration * self.model_fps) if unit == "seconds" else duration
        if unit == "frames" and frames != int(frames):
            raise ProjectError(f"a duration in frames must be a whole number, got {duration!r}")
        return int(frames)

    def make_segment(self, prompt, duration=11, unit: str = "frames", seed=0, transition="continue") -> Segment:
        return Segment(clean_prompt(prompt), self.frames_from(duration, unit),
                       _int(seed, "the seed", 0, SEED_LIMIT - 1),
                       transition if transition in ("continue", "cut") else _bad_transition(transition))

    # -- history ---------------------------------------------------------------------
    def _snapshot(self) -> dict:
        return {"items": [(it.id, replace(it.segment), it.locked, it.active) for it in self.items],
                "settings": replace(self.settings), "by": self.actor}

    def _restore(self, snap: dict):
        pool = {it.id: it for it in self._all_items()}
        on_timeline = {it.id for it in self.items}
        self.version += 1
        items = []
        for iid, seg, locked, active in snap["items"]:
            it = pool.get(iid) or Item(iid, seg)
            if iid not in on_timeline or it.segment != seg or it.locked != locked:
                it.changed = self.version
            it.segment, it.locked, it.active = replace(seg), locked, active
            items.append(it)
        self.items, self.settings = items, replace(snap["settings"])

    def _all_items(self):
        """Items on the timeline and those only in the history (deleted; their takes come back on undo)."""
        yield from self.items
        yield from getattr(self, "_graveyard", {}).values()

    def _commit(self, items: list[Item], settings: Settings | None = None):
        """Validate the new timeline, push the old one on the undo stack, install the new one."""
        settings = settings or self.settings
        self._validate(items, settings)
        before = self._snapshot()
        kept = {it.id for it in items}
        self._graveyard = {**getattr(self, "_graveyard", {}), **{it.id: it for it in self.items if it.id not in kept}}
        old = {id(it) for it in self.items}
        self.version += 1
        for it in items:
            if id(it) not in old:
                it.changed = self.version
        self.items, self.settings = items, settings
        self._push_undo(before)

    def _push_undo(self, before: dict):
        self._undo = (self._undo + [before])[-MAX_HISTORY:]
        self._redo = []

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def _check_own(self, stack: list[dict], what: str):
        """A tab undoes its own actions only: when the latest one is another tab's, say so
        (undoing it from here would revert someone else's work)."""
        by = stack[-1].get("by")
        if self.actor is not None and by is not None and by != self.actor:
            raise ProjectError(f"the last change to this project was made in another tab or window, so {what} "
                               f"here would change their work: {what} it there, or reload this page to see it")

    def undo(self):
        if not self._undo:
            raise ProjectError("nothing to undo")
        self._check_own(self._undo, "undo")
        self._redo.append(self._snapshot())
        self._remember_removed(self._undo[-1])
        self._restore(self._undo.pop())

    def redo(self):
        if not self._redo:
            raise ProjectError("nothing to redo")
        self._check_own(self._redo, "redo")
        self._undo.append(self._snapshot())
        self._remember_removed(self._redo[-1])
        self._restore(self._redo.pop())

    def _remember_removed(self, snap):
        ids = {i[0] for i in snap["items"]}
        self._graveyard = {**getattr(self, "_graveyard", {}), **{it.id: it for it in self.items if it.id not in ids}}

    # -- timeline edits (each one undoable; a failed one changes nothing) ------------------
    def _index(self, index, allow_end: bool = False) -> int:
        hi = len(self.items) if allow_end else len(self.items) - 1
        if not self.items and not allow_end:
            raise ProjectError("the timeline is empty: add a segment first")
        i = _int(index, "the segment number", 1, hi + 1) - 1
        return i

    def index_of(self, item_id: str) -> int | None:
        """The 0-based position of the item with this stable id, None when it is not on the timeline."""
        return next((i for i, it in enumerate(self.items) if it.id == item_id), None)

    def _copy_items(self) -> list[Item]:
        return list(self.items)

    def _new_item(self, segment: Segment, locked: bool = True) -> Item:
        return Item(secrets.token_hex(4), segment, bool(locked))

    def add(self, segment: Segment, index: int | None = None, locked: bool = True) -> int:
        """Insert `segment` before segment number `index` (1-based; None: at the end). Returns its number."""
        i = len(self.items) if index is None else self._index(index, allow_end=True)
        items = self._copy_items()
        items.insert(i, self._new_item(segment, locked))
        self._commit(items)
        return i + 1

    def duplicate(self, index) -> int:
        i = self._index(index)
        src = self.items[i]
        items = self._copy_items()
        items.insert(i + 1, self._new_item(replace(src.segment), src.locked))
        self._commit(items)
        return i + 2

    def delete(self, index) -> int:
        i = self._index(index)
        items = self._copy_items()
        del items[i]
        self._commit(items)
        return max(1, min(i + 1, len(items)))

    def move(self, index, delta: int) -> int:
        i = self._index(index)
        j = i + delta
        if not 0 <= j < len(self.items):
            raise ProjectError(f"segment {i + 1} is already {'first' if delta < 0 else 'last'}")
        items = self._copy_items()
        items[i], items[j] = items[j], items[i]
        self._commit(items)
        return j + 1

    def update(self, index, segment: Segment, locked: bool | None = None) -> bool:
        """Replace segment `index`'s description. Returns False (and records nothing) when nothing changed."""
        i = self._index(index)
        it = self.items[i]
        locked = it.locked if locked is None else bool(locked)
        if segment == it.segment and locked == it.locked:
            return False
        items = self._copy_items()
        # a new Item object sharing takes would let undo see the change: keep identity, swap values
        new = Item(it.id, segment, locked, it.active, it.takes)
        items[i] = new
        self._validate(items, self.settings)
        before = self._snapshot()
        self.version += 1
        it.segment, it.locked, it.changed = segment, locked, self.version
        self._push_undo(before)
        return True

    def set_settings(self, num_inference_steps=None, guidance_scale=None, fps=None, export_size=None) -> bool:
        s = replace(self.settings)
        if num_inference_steps is not None:
            s.num_inference_steps = _int(num_inference_steps, "sampling steps", 1, 64)
        if guidance_scale is not None:
            s.guidance_scale = _float(guidance_scale, "guidance", 0, 20)
        if fps is not None:
            s.fps = _float(fps, "fps", 1, MAX_FPS)
        if export_size is not None:
            s.export_size = _int(export_size, "export size", 16, MAX_EXPORT_SIZE)
        if s == self.settings:
            return False
        self._commit(self._copy_items(), s)
        return True

    def pick_take(self, index, take_no) -> None:
        """Make take number `take_no` (1-based, in the order they were made) the active one."""
        i = self._index(index)
        it = self.items[i]
        if not it.takes:
            raise ProjectError(f"segment {i + 1} has no takes yet: render it first")
        n = _int(take_no, "the take number", 1, len(it.takes))
        take = it.takes[n - 1]
        before = self._snapshot()
        new_seg = replace(take.segment)
        self._validate([Item(x.id, new_seg if x is it else x.segment) for x in self.items], self.settings)
        self.version += 1
        it.segment, it.active, it.changed = new_seg, take.id, self.version
        self._push_undo(before)

    def set_init_frames(self, frames: np.ndarray | None):
        if frames is not None:
            frames = np.asarray(frames)
            if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != (self.frame_size, self.frame_size, 3) \
                    or not 1 <= len(frames) <= self.settings.context_frames:
                raise ProjectError(f"init frames must be 1 to {self.settings.context_frames} frames of "
                                   f"{self.frame_size}x{self.frame_size} RGB")
        self.init_frames = frames

    def adopt(self, other: Project):
        """Replace the timeline, settings and init frames with `other`'s (a loaded file or an
        example) as one undoable step. Items and takes get fresh ids, so loading the same file
        twice never mixes two items up."""
        items = []
        for it in other.items:
            takes = []
            for t in it.takes:
                takes.append(Take(self._next_take, t.segment, t.sampling, t.context_fingerprint, t.frames,
                                  t.tokens, t.context_lengths))
                self._next_take += 1
            active = next((n.id for n, o in zip(takes, it.takes) if o.id == it.active), None)
            items.append(Item(secrets.token_hex(4), replace(it.segment), it.locked, active, takes))
        self._commit(items, replace(other.settings))
        self.init_frames = other.init_frames
        self.made_with = other.made_with

    # -- takes -------------------------------------------------------------------------
    def add_take(self, item_id: str, rendered: RenderedSegment, sampling: tuple) -> Take | None:
        """Record a rendering of item `item_id`. The same recipe again refreshes its take instead
        of adding one. The take becomes active when the item still describes what was rendered."""
        it = next((x for x in self._all_items() if x.id == item_id), None)
        if it is None:
            return None
        take = next((t for t in it.takes if t.segment == rendered.segment and t.sampling == sampling
                     and t.context_fingerprint == rendered.context_fingerprint), None)
        if take is None:
            take = Take(self._next_take, replace(rendered.segment), sampling, rendered.context_fingerprint)
            self._next_take += 1
            it.takes.append(take)
            if len(it.takes) > MAX_TAKES:
                drop = next(t for t in it.takes if t.id != it.active)
                it.takes.remove(drop)
        take.keep(rendered.frames, *self._packed_tokens(rendered))
        if it.segment == rendered.segment:
            it.active = take.id
        return take

    def _packed_tokens(self, rendered: RenderedSegment) -> tuple[np.ndarray | None, list | None]:
        """A rendering's clips' tokens as one compact array (int16 holds a 1,024-code
        codebook), with their context lengths; (None, None) when they cannot be kept: no
        tokens, or a model whose token facts this project was not told."""
        grids, lengths = rendered.tokens, rendered.context_lengths
        if not len(grids) or len(grids) != len(lengths) or self.codebook_size is None or self.token_shape is None:
            return None, None
        arrays = np.stack([np.asarray(g) for g in grids])
        if arrays.shape[1:] != self.token_shape:
            return None, None
        return arrays.astype(token_dtype(self.codebook_size)), list(lengths)

    def active_take(self, index: int) -> Take | None:
        it = self.items[index]
        return it.take(it.active)

    def usable(self, index: int) -> RenderedSegment | None:
        """The active take's rendering when it matches the segment and the current sampling settings."""
        t = self.active_take(index)
        if t is None or t.frames is None or t.sampling != self.settings.sampling_key() \
                or t.segment != self.items[index].segment:
            return None
        return t.rendered()

    # -- timecodes ---------------------------------------------------------------------
    def timecodes(self) -> list[tuple[float, float]]:
        out, t, fps = [], 0.0, self.settings.fps
        for it in self.items:
            d = it.segment.frames / fps
            out.append((t, t + d))
            t += d
        return out

    def total_frames(self) -> int:
        return sum(it.segment.frames for it in self.items)

    # -- files ---------------------------------------------------------------------------
    def to_dict(self, history: bool = False) -> dict:
        def seg(s: Segment) -> dict:
            return {"prompt": s.prompt, "frames": s.frames, "seed": s.seed, "transition": s.transition}

        def snap(sn: dict) -> dict:
            return {"items": [{"id": i, "segment": seg(s), "locked": lk, "active_take": a} for i, s, lk, a in sn["items"]],
                    "settings": vars(sn["settings"]).copy()}

        data = {
            "format": PROJECT_FORMAT,
            "story": self.story().to_dict() if self.items else None,
            "settings": vars(self.settings).copy(),
            "items": [{"id": it.id, "locked": it.locked, "active_take": it.active,
                       "takes": [{"id": t.id, "segment": seg(t.segment), "sampling": list(t.sampling),
                                  "context_fingerprint": t.context_fingerprint} for t in it.takes]}
                      for it in self.items],
            "init_frames": None if self.init_frames is None else [_png_b64(f) for f in self.init_frames],
            "model": self.model,
        }
        if history:
            data["history"] = {"undo": [snap(s) for s in self._undo], "redo": [snap(s) for s in self._redo]}
        return data

    def to_json(self, history: bool = False) -> str:
        return json.dumps(self.to_dict(history), indent=1, ensure_ascii=False)

    def save(self, path: str | Path, history: bool = False) -> Path:
        return atomic_write(path, self.to_json(history))

    @classmethod
    def from_dict(cls, data, **limits) -> Project:
        """A new project from a file's data; ProjectError with a clear message for anything wrong."""
        try:
            return cls._from_dict(data, **limits)
        except ProjectError:
            raise
        except StoryError as e:
            raise ProjectError(f"bad project file: {e}") from None
        except (KeyError, TypeError, AttributeError, IndexError) as e:
            raise ProjectError(f"bad project file: malformed or missing field ({type(e).__name__}: {e})") from None

    @classmethod
    def _from_dict(cls, data, **limits) -> Project:
        if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
            raise ProjectError(f"not a Phenaki Studio project (expected \"format\": \"{PROJECT_FORMAT}\")")
        p = cls(**limits)
        items_data = data.get("items") or []
        if not isinstance(items_data, list):
            raise ProjectError("bad project file: items must be a list")
        story_data = data.get("story")
        if isinstance(story_data, dict) and isinstance(story_data.get("segments"), list):
            for n, sd in enumerate(story_data["segments"], 1):
                extra = sorted(set(sd) - SEGMENT_FIELDS) if isinstance(sd, dict) else []
                if extra:
                    raise ProjectError(f"bad project file: segment {n} has unknown fields {extra} (malformed)")
        if story_data is None:
            if items_data:
                raise ProjectError("bad project file: items without a story")
            story = None
        else:
            story = Story.from_dict(story_data)
            if len(story.segments) != len(items_data):
                raise ProjectError("bad project file: the story and the items disagree on the number of segments")
        sd = data.get("settings") or {}
        if not isinstance(sd, dict):
            raise ProjectError("bad project file: settings must be an object")
        settings = Settings(
            num_inference_steps=story.num_inference_steps if story else sd.get("num_inference_steps", 12),
            guidance_scale=story.guidance_scale if story else sd.get("guidance_scale", DEFAULT_GUIDANCE),
            context_frames=story.context_frames if story else sd.get("context_frames", 5),
            fps=sd.get("fps", p.model_fps), export_size=sd.get("export_size", 256))
        items, seen, next_take = [], set(), 1
        for n, idata in enumerate(items_data):
            if not isinstance(idata, dict):
                raise ProjectError(f"bad project file: item {n + 1} must be an object")
            iid = idata.get("id")
            if not isinstance(iid, str) or not re.fullmatch(r"[0-9a-f]{8}", iid) or iid in seen:
                raise ProjectError(f"bad project file: item {n + 1} has an invalid id")
            seen.add(iid)
            seg = story.segments[n]
            seg = Segment(clean_prompt(seg.prompt), seg.frames, seg.seed, seg.transition)
            takes = []
            for tdata in idata.get("takes") or []:
                if not isinstance(tdata, dict) or not isinstance(tdata.get("segment"), dict):
                    raise ProjectError(f"bad project file: a take of segment {n + 1} is malformed")
                tseg = Segment(**tdata["segment"])
                Story([tseg], *tuple(tdata["sampling"])).validate(p.clip_frames, p.temporal_patch)
                fp = tdata.get("context_fingerprint")
                if not isinstance(fp, str) or not re.fullmatch(r"none|[0-9a-f]{16}", fp):
                    raise ProjectError(f"bad project file: a take of segment {n + 1} has a bad fingerprint")
                tid = _int(tdata.get("id"), "a take id", 1, 10**9)
                sampling = (int(tdata["sampling"][0]), float(tdata["sampling"][1]), int(tdata["sampling"][2]))
                takes.append(Take(tid, tseg, sampling, fp))
                next_take = max(next_take, tid + 1)
            if len(takes) > MAX_TAKES:
                raise ProjectError(f"bad project file: segment {n + 1} has more than {MAX_TAKES} takes")
            active = idata.get("active_take")
            if active is not None and not any(t.id == active for t in takes):
                active = None
            items.append(Item(iid, seg, bool(idata.get("locked", True)), active, takes))
        p._validate(items, settings)
        p.items, p.settings, p._next_take = items, settings, next_take
        made_with = story.model if story else data.get("model")
        p.made_with = made_with if isinstance(made_with, str) else None
        init = data.get("init_frames")
        if init is not None:
            if not isinstance(init, list) or not 1 <= len(init) <= settings.context_frames:
                raise ProjectError(f"bad project file: init frames must be a list of 1 to {settings.context_frames} images")
            p.set_init_frames(np.stack([_png_from_b64(f, p.frame_size) for f in init]))
        hist = data.get("history")
        if isinstance(hist, dict):
            p._undo = [p._snap_from(s) for s in (hist.get("undo") or [])][-MAX_HISTORY:]
            p._redo = [p._snap_from(s) for s in (hist.get("redo") or [])][-MAX_HISTORY:]
        return p

    def _snap_from(self, s: dict) -> dict:
        settings = Settings(**s["settings"])
        items = []
        for d in s["items"]:
            if not isinstance(d["id"], str) or not re.fullmatch(r"[0-9a-f]{8}", d["id"]):
                raise ProjectError("bad project file: a history entry has an invalid id")
            seg = Segment(**d["segment"])
            items.append((d["id"], seg, bool(d["locked"]), d["active_take"] if isinstance(d["active_take"], int) else None))
        self._validate([Item(i, s) for i, s, _, _ in items], settings)
        return {"items": items, "settings": settings}

    @classmethod
    def from_json(cls, text, **limits) -> Project:
        if isinstance(text, bytes):
            if len(text) > MAX_PROJECT_BYTES:
                raise ProjectError(f"the project file is too large (over {MAX_PROJECT_BYTES // 2**20} MB)")
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise ProjectError("the project file is not UTF-8 text") from None
        if len(text) > MAX_PROJECT_BYTES:
            raise ProjectError(f"the project file is too large (over {MAX_PROJECT_BYTES // 2**20} MB)")
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as e:
            raise ProjectError(f"the project file is not valid JSON: {e}") from None
        except RecursionError:
            raise ProjectError("the project file is nested too deeply") from None
        return cls.from_dict(data, **limits)

    @classmethod
    def load(cls, path: str | Path, **limits) -> Project:
        path = Path(path)
        if path.stat().st_size > MAX_PROJECT_BYTES:
            raise ProjectError(f"the project file is too large (over {MAX_PROJECT_BYTES // 2**20} MB)")
        return cls.from_json(path.read_bytes(), **limits)


def _reject_constant(name):
    raise ProjectError(f"bad project file: {name} is not a number a project may contain")


def _bad_transition(t):
    raise ProjectError(f"the transition must be 'continue' or 'cut', got {t!r}")
