"""One browser session of the studio: its project, its files, and rendering it.

A `Studio` drives `StoryRenderer` for the UI: render the whole story (only what is missing
or stale) or one segment, with a stop flag that `should_cancel` checks between sampling
steps, progress events, a take per rendering, per-session output files and an autosave
(project JSON + a frames cache, both written to a temporary file and renamed).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from phenaki_core.io import export_story, write_video
from phenaki_core.story import RenderCancelled, StoryError, StoryRenderer

from .bounds import DRAWN_CACHE_BYTES, check_export, player_size, preview_size, redraw_fits
from .bundle import BundleError, TokenSpec, check_take_tokens, read_bundle, write_bundle
from .project import Project, ProjectError, _int, atomic_write, random_seed, token_dtype
from .sheet import Sheet, SheetSegment, stills_of, write_sheet

log = logging.getLogger("phenaki.studio")
SESSION_RE = re.compile(r"[0-9a-f]{32}")
ITEM_ID_RE = re.compile(r"[0-9a-f]{8}")
MAX_VIEWS = 64  # tabs whose last view a session remembers
TOKENIZER_KEY = "tokenizer"  # in the autosave's frames.npz: the fingerprint its tokens belong to


def new_session_id() -> str:
    return secrets.token_hex(16)


def valid_session_id(sid) -> bool:
    return isinstance(sid, str) and SESSION_RE.fullmatch(sid) is not None


def project_limits(pipe, model: str) -> dict:
    return dict(clip_frames=pipe.clip_frames, temporal_patch=pipe.vqvae.config.temporal_patch_size,
                frame_size=pipe.frame_size, model_fps=pipe.fps, model=model, codebook_size=pipe.codebook_size,
                token_shape=pipe.clip_token_shape, tokenizer=pipe.tokenizer_revision)


def attach_arrays(project: Project, takes: dict[str, dict[str, np.ndarray]]) -> None:
    """Give each take of `project` its saved frames, and its tokens when they were saved and
    fit the model (`check_take_tokens`; ones that do not are left out, so that take's frames
    are tokenized again when drawn). `takes`: key -> arrays, as a bundle or the autosave holds
    them."""
    spec, fs = TokenSpec.of(project.limits()), project.frame_size
    for it in project.items:
        for t in it.takes:
            key = f"{it.id}-{t.id}"
            got = takes.get(key) or {}
            frames = got.get("frames")
            if frames is None or frames.dtype != np.uint8 or frames.shape != (t.segment.frames, fs, fs, 3):
                continue
            tokens, lengths = got.get("tokens"), got.get("context_lengths")
            if spec is None:  # nothing to check them against: not kept
                tokens = lengths = None
            elif tokens is not None and lengths is not None:
                try:
                    check_take_tokens(tokens, lengths, len(frames), spec, f"take {key}")
                    tokens = tokens.astype(token_dtype(spec.codes))
                except BundleError as e:
                    log.warning("%s; its frames will be tokenized again when drawn", e)
                    tokens = lengths = None
            t.keep(frames, tokens, lengths)


class Studio:
    """A session's project and everything made from it."""

    def __init__(self, pipe, session_id: str, projects_dir: Path, work_dir: Path, model: str):
        if not valid_session_id(session_id):
            raise ValueError("bad session id")
        self.pipe, self.id, self.model = pipe, session_id, model
        self.project = Project(**project_limits(pipe, model))
        self.save_dir = Path(projects_dir) / session_id
        self.out_dir = Path(work_dir) / session_id
        self.cancel = threading.Event()
        self.lock = threading.RLock()
        self.rendering = False
        self._frames_saved: set[str] = set()
        # take drawn at a size -> its frames (drawing takes a fifth of a second a clip; see drawn_frames)
        self._drawn: OrderedDict[str, np.ndarray] = OrderedDict()
        # tab -> (project version, item ids in order) as that tab last showed the timeline
        self.views: OrderedDict[str, tuple[int, list[str]]] = OrderedDict()

    # -- which segment a tab means ------------------------------------------------------------
    def record_view(self, tab: str | None):
        """Remember what `tab` now shows, so its next "segment N" means the segment it saw there."""
        if tab is None:
            return
        p = self.project
        self.views[tab] = (p.version, [it.id for it in p.items])
        self.views.move_to_end(tab)
        while len(self.views) > MAX_VIEWS:
            self.views.popitem(last=False)

    def locate(self, tab: str | None, ref, edit: bool = True) -> int:
        """The 0-based position now of the segment a tab means by `ref`: its stable id, or its
        number on the timeline as that tab last showed it. An edit (`edit`) of a segment that
        another tab deleted or changed since is refused; other tabs' changes elsewhere are merged
        (the edit goes to the same segment, wherever it now is)."""
        p = self.project
        if isinstance(ref, str) and ITEM_ID_RE.fullmatch(ref.strip()):
            i = p.index_of(ref.strip())
            if i is None:
                raise ProjectError(f"there is no segment with id {ref.strip()} (it was deleted): pick a segment again")
            return i
        seen = self.views.get(tab) if tab is not None else None
        if seen is None or seen[0] == p.version:
            return p._index(_number(ref))
        version, ids = seen
        n = _int(_number(ref), "the segment number", 1, max(1, len(ids)))
        if n > len(ids):
            raise ProjectError("the timeline is empty: add a segment first")
        i = p.index_of(ids[n - 1])
        if i is None:
            raise ProjectError(f"segment {n} was deleted in another tab or window since this page showed it: "
                               "pick a segment again in the Segment list (it shows the timeline as it is now)")
        if edit and p.items[i].changed > version:
            raise ProjectError(f"segment {n} was changed in another tab or window since this page showed it: "
                               "pick it again in the Segment list to see it as it is now, then make your edit")
        return i

    # -- persistence ----------------------------------------------------------------------
    @classmethod
    def restore(cls, pipe, session_id, projects_dir, work_dir, model) -> Studio:
        """The session's autosaved project (or a new one when there is none or it is unreadable)."""
        st = cls(pipe, session_id, projects_dir, work_dir, model)
        path = st.save_dir / "project.json"
        if path.is_file():
            try:
                st.project = Project.load(path, **project_limits(pipe, model))
                st._load_frames()
            except (ProjectError, OSError, ValueError) as e:
                log.warning("autosave of session %s unreadable (%s); starting afresh", session_id[:8], e)
        return st

    def _load_frames(self):
        """The autosaved renders: each take's frames, with its tokens and context lengths where
        they were saved (`<key>`, `<key>.tokens`, `<key>.context_lengths`); an autosave from
        before tokens were kept has frames alone, and those takes are tokenized again when drawn."""
        path = self.save_dir / "frames.npz"
        if not path.is_file():
            return
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            takes = {}
            try:  # tokens of another tokenizer (the server now runs another model) are left out
                ours = TOKENIZER_KEY in names and str(z[TOKENIZER_KEY][()]) == self.project.tokenizer
            except (ValueError, IndexError, TypeError):
                ours = False
            for it in self.project.items:
                for t in it.takes:
                    key = f"{it.id}-{t.id}"
                    if key in names:
                        takes[key] = {"frames": z[key]}
                        try:  # tokens that do not read are dropped, not the autosave: its frames draw again
                            takes[key].update({kind: z[f"{key}.{kind}"] for kind in ("tokens", "context_lengths")
                                               if ours and f"{key}.{kind}" in names})
                        except ValueError as e:
                            log.warning("autosaved tokens of take %s unreadable (%s); they are left out", key, e)
        attach_arrays(self.project, takes)
        self._frames_saved = names & set(_autosave_arrays(self.project))

    def autosave(self):
        with self.lock:
            p = self.project
            if not (p.items or p.can_undo() or p.can_redo() or p.init_frames is not None
                    or (self.save_dir / "project.json").exists()):
                return  # nothing made yet: an API client that only looked leaves no folder behind
            self.project.save(self.save_dir / "project.json", history=True)
            arrays = _autosave_arrays(self.project)
            if set(arrays) != self._frames_saved:
                tmp = self.save_dir / f".frames.{secrets.token_hex(6)}.tmp.npz"
                try:
                    np.savez(tmp, **arrays)
                    atomic_write(self.save_dir / "frames.npz", tmp.read_bytes())
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
                self._frames_saved = set(arrays)

    # -- rendering -------------------------------------------------------------------------
    def _renderer(self):
        p = self.project
        story = p.story()
        try:
            story.validate(p.clip_frames, p.temporal_patch)
        except StoryError as e:
            raise ProjectError(str(e)) from None
        r = StoryRenderer(self.pipe, story, init_frames=p.init_frames)
        r.results = [p.usable(i) for i in range(len(p.items))]
        return r, [it.id for it in p.items], p.settings.sampling_key()

    def status(self) -> list[str]:
        """Per segment: 'rendered', 'stale' (has a take that no longer matches) or 'not rendered'."""
        p = self.project
        if not p.items:
            return []
        r = StoryRenderer(self.pipe, p.story(), init_frames=p.init_frames)
        r.results = [p.usable(i) for i in range(len(p.items))]
        out = []
        for i, s in enumerate(r.stale()):
            has = p.active_take(i) is not None and p.active_take(i).frames is not None
            out.append("rendered" if not s else "stale" if has else "not rendered")
        return out

    def render(self, index: int | None = None, reseed: bool = False, emit=lambda ev: None):
        """Render the story (index None: every missing or stale segment, in order) or segment
        number `index` alone (1-based; with reseed and an unlocked seed, a new random seed first).
        Raises RenderCancelled when the stop flag is set, ProjectError/StoryError for a story
        that cannot be rendered."""
        with self.lock:
            p = self.project
            if index is not None:
                i = p._index(index)
                it = p.items[i]
                t = p.active_take(i)
                # regenerating an unchanged recipe with an unlocked seed: a new variation
                if reseed and not it.locked and t is not None and t.segment == it.segment:
                    p.update(index, replace(it.segment, seed=random_seed()))
            r, ids, sampling = self._renderer()
        flags = r.stale()
        targets = [index - 1] if index is not None else [i for i, s in enumerate(flags) if s]
        total = len(targets)
        emit(("start", {"total": total}))
        done = 0

        for i in (targets if index is not None else range(len(ids))):
            if index is None and not r.is_stale(i):
                continue
            def on_step(seg, clip, n_clips, step, steps, done=done):
                emit(("step", {"segment": seg, "clip": clip, "clips": n_clips, "step": step + 1, "steps": steps,
                               "done": done, "total": total}))
            try:
                res = r.render_segment(i, should_cancel=self.cancel.is_set, on_step=on_step)
            except StoryError as e:
                raise ProjectError(str(e)) from None
            with self.lock:
                take = self.project.add_take(ids[i], res, sampling)
                with contextlib.suppress(OSError):
                    self.autosave()
            done += 1
            emit(("segment", {"segment": i, "take": None if take is None else take.id, "done": done, "total": total}))
            if self.cancel.is_set():
                raise RenderCancelled(f"stopped after segment {i + 1}")

    def iter_render(self, index: int | None = None, reseed: bool = False):
        """Render in a worker thread; yield its events, ending with ('done'|'cancelled'|'error', message).
        Closing the iterator (the page went away) stops the worker within a sampling step."""
        q: queue.Queue = queue.Queue()
        self.cancel.clear()

        def work():
            self.rendering = True
            try:
                self.render(index, reseed, q.put)
                q.put(("done", "rendered"))
            except RenderCancelled as e:
                q.put(("cancelled", f"cancelled: {e}"))
            except (ProjectError, StoryError) as e:
                q.put(("error", str(e)))
            except Exception:  # the page must say what happened; the server stays up
                log.exception("render failed")
                q.put(("error", ("rendering failed unexpectedly (the server logged why); what was rendered "
                                 "before is kept: press Render again, and if it fails again, save the project "
                                 "and restart the studio")))
            finally:
                self.rendering = False

        t = threading.Thread(target=work, name=f"render-{self.id[:8]}", daemon=True)
        t.start()
        finished = False
        try:
            while not finished:
                ev = q.get()
                finished = ev[0] in ("done", "cancelled", "error")
                yield ev
        finally:
            if not finished:
                self.cancel.set()
            t.join()

    # -- files for the page ---------------------------------------------------------------
    def _file(self, *parts) -> Path:
        path = self.out_dir.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def clip_path(self, index: int) -> Path | None:
        """An MP4 of segment `index`'s (0-based) active take, made once per take."""
        p = self.project
        t = p.active_take(index)
        if t is None or t.frames is None:
            return None
        size = preview_size(len(t.frames), p.frame_size)
        path = self._file("clips", f"{p.items[index].id}-{t.id}-{p.settings.fps:g}-{size}.mp4")
        if not path.is_file():
            write_video(t.frames, path, fps=p.settings.fps, size=size)
        return path

    def thumb_path(self, index: int) -> Path | None:
        p = self.project
        t = p.active_take(index)
        if t is None or t.frames is None:
            return None
        path = self._file("thumbs", f"{p.items[index].id}-{t.id}.png")
        if not path.is_file():
            frame = t.frames[len(t.frames) // 2]
            im = Image.fromarray(frame).resize((96, 96), Image.NEAREST)
            tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp.png")
            im.save(tmp)
            tmp.replace(path)
        return path

    def story_frames(self) -> np.ndarray:
        """The whole story's frames; ProjectError unless every segment is rendered and fresh."""
        with self.lock:
            p = self.project
            if not p.items:
                raise ProjectError("the timeline is empty: add a segment and render it first")
            status = self.status()
            todo = [i + 1 for i, s in enumerate(status) if s != "rendered"]
            if todo:
                raise ProjectError(f"segment(s) {', '.join(map(str, todo))} are not rendered or are stale: "
                                   "render the story first")
            return np.concatenate([p.usable(i).frames for i in range(len(p.items))])

    def preview_path(self) -> Path:
        frames = self.story_frames()
        s = self.project.settings
        key = hashlib.sha256(frames.tobytes()).hexdigest()[:12]
        size = preview_size(len(frames), self.project.frame_size)
        path = self._file("preview", f"story-{key}-{s.fps:g}-{size}.mp4")
        if not path.is_file():
            write_video(frames, path, fps=s.fps, size=size)
        return path

    def drawn_frames(self, count: int, size: int) -> np.ndarray:
        """The first `count` segments' active takes drawn at `size`, a size the model draws:
        each take from the tokens it was sampled as (exact), or, for a take that kept none (an
        old bundle or autosave), its frames tokenized again after the frames it continued. The
        start frames are context only, as at the model's size. The caller has checked that
        those segments are rendered and fresh."""
        with self.lock:
            p = self.project
            r = StoryRenderer(self.pipe, p.story(), init_frames=p.init_frames)
            r.results = [p.usable(i) for i in range(len(p.items))]
        try:
            return np.concatenate([self._drawn_segment(r, i, size) for i in range(count)])
        except StoryError as e:
            raise ProjectError(str(e)) from None

    def _drawn_segment(self, renderer: StoryRenderer, index: int, size: int) -> np.ndarray:
        """One segment drawn at `size`, from a small cache when its take kept tokens: those
        frames depend on the tokens alone, and the player draws the whole rendered prefix again
        after every new segment. A take drawn from re-tokenized frames depends on the frames
        before it, so it is drawn each time."""
        r = renderer.results[index]
        if r is None or not len(r.tokens):
            return renderer.segment_frames(index, size)
        h = hashlib.sha256(b"".join(np.ascontiguousarray(np.asarray(t)).tobytes() for t in r.tokens))
        h.update(repr((list(map(int, r.context_lengths)), len(r.frames), size)).encode())
        key = h.hexdigest()
        with self.lock:
            hit = self._drawn.get(key)
            if hit is not None:
                self._drawn.move_to_end(key)
                return hit
        frames = renderer.segment_frames(index, size)
        with self.lock:
            self._drawn[key] = frames
            while sum(f.nbytes for f in self._drawn.values()) > DRAWN_CACHE_BYTES and len(self._drawn) > 1:
                self._drawn.popitem(last=False)
        return frames

    @staticmethod
    def _drawing_key(parts) -> bytes:
        """Which of these renderings draw from tokens: a player drawn from re-tokenized frames
        is not the one drawn from tokens, though the frames are the same."""
        return bytes(int(bool(len(r.tokens))) for r in parts)

    def draws(self, size: int | None) -> bool:
        """Whether the model draws frames of `size` itself (its learned decoder), so an export
        at that size is drawn rather than upscaled. The pipeline owns the fact."""
        return size is not None and size != self.project.frame_size and size in self.pipe.drawn_sizes

    def player_path(self, count: int) -> Path | None:
        """The story player's video: the first `count` segments (the rendered prefix), at the
        export setting's size (drawn by the model where it draws that size and the memory
        budget holds both copies, else nearest neighbour, as the export), so what plays is
        what will be exported. None when there is nothing to play."""
        with self.lock:
            p = self.project
            parts = [p.usable(i) for i in range(min(count, len(p.items)))]
            if not parts or any(r is None for r in parts):
                return None
            frames = np.concatenate([r.frames for r in parts])
            s = p.settings
            drawing = self._drawing_key(parts)
        key = hashlib.sha256(frames.tobytes() + drawing).hexdigest()[:12]
        size = player_size(len(frames), self.project.frame_size, s.export_size)
        drawn = self.draws(s.export_size) and redraw_fits(len(frames), s.export_size, size, self.project.frame_size)
        path = self._file("player", f"story-{key}-{s.fps:g}-{size}{f'-drawn{s.export_size}' if drawn else ''}.mp4")
        if not path.is_file():
            if drawn:  # drawn at the export size, then nearest up to the player's, as exported
                frames = self.drawn_frames(len(parts), s.export_size)
            tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp.mp4")
            write_video(frames, tmp, fps=s.fps, size=size)
            tmp.replace(path)
        return path

    def bundle_file(self) -> Path:
        """The project as one .zip: the JSON recipe and every take's frames (with its tokens
        when it kept them), so opening it shows the rendered story without rendering, and its
        exports at a size the model draws draw the tokens the story was sampled as."""
        path = self._file("projects", "phenaki-project.zip")
        with self.lock:
            p = self.project
            return write_bundle(path, p.to_json(), takes_arrays(p), frame_size=p.frame_size,
                                tokens=TokenSpec.of(p.limits()))

    def sheet_files(self) -> tuple[Path, Path]:
        """The storyboard sheet (PNG and PDF): per segment a few stills, prompt, timecode,
        duration, transition, seed and status, titled by the first prompt."""
        with self.lock:
            p = self.project
            if not p.items:
                raise ProjectError("the timeline is empty: add a segment first")
            statuses = self.status()
            segs = []
            for i, ((t0, t1), it) in enumerate(zip(p.timecodes(), p.items)):
                take = p.active_take(i)
                rendered = take is not None and take.frames is not None
                stills, numbers = stills_of(take.frames) if rendered else ((), ())
                number = next((n + 1 for n, t in enumerate(it.takes) if t.id == it.active), None)
                s = it.segment
                segs.append(SheetSegment(s.prompt, t0, t1, s.frames, s.transition, s.seed, statuses[i], stills,
                                         numbers, take=number))
            sheet = Sheet(p.items[0].segment.prompt, segs, p.settings.fps, p.model or self.model)
        return write_sheet(sheet, self._file("sheet", "storyboard.png"), self._file("sheet", "storyboard.pdf"))

    def export(self, fmt: str = "mp4") -> tuple[Path, Path]:
        if fmt not in ("mp4", "gif", "npy"):
            raise ProjectError(f"export format must be mp4, gif or npy (raw frames), got {fmt!r}")
        s = self.project.settings
        size = None if fmt == "npy" else int(s.export_size)  # .npy: the raw frames, as generated
        check_export(self.project.total_frames(), size, self.project.frame_size, fmt)  # before any copy
        frames = self.story_frames()
        learned = self.draws(size)
        if learned:  # the model draws this size itself: from each take's tokens, not upscaled
            frames = self.drawn_frames(len(self.project.items), size)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self._file("exports", f"phenaki-story-{stamp}-{secrets.token_hex(2)}.{fmt}")
        story = replace(self.project.story(), model_revision=self.pipe.revision)
        return export_story(frames, story, path, fps=s.fps, size=size, resample="nearest",
                            init_frames=self.project.init_frames, learned=learned)

    def project_file(self) -> Path:
        path = self._file("projects", "phenaki-project.json")
        with self.lock:
            return self.project.save(path)


def project_from_bundle(path, **limits) -> Project:
    """A project read from a bundle, with each take's frames, and its tokens where it has
    them, back in memory (checked against the recipe and the model by read_bundle: a bundle
    whose tokens do not fit the model is refused, with a plain BundleError)."""
    project_json, takes = read_bundle(path, frame_size=limits.get("frame_size"), tokens=TokenSpec.of(limits))
    p = Project.from_json(project_json, **limits)
    attach_arrays(p, takes)
    return p


def _autosave_arrays(project: Project) -> dict[str, np.ndarray]:
    """What the autosave's frames.npz holds: per take in memory its frames under its key,
    and its tokens and context lengths beside them when it kept them (a few kB a clip)."""
    arrays, tokens = {}, False
    for key, kinds in takes_arrays(project).items():
        arrays[key] = kinds["frames"]
        arrays.update({f"{key}.{kind}": a for kind, a in kinds.items() if kind != "frames"})
        tokens = tokens or "tokens" in kinds
    if tokens and project.tokenizer is not None:
        arrays[TOKENIZER_KEY] = np.array(project.tokenizer)  # what the tokens mean (a model swap changes it)
    return arrays


def takes_arrays(project: Project) -> dict[str, dict[str, np.ndarray]]:
    """Each take's arrays in memory, keyed `<item id>-<take id>` as the autosave and the bundle
    key them: its frames, and its tokens with their context lengths when it kept them."""
    out = {}
    for it in project.items:
        for t in it.takes:
            if t.frames is None:
                continue
            arrays = {"frames": t.frames}
            if t.tokens is not None and t.context_lengths is not None:
                arrays["tokens"] = t.tokens
                arrays["context_lengths"] = np.asarray(t.context_lengths, dtype=np.int16)
            out[f"{it.id}-{t.id}"] = arrays
    return out


def _number(ref):
    """A segment number as the page or an API client sends it (an int, a float, or text)."""
    if isinstance(ref, str):
        try:
            return int(ref.strip())
        except ValueError:
            raise ProjectError(f"the segment must be a number or a segment id, got {ref[:40]!r}") from None
    return ref
