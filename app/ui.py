"""The studio page: a timeline of prompts, rendering with progress, takes, export.

`build_demo(pipe, projects_dir=...)` returns the gr.Blocks. Every event that changes or
reads the project has an `api_name`, so the page and `gradio_client` drive the same code.
Each browser session owns a `Studio` (its project) in a gr.State; its id lives in a
gr.BrowserState so that a reload or a server restart finds the autosave again.
"""
from __future__ import annotations

import functools
import html
import os
import secrets
import tempfile
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
import gradio as gr  # noqa: E402

from phenaki_core.io import frame_strip, load_init_frames  # noqa: E402
from phenaki_core.pipelines.defaults import DEFAULT_GUIDANCE  # noqa: E402
from phenaki_core.story import MAX_PROMPT_CHARS, Segment  # noqa: E402
from phenaki_core.text.vocabulary import (  # noqa: E402
    VocabularyError,
    closest_words,
    load_vocabulary,
    suggestions,
    unknown_words,
)

from . import bounds
from .bounds import MAX_UPLOAD_BYTES, launch_kwargs  # noqa: F401  (app.py may ask them here)
from .bundle import BundleError, is_bundle
from .display import (
    STUDIO_CSS,
    Card,
    board_html,
    picked_segment,
    playable_segments,
    player_marks_html,
    player_note,
    prompt_words_html,
    seed_hint,
    shortcuts_html,
    story_status,
    studio_js,
    thumbnail_data_uri,
    timecode,
    undo_notice,
)
from .inputs import RawNumber, parse_bool, parse_choice, parse_number, unchecked
from .messages import plain
from .project import Project, ProjectError  # noqa: E402
from .render import Studio, project_from_bundle, project_limits, valid_session_id  # noqa: E402
from .sessions import Sessions

STORAGE_KEY = "phenaki-studio-session"

# Each goes back the way it came, so the object stays in the frame (2 px a frame, 64 px wide).
EXAMPLES = {
    "Red circle: motion, then colour, then shape": [
        ("a red circle moves right", 11), ("a red circle moves left", 11),
        ("a blue circle moves right", 11), ("a blue square moves left", 11)],
    "Blue square grows on gray": [
        ("a blue square grows on a gray background", 11), ("a blue square shrinks on a gray background", 11)],
    "Yellow triangle's trip": [
        ("a yellow triangle moves up on a navy background", 11), ("a white triangle moves down on a navy background", 11),
        ("a white triangle grows on a navy background", 11)],
    "Cut between scenes": [
        ("a green circle moves down", 11), ("a purple triangle stays still on a gray background", 11)],
}


def _example_project(name: str, limits: dict) -> Project:
    if name not in EXAMPLES:
        raise ProjectError(f"no example called {name!r}; pick one of: {', '.join(EXAMPLES)}")
    p = Project(**limits)
    for n, (prompt, frames) in enumerate(EXAMPLES[name]):
        transition = "cut" if name.startswith("Cut") and n else "continue"
        p.add(Segment(prompt, frames, seed=n + 1, transition=transition))
    return p


def _secret(projects_dir: Path) -> str:
    """A fixed secret for BrowserState, made once per projects folder and kept there."""
    path = projects_dir / ".browser-state-secret"
    if not path.is_file():
        projects_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


# What the page adds to display's styles: the page's width, the danger button, the header.
PAGE_CSS = """
.gradio-container { max-width: 1760px !important; }
.ph-header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; }
.ph-header h1 { margin: 0; font-size: 24px; }
.ph-header span { opacity: .8; }
.ph-status { font-size: 15px; margin: 2px 0; }
.ph-total { opacity: .75; margin-left: 8px; white-space: nowrap; }
.ph-note:empty, #player-note-box:has(.ph-note:empty) { display: none; }
.ph-note { font-size: 14px; opacity: .8; }
.ph-hint { font-size: 13px; opacity: .8; padding: 2px 10px 6px; }
.ph-board-title { margin: 0; }
#more-row { border-top: 1px solid var(--border-color-primary, #ddd); padding-top: 8px; }
.ph-danger, button.ph-danger { color: #c0262d !important; border-color: #e5a3a6 !important; }
#story-player video { image-rendering: pixelated; }
"""


def build_demo(pipe, projects_dir: str | Path | None = None, work_dir: str | Path | None = None,
               model: str | None = None, model_dir: str | Path | None = None) -> gr.Blocks:
    """The studio page. `model_dir`: the model folder whose vocabulary.json flags prompt words
    (default: the folder the pipeline was loaded from; none there: no flags)."""
    projects_dir = Path(projects_dir or Path.cwd() / "outputs" / "projects").resolve()
    work_dir = Path(work_dir or Path(tempfile.gettempdir()) / "phenaki-studio").resolve()
    model = model or "phenaki-shapes-64"
    limits = project_limits(pipe, model)
    fps = pipe.fps
    sessions = Sessions(pipe, projects_dir, work_dir, model)
    model_dir = model_dir or getattr(pipe, "name_or_path", None)
    try:
        vocab = load_vocabulary(model_dir) if model_dir and Path(str(model_dir)).is_dir() else None
    except VocabularyError as e:  # an unusable file: the page works, without word checks
        __import__("logging").getLogger("phenaki.studio").warning("%s; prompt words are not checked", e)
        vocab = None
    vocab_suggestions = suggestions(vocab) if vocab is not None else {}

    def tab_of(request) -> str | None:
        """Who asks: Gradio's id for one page load or one API client."""
        return getattr(request, "session_hash", None)

    def ensure(st, request) -> Studio:
        """API clients run no load event: their first call makes their session (one, however
        many first calls arrive at once)."""
        return sessions.ensure(st, tab_of(request))

    # -- what the page shows --------------------------------------------------------------
    def summary(st: Studio, number) -> dict:
        p = st.project
        status = st.status()
        segs = []
        for i, ((t0, t1), it) in enumerate(zip(p.timecodes(), p.items)):
            s = it.segment
            segs.append({
                "number": i + 1, "id": it.id, "prompt": s.prompt, "frames": s.frames, "seconds": round(s.frames / fps, 3),
                "start": round(t0, 3), "end": round(t1, 3), "seed": s.seed, "seed_locked": it.locked,
                "transition": s.transition, "status": status[i],
                "takes": [{"take": n + 1, "seed": t.segment.seed, "prompt": t.segment.prompt,
                           "in_memory": t.frames is not None} for n, t in enumerate(it.takes)],
                "active_take": next((n + 1 for n, t in enumerate(it.takes) if t.id == it.active), None)})
        s = p.settings
        return {"project_id": st.id, "version": p.version, "segments": segs, "selected": number, "total_frames": p.total_frames(),
                "total_seconds": round(p.total_frames() / s.fps, 3),
                "settings": {"steps": s.num_inference_steps, "guidance": s.guidance_scale, "fps": s.fps,
                             "export_size": s.export_size, "context_frames": s.context_frames},
                "init_frames": 0 if p.init_frames is None else len(p.init_frames),
                "can_undo": p.can_undo(), "can_redo": p.can_redo(), "model": p.model, "made_with": p.made_with,
                "limits": {"max_upload_mb": MAX_UPLOAD_BYTES // 2**20, "max_image_side": bounds.MAX_IMAGE_SIDE,
                           "max_export_mb": bounds.EXPORT_BUDGET_BYTES // 2**20}}

    def cards(st: Studio, number, statuses, rendering: int | None = None, fraction: float | None = None):
        """The board's cards, from the same statuses the status sentence is made from."""
        p = st.project
        out = []
        for i, ((t0, t1), it) in enumerate(zip(p.timecodes(), p.items)):
            take = p.active_take(i)
            image = thumbnail_data_uri(take.frames[len(take.frames) // 2]) if take and take.frames is not None else None
            status = "rendering" if i == rendering else statuses[i]
            out.append(Card(i + 1, t0, t1, it.segment.prompt, status, image,
                            take=next((n + 1 for n, t in enumerate(it.takes) if t.id == it.active), None),
                            takes=len(it.takes), progress=fraction if i == rendering else None))
        return out

    def story_view(st: Studio, number, rendering: int | None = None, fraction: float | None = None,
                   player: bool = True) -> list:
        """Board, story player, status sentence, marks and note, all from one status list."""
        p = st.project
        statuses = st.status()
        shown = [("rendering" if i == rendering else s) for i, s in enumerate(statuses)]
        total = p.total_frames()
        status_line = (f"<div id='story-status' class='ph-status'>{html.escape(story_status(shown))} "
                       f"<span class='ph-total'>Story length <b id='story-length'>{timecode(total / p.settings.fps)}"
                       f"</b> ({total} frames at {p.settings.fps:g} fps)</span></div>")
        playable = playable_segments(statuses)
        if player:
            path = st.player_path(playable) if playable else None
            video = str(path) if path else None
        else:
            video = gr.skip()
        marks = player_marks_html(p.timecodes(), [it.segment.prompt for it in p.items], number)
        note = f"<div id='player-note' class='ph-note'>{html.escape(player_note(statuses))}</div>"
        return [board_html(cards(st, number, statuses, rendering, fraction), number), video, status_line, marks, note]

    def takes_update(st: Studio, number):
        p = st.project
        if not p.items or not number:
            return gr.update(choices=[], value=None)
        it = p.items[number - 1]
        choices = [(f"Take {n + 1} · seed {t.segment.seed} · {t.segment.prompt[:40]}", n + 1)
                   for n, t in enumerate(it.takes)]
        active = next((n + 1 for n, t in enumerate(it.takes) if t.id == it.active), None)
        return gr.update(choices=choices, value=active)

    def clip(st: Studio, number):
        if not st.project.items or not number:
            return None
        path = st.clip_path(number - 1)
        return None if path is None else str(path)

    def clamp(st: Studio, number) -> int | None:
        n = len(st.project.items)
        if not n:
            return None
        if isinstance(number, str) and st.project.index_of(number.strip()) is not None:
            return st.project.index_of(number.strip()) + 1
        try:
            number = int(number)
        except (TypeError, ValueError):
            number = 1
        return min(max(number, 1), n)

    def counter(text) -> str:
        n = len(text or "")
        warn = " style='color:#c33;font-weight:600'" if n > MAX_PROMPT_CHARS else ""
        return f"<span{warn}>{n} / {MAX_PROMPT_CHARS} characters</span>"

    def word_check(text) -> str:
        if vocab is None or not isinstance(text, str):
            return ""
        unknown = unknown_words(text, vocab)
        return prompt_words_html(text, unknown, vocab_suggestions, {w: closest_words(w, vocab) for w in unknown})

    def hint(locked, seed) -> str:
        try:
            return f"<div id='seed-hint' class='ph-hint'>{html.escape(seed_hint(bool(locked), int(seed)))}</div>"
        except (TypeError, ValueError):
            return f"<div id='seed-hint' class='ph-hint'>{html.escape(seed_hint(bool(locked), 0))}</div>"

    def view(st: Studio, number, unit="frames", player=True):
        p = st.project
        number = clamp(st, number)
        unit = unit if unit in ("seconds", "frames") else "frames"
        if number:
            it = p.items[number - 1]
            s = it.segment
            editor = [s.prompt, counter(s.prompt), s.frames / fps if unit == "seconds" else s.frames, unit,
                      s.seed, it.locked, s.transition]
            notes = [hint(it.locked, s.seed), word_check(s.prompt)]
        else:
            editor = [gr.update(), counter(""), gr.update(), unit, gr.update(), gr.update(), gr.update()]
            notes = [gr.update(), gr.update()]
        seg_choices = [(f"{i + 1}: {it.segment.prompt[:40]}", i + 1) for i, it in enumerate(p.items)]
        s = p.settings
        init = None if p.init_frames is None else frame_strip(p.init_frames)
        board_, player_, *more = story_view(st, number, player=player)
        return [st, summary(st, number), board_, player_, gr.update(choices=seg_choices, value=number),
                *editor, takes_update(st, number), clip(st, number),
                gr.update(interactive=p.can_undo()), gr.update(interactive=p.can_redo()),
                s.num_inference_steps, s.guidance_scale, s.fps, s.export_size, init, *more, *notes]

    def fail(e: Exception):
        raise gr.Error(plain(e), duration=12, print_exception=False)

    def progress_html(text: str, overall: float = 0.0, segment: float = 0.0, state: str = "idle") -> str:
        def bar(f, colour):
            return (f"<div style='height:8px;background:rgba(128,128,128,.25);border-radius:4px;margin:3px 0'>"
                    f"<div style='height:8px;width:{max(0, min(1, f)) * 100:.1f}%;background:{colour};"
                    f"border-radius:4px'></div></div>")
        # the bars only while a render runs: at rest the line alone, so the board stays near the player
        bars = (f"<div style='font-size:.8em;opacity:.7'>story</div>{bar(overall, '#4a7bff')}"
                f"<div style='font-size:.8em;opacity:.7'>segment</div>{bar(segment, '#2e9d4f')}"
                if state == "running" else "")
        return (f"<div id='progress-box' data-state='{state}'><div id='progress-text'>{html.escape(text)}</div>"
                f"{bars}</div>")

    # -- the page ------------------------------------------------------------------------------
    player_height = bounds.PLAYER_MIN
    with gr.Blocks(title="Phenaki Studio", delete_cache=(3600, 86400), analytics_enabled=False) as demo:
        state = gr.State(None)
        sid_store = gr.BrowserState("", storage_key=STORAGE_KEY, secret=_secret(projects_dir))
        # every gesture that picks a segment (a card, a mark, a key) writes "N:stamp" here
        pick = gr.Textbox(visible="hidden", elem_id="board-pick")
        gr.HTML(f"<div class='ph-header'><h1>Phenaki Studio</h1><span>Write a story as a row of prompts, render it, "
                f"rewrite one segment and regenerate it with everything before it kept. Model "
                f"<b>{html.escape(model)}</b> · {pipe.frame_size}×{pipe.frame_size} · {fps} fps</span></div>",
                elem_id="header", padding=False)
        with gr.Row(equal_height=False, elem_id="top-row"):
            with gr.Column(scale=3, min_width=560, elem_id="player-column"):
                player = gr.Video(label="Story", elem_id="story-player", interactive=False, autoplay=False, loop=True,
                                  height=player_height)
                marks = gr.HTML(player_marks_html([], []), elem_id="marks", padding=False)
                note = gr.HTML(elem_id="player-note-box", padding=False)
                status_line = gr.HTML(elem_id="story-status-box", padding=False)
                render_all_btn = gr.Button("▶ Render story", variant="primary", size="lg", elem_id="render-all")
                with gr.Row(elem_id="progress-row", equal_height=False):
                    progress = gr.HTML(progress_html("Idle."), elem_id="progress", padding=False)
                    cancel_btn = gr.Button("■ Stop rendering", variant="secondary", size="sm", elem_id="cancel",
                                           scale=0, min_width=140)
                # Gradio's own tracker (queue position, elapsed time) shows here, over nothing else
                queue_box = gr.HTML("<div style='min-height:1.2em'></div>", elem_id="queue-status", padding=False)
                # the board sits under the player, in the first screen, beside the editor
                with gr.Row(elem_id="board-head"):
                    gr.HTML("<h3 class='ph-board-title'>Board</h3>", padding=False)
                    undo_btn = gr.Button("↶ Undo", elem_id="undo", size="sm", interactive=False, scale=0, min_width=90)
                    redo_btn = gr.Button("↷ Redo", elem_id="redo", size="sm", interactive=False, scale=0, min_width=90)
                board = gr.HTML(elem_id="board", padding=False)
            with gr.Column(scale=2, min_width=320, elem_id="editor-column"):
                with gr.Group(elem_id="editor"):
                    seg_pick = gr.Dropdown(label="Segment", choices=[], value=None, elem_id="seg-pick",
                                           allow_custom_value=True)
                    prompt = gr.Textbox(label="Prompt", lines=2, max_lines=4, elem_id="prompt",
                                        placeholder="a red circle moves right")
                    count = gr.HTML(counter(""), elem_id="prompt-counter", padding=False)
                    words = gr.HTML(word_check(""), elem_id="words", padding=False)
                    with gr.Row():
                        duration = RawNumber(11, label="Duration", elem_id="duration", min_width=100)
                        unit = unchecked(gr.Radio, ["frames", "seconds"], value="frames", label="Unit",
                                         elem_id="duration-unit", min_width=160)
                    with gr.Row():
                        seed = RawNumber(0, label="Seed", precision=0, elem_id="seed", min_width=100)
                        locked = gr.Checkbox(True, label="Lock seed", elem_id="seed-locked", min_width=120)
                        transition = unchecked(gr.Radio, ["continue", "cut"], value="continue", label="Transition",
                                               elem_id="transition", min_width=160)
                    seed_note = gr.HTML(hint(True, 0), elem_id="seed-hint-box", padding=False)
                with gr.Row():
                    apply_btn = gr.Button("Apply changes", elem_id="apply", size="sm", variant="primary")
                    render_seg_btn = gr.Button("⟳ Regenerate this segment", elem_id="render-segment", size="sm")
                take_pick = unchecked(gr.Radio, [], label="Takes (pick the active one)", elem_id="takes")
                with gr.Row():
                    add_btn = gr.Button("+ Add at end", elem_id="add", size="sm")
                    insert_btn = gr.Button("+ Insert before this", elem_id="insert", size="sm")
                with gr.Accordion("This segment's clip", open=True, elem_id="clip-accordion"):
                    clip_video = gr.Video(label="Segment clip", show_label=False, elem_id="clip-video",
                                          interactive=False, autoplay=True, loop=True, height=200)
                with gr.Row(elem_id="more-row"):
                    dup_btn = gr.Button("Duplicate", elem_id="duplicate", size="sm")
                    up_btn = gr.Button("▲ Earlier", elem_id="move-up", size="sm")
                    down_btn = gr.Button("▼ Later", elem_id="move-down", size="sm")
                    del_btn = gr.Button("Delete segment", elem_id="delete", size="sm", elem_classes=["ph-danger"])
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Export", elem_id="tab-video"):
                with gr.Row():
                    export_fmt = unchecked(gr.Radio, ["mp4", "gif", "npy"], value="mp4", label="Export format",
                                           elem_id="export-format")
                    export_btn = gr.Button("Export video + recipe", variant="primary", elem_id="export")
                    preview_btn = gr.Button("Preview the export", elem_id="preview")
                    sheet_btn = gr.Button("Storyboard sheet (PNG + PDF)", elem_id="sheet")
                with gr.Row():
                    story_video = gr.Video(label="Story", elem_id="story-video", interactive=False, height=300)
                    export_files = gr.File(label="Export (video and the .story.json that re-renders it)",
                                           file_count="multiple", elem_id="export-files", interactive=False)
                    sheet_files = gr.File(label="Storyboard sheet", file_count="multiple", elem_id="sheet-files",
                                          interactive=False)
            with gr.Tab("Project", elem_id="tab-project"):
                with gr.Row():
                    with gr.Column():
                        bundle_btn = gr.Button("Save project (.zip, with its renders)", variant="primary",
                                               elem_id="save-bundle")
                        save_btn = gr.Button("Save recipe only (.json)", elem_id="save-project", size="sm")
                        project_out = gr.File(label="Project file", elem_id="project-file", interactive=False)
                    with gr.Column():
                        project_in = unchecked(gr.File, label="Open a project (.zip or .json)",
                                               file_types=[".json", ".zip"], type="filepath", elem_id="project-upload")
                    with gr.Column():
                        example_pick = gr.Dropdown(list(EXAMPLES), value=next(iter(EXAMPLES)), label="Examples",
                                                   elem_id="example-pick")
                        example_btn = gr.Button("Load example", elem_id="load-example")
                        new_btn = gr.Button("New empty project", elem_id="new-project", size="sm")
                        project_id_in = gr.Textbox(label="Open a project by its id (press Enter)", max_lines=1,
                                                   elem_id="project-id", placeholder="the project_id under Details")
            with gr.Tab("Start from an image or video", elem_id="tab-init"):
                gr.Markdown("The first segment animates an uploaded image or continues an uploaded video "
                            f"(its last frames, cropped to {pipe.frame_size}x{pipe.frame_size}). "
                            "Set the first segment's transition to *continue*.")
                with gr.Row():
                    init_in = unchecked(gr.File, label="Image or video", type="filepath", elem_id="init-upload",
                                        file_types=["image", "video"])
                    init_preview = gr.Image(label="Frames the story starts from", elem_id="init-preview",
                                            interactive=False, height=120)
                clear_init_btn = gr.Button("Remove the start frames", elem_id="clear-init", size="sm")
            with gr.Tab("Settings", elem_id="tab-settings"):
                with gr.Row():
                    steps = RawNumber(12, label="Sampling steps (1-64)", precision=0, elem_id="steps")
                    guidance = RawNumber(DEFAULT_GUIDANCE, label="Guidance (0-20)", elem_id="guidance")
                    fps_in = RawNumber(fps, label="Playback fps", elem_id="fps")
                    drawn = [n for n in pipe.drawn_sizes if n != pipe.frame_size]
                    size_in = RawNumber(256, label="Export size (pixels, longer side)", precision=0,
                                        elem_id="export-size",
                                        info=(f"At {' or '.join(map(str, drawn))} the model draws the frames itself "
                                              "(sharp); other sizes are its frames upscaled." if drawn else
                                              f"The model draws {pipe.frame_size} pixels; larger exports are "
                                              "upscaled (nearest neighbour, crisp)."))
                settings_btn = gr.Button("Apply settings", elem_id="apply-settings")
        with gr.Accordion("Keyboard shortcuts", open=False, elem_id="keys-accordion"):
            gr.HTML(shortcuts_html(), padding=False)
        with gr.Accordion("Details (JSON)", open=False, elem_id="summary-accordion"):
            summary_json = gr.JSON(elem_id="summary")

        # API clients read answers by position: the board and the player took the places of the
        # timeline table and the thumbnail gallery; what is new comes after what was there.
        editor = [prompt, count, duration, unit, seed, locked, transition]
        STORY_MORE = [status_line, marks, note]
        VIEW = [state, summary_json, board, player, seg_pick, *editor, take_pick, clip_video, undo_btn, redo_btn,
                steps, guidance, fps_in, size_in, init_preview, *STORY_MORE, seed_note, words]
        RENDER_OUT = [state, summary_json, board, player, clip_video, take_pick, progress, seed, undo_btn, redo_btn,
                      *STORY_MORE, seed_note]
        LIMIT = bounds.EVENT_CONCURRENCY
        EDIT = dict(outputs=VIEW, concurrency_limit=LIMIT["edit"], concurrency_id="edit", show_progress="hidden")
        UPLOAD = dict(outputs=VIEW, concurrency_limit=LIMIT["files"], concurrency_id="files", show_progress="hidden")

        def guarded(fn):
            """An event on the project: the session made or found, the edit made as the asking
            tab (its undo history says so), autosaved, what the tab now shows remembered, and a
            refusal turned into a plain-text message."""
            @functools.wraps(fn)
            def run(st, request: gr.Request, *args):
                tab = tab_of(request)
                st = ensure(st, request)
                try:
                    with st.lock:
                        st.project.actor = tab
                        try:
                            out = fn(st, request, *args)
                        finally:
                            st.project.actor = None
                        st.autosave()
                        st.record_view(tab)
                    return out
                except ProjectError as e:
                    fail(e)
            return run

        def seg_fields(st, prompt, duration, unit, seed, transition):
            unit = parse_choice(unit, "the duration unit", ("frames", "seconds"))
            return st.project.make_segment(prompt, parse_number(duration, "the duration"), unit,
                                           parse_number(seed, "the seed"), transition)

        # -- session: restore on page load -----------------------------------------------------
        def on_load(sid, request: gr.Request):
            st = sessions.open(sid)
            out = [st.id, *view(st, 1)]
            with st.lock:
                st.record_view(tab_of(request))
            return out

        demo.load(on_load, [sid_store], [sid_store, *VIEW], api_visibility="private", show_progress="hidden")

        # -- timeline edits ----------------------------------------------------------------------
        # A segment is named by the asking tab's number for it (as that tab last showed the
        # timeline) or by its stable id; `locate` turns either into where it is now, and refuses
        # an edit of a segment another tab changed or deleted since.
        @guarded
        def add_segment(st, request: gr.Request, number, prompt, duration, unit, seed, locked, transition):
            """Append a segment made from the given fields."""
            seg = seg_fields(st, prompt, duration, unit, seed, transition)
            return view(st, st.project.add(seg, locked=parse_bool(locked, "the seed lock")), unit)

        @guarded
        def insert_segment(st, request: gr.Request, number, prompt, duration, unit, seed, locked, transition):
            """Insert a segment made from the given fields before segment `number` (or its id)."""
            seg = seg_fields(st, prompt, duration, unit, seed, transition)
            lock = parse_bool(locked, "the seed lock")
            where = st.locate(tab_of(request), number, edit=False) + 1 if st.project.items else 1
            return view(st, st.project.add(seg, index=where, locked=lock), unit)

        @guarded
        def update_segment(st, request: gr.Request, number, prompt, duration, unit, seed, locked, transition):
            """Replace segment `number`'s (or id's) prompt, duration, seed, seed lock and transition."""
            p = st.project
            seg = seg_fields(st, prompt, duration, unit, seed, transition)
            lock = parse_bool(locked, "the seed lock")
            i = st.locate(tab_of(request), number)
            p.update(i + 1, seg, locked=lock)
            return view(st, i + 1, unit)

        @guarded
        def apply_pending(st, request: gr.Request, number, prompt, duration, unit, seed, locked, transition):
            """Before a render: apply the editor's fields to the selected segment when they differ."""
            p = st.project
            if p.items and number and isinstance(prompt, str) and prompt.strip():
                seg = seg_fields(st, prompt, duration, unit, seed, transition)
                lock = parse_bool(locked, "the seed lock")
                i = st.locate(tab_of(request), number)
                if seg != p.items[i].segment or lock != p.items[i].locked:
                    p.update(i + 1, seg, locked=lock)
                number = i + 1
            return view(st, number, unit)

        def positional(action):
            """An edit of one segment, named as the tab saw it."""
            @guarded
            def run(st, request: gr.Request, number, unit):
                i = st.locate(tab_of(request), number)
                return view(st, action(st.project, i + 1), unit)
            return run

        duplicate_segment = positional(lambda p, n: p.duplicate(n))
        duplicate_segment.__doc__ = "Copy segment `number` (or id) right after it."
        def delete_and_say(p, n):
            out = p.delete(n)
            gr.Info(undo_notice(f"Deleted segment {n}"))
            return out

        delete_segment = positional(delete_and_say)
        delete_segment.__doc__ = "Delete segment `number` (or id); undo brings it back with its takes."
        move_up = positional(lambda p, n: p.move(n, -1))
        move_up.__doc__ = "Move segment `number` (or id) one place earlier."
        move_down = positional(lambda p, n: p.move(n, +1))
        move_down.__doc__ = "Move segment `number` (or id) one place later."

        @guarded
        def undo(st, request: gr.Request, number, unit):
            """Undo this tab's (or API client's) last change; another tab's change is undone there."""
            st.project.undo()
            return view(st, number, unit)

        @guarded
        def redo(st, request: gr.Request, number, unit):
            """Redo what this tab undid."""
            st.project.redo()
            return view(st, number, unit)

        @guarded
        def select_segment(st, request: gr.Request, number, unit):
            """Show segment `number` (or id) in the editor, with its clip and takes."""
            try:
                i = st.locate(tab_of(request), number, edit=False)
            except ProjectError:
                if not st.project.items or isinstance(number, str) and number.strip() and not number.strip().isdigit():
                    raise
                i = 0  # the segment this tab saw is gone: show the timeline as it is now
            return view(st, i + 1, unit)

        def pick_segment(st, value, unit, request: gr.Request):
            """A card, a player mark or a key picked a segment ("N:stamp"): the editor shows it; the
            player keeps playing (the page seeks it), so it is not sent again."""
            n = picked_segment(value)
            if n is None:
                return [gr.skip()] * len(VIEW)
            out = select_segment(st, request, n, unit)
            return [gr.skip() if c is player else v for c, v in zip(VIEW, out)]

        @guarded
        def pick_take(st, request: gr.Request, number, take):
            """Make take number `take` of segment `number` (or id) the active one (its prompt and seed come back)."""
            i = st.locate(tab_of(request), number)
            st.project.pick_take(i + 1, parse_number(take, "the take number"))
            return view(st, i + 1)

        @guarded
        def set_settings(st, request: gr.Request, number, steps, guidance, fps_value, size):
            """Sampling steps, guidance, playback fps and export size (changing steps or guidance makes every
            segment stale)."""
            st.project.set_settings(parse_number(steps, "sampling steps"), parse_number(guidance, "guidance"),
                                    parse_number(fps_value, "fps"), parse_number(size, "export size"))
            return view(st, number)

        @guarded
        def load_example(st, request: gr.Request, name):
            """Replace the timeline with an example story (undoable)."""
            had = bool(st.project.items)
            st.project.adopt(_example_project(name, limits))
            if had:
                gr.Info(undo_notice("Loaded the example over your story"))
            return view(st, 1)

        @guarded
        def new_project(st, request: gr.Request):
            """An empty timeline (undoable)."""
            had = bool(st.project.items)
            st.project.adopt(Project(**limits))
            if had:
                gr.Info(undo_notice("Started a new project"))
            return view(st, None)

        @guarded
        def load_project(st, request: gr.Request, path):
            """Load a project file: a bundle (.zip: recipe and renders, shown at once) or a recipe
            (.json). Validated; the current project stays as it was when the file is bad, and
            loading over a story is one undoable step."""
            if not path or not isinstance(path, str):
                raise ProjectError("choose a project file (.zip or .json) to load")
            try:
                if is_bundle(path):
                    try:
                        other = project_from_bundle(path, **limits)
                    except BundleError as e:
                        raise ProjectError(str(e)) from None
                else:
                    bounds.check_upload_size(path, bounds.MAX_PROJECT_FILE_BYTES, "8 MB")
                    other = Project.load(path, **limits)
            finally:
                discard_upload(path)
            had = bool(st.project.items)
            st.project.adopt(other)
            if had:
                gr.Info(undo_notice("Opened the project over your story"))
            if other.made_with is not None and other.made_with != model:
                gr.Warning(plain(f"This project was made with the model {other.made_with!r}; it renders here with "
                                 f"{model!r}, so its renders will differ: render it again to see it with this model."))
            return view(st, 1)

        @guarded
        def set_init(st, request: gr.Request, number, path):
            """Start the story from an uploaded image (animate it) or video (continue its last frames)."""
            if not path or not isinstance(path, str):
                raise ProjectError("choose an image or a video")
            try:
                bounds.check_init_upload(path)  # the header only, before any decoding
                try:
                    frames = load_init_frames(path, size=pipe.frame_size,
                                              max_frames=st.project.settings.context_frames)
                except (ValueError, OSError):
                    raise ProjectError("this file could not be decoded as an image or a video: upload a PNG or "
                                       "JPEG image, or an MP4, WebM or GIF video") from None
            finally:
                discard_upload(path)
            st.project.set_init_frames(frames)
            return view(st, number)

        @guarded
        def clear_init(st, request: gr.Request, number):
            """Remove the uploaded start frames."""
            st.project.set_init_frames(None)
            return view(st, number)

        @guarded
        def open_project(st_unused, request: gr.Request, project_id):
            """Work on the project with this id (the `project_id` every answer carries), also after a
            restart of the server; an empty id starts a new project. Keep the id private: it is the key."""
            pid = (project_id or "").strip() if isinstance(project_id, str) else project_id
            if pid and not valid_session_id(pid):
                raise ProjectError("a project id is 32 characters, 0-9 and a-f, as the project_id of an earlier "
                                   "answer; leave it empty to start a new project")
            st = sessions.open(pid or None, client=tab_of(request))
            with st.lock:
                out = view(st, 1)
                st.record_view(tab_of(request))
            return out

        def discard_upload(path):
            """Gradio keeps every upload in its cache until delete_cache runs; a file the studio
            has read (or refused) is of no more use there."""
            try:
                from gradio.utils import get_upload_folder

                cache = Path(get_upload_folder()).resolve()
                target = Path(path).resolve()
                if cache in target.parents and target.is_file():
                    target.unlink()
            except OSError:
                pass

        sel_unit = [state, seg_pick, unit]
        edit_in = [state, seg_pick, prompt, duration, unit, seed, locked, transition]
        add_btn.click(add_segment, edit_in, api_name="add_segment", **EDIT)
        insert_btn.click(insert_segment, edit_in, api_name="insert_segment", **EDIT)
        apply_btn.click(update_segment, edit_in, api_name="update_segment", **EDIT)
        prompt.submit(update_segment, edit_in, api_visibility="private", **EDIT)
        dup_btn.click(duplicate_segment, sel_unit, api_name="duplicate_segment", **EDIT)
        del_btn.click(delete_segment, sel_unit, api_name="delete_segment", **EDIT)
        up_btn.click(move_up, sel_unit, api_name="move_up", **EDIT)
        down_btn.click(move_down, sel_unit, api_name="move_down", **EDIT)
        undo_btn.click(undo, sel_unit, api_name="undo", **EDIT)
        redo_btn.click(redo, sel_unit, api_name="redo", **EDIT)
        seg_pick.input(select_segment, sel_unit, api_name="select_segment", **EDIT)
        pick.change(pick_segment, [state, pick, unit], api_visibility="private", **EDIT)
        locked.input(hint, [locked, seed], [seed_note], api_visibility="private", show_progress="hidden",
                     queue=False)
        prompt.change(word_check, [prompt], [words], api_visibility="private", show_progress="hidden",
                      trigger_mode="always_last", queue=False)
        take_pick.input(pick_take, [state, seg_pick, take_pick], api_name="pick_take", **EDIT)
        settings_btn.click(set_settings, [state, seg_pick, steps, guidance, fps_in, size_in], api_name="set_settings",
                           **EDIT)
        example_btn.click(load_example, [state, example_pick], api_name="load_example", **EDIT)
        new_btn.click(new_project, [state], api_name="new_project", **EDIT)
        project_in.upload(load_project, [state, project_in], api_name="load_project", **UPLOAD)
        init_in.upload(set_init, [state, seg_pick, init_in], api_name="set_init", **UPLOAD)
        clear_init_btn.click(clear_init, [state, seg_pick], api_name="clear_init", **EDIT)
        project_id_in.submit(open_project, [state, project_id_in], api_name="open_project", **EDIT)
        # the counter runs in the page, no round trip per keystroke
        prompt.change(None, [prompt], [count], js=f"""(t) => {{ const n = (t || '').length;
            const s = n > {MAX_PROMPT_CHARS} ? " style='color:#c33;font-weight:600'" : "";
            return [`<span${{s}}>${{n}} / {MAX_PROMPT_CHARS} characters</span>`]; }}""", api_visibility="private")

        # -- rendering -------------------------------------------------------------------------
        def render_view(st, number, clip_path, prog, tab=None, rendering=None, fraction=None):
            p = st.project
            number = clamp(st, number)
            with st.lock:
                st.record_view(tab)
                it = p.items[number - 1] if number else None
                board_, player_, *more = story_view(st, number, rendering, fraction)
                return [st, summary(st, number), board_, player_,
                        clip_path if clip_path is not None else gr.update(), takes_update(st, number), prog,
                        it.segment.seed if it else gr.update(),
                        gr.update(interactive=p.can_undo()), gr.update(interactive=p.can_redo()),
                        *more, hint(it.locked, it.segment.seed) if it else gr.update()]

        def progress_only(prog):
            return [prog if c is progress else gr.skip() for c in RENDER_OUT]

        def run_render(st, request, number, index, reseed):
            st = ensure(st, request)
            tab = tab_of(request)
            shown = functools.partial(render_view, tab=tab)  # what this tab shows is remembered
            try:
                with st.lock:
                    try:
                        sel = st.locate(tab, number, edit=False) + 1 if number and st.project.items else None
                    except ProjectError:
                        if index is not None:
                            raise
                        sel = None  # the selection this tab saw is gone; the story renders all the same
                    if index is not None:
                        if sel is None:
                            raise ProjectError("pick the segment to regenerate in the Segment list")
                        index = sel
                    number = sel
            except ProjectError as e:
                fail(e)
            yield shown(st, number, None, progress_html("Starting…", state="running"))
            total, last, on = 1, 0.0, None
            for kind, data in st.iter_render(index, reseed):
                if kind == "start":
                    total = max(1, data["total"])
                    if not data["total"]:
                        yield shown(st, number, None, progress_html("Everything is rendered and fresh.", 1, 1, "done"))
                elif kind == "step":
                    seg_frac = (data["clip"] + data["step"] / data["steps"]) / data["clips"]
                    text = (f"Segment {data['segment'] + 1} ({data['done'] + 1}/{total}) · clip {data['clip'] + 1}/"
                            f"{data['clips']} · step {data['step']}/{data['steps']}")
                    now = __import__("time").monotonic()
                    if data["segment"] != on:  # a new segment starts: its card says it is rendering
                        on, last = data["segment"], now
                        yield shown(st, number, None, progress_html(text, (data["done"] + seg_frac) / total, seg_frac,
                                                                    "running"), rendering=on, fraction=seg_frac)
                    elif now - last > 0.2:
                        last = now
                        # The progress bar alone: redrawing the timeline and thumbnails every
                        # step took the cores from the render (a 2-minute story ran 4x slower).
                        yield progress_only(progress_html(text, (data["done"] + seg_frac) / total, seg_frac, "running"))
                elif kind == "segment":
                    i = data["segment"]
                    path = st.clip_path(i)
                    yield shown(st, number, str(path) if path else None,
                                      progress_html(f"Segment {i + 1} done ({data['done']}/{total}).",
                                                    data["done"] / total, 1, "running"))
                elif kind == "done":  # each clip was shown as it finished; now the selected segment's again
                    yield shown(st, number, clip(st, number),
                                progress_html("Done. " + story_status(st.status()), 1, 1, "done"))
                elif kind == "cancelled":
                    yield shown(st, number, None, progress_html(f"Cancelled ({data}).", 0, 0, "cancelled"))
                elif kind == "error":
                    yield shown(st, number, None, progress_html(f"Not rendered: {data}", 0, 0, "error"))
                    fail(ProjectError(data))

        def render_story(st, number, request: gr.Request):
            """Render every segment that is missing or stale, in order; each clip shows when it is done."""
            yield from run_render(st, request, number, None, False)

        def render_segment(st, number, request: gr.Request):
            """Render segment `number` alone, with everything before it frozen (its later segments
            become stale). An unlocked seed draws a new seed when the segment is unchanged. Each
            rendering is a take."""
            yield from run_render(st, request, number, number, True)

        def cancel(st, number, request: gr.Request):
            """Stop the running render within a sampling step (and drop one still waiting in the queue)."""
            st = ensure(st, request)
            was = st.rendering
            st.cancel.set()
            for _ in range(600):  # the worker stops at its next sampling step
                if not st.rendering:
                    break
                __import__("time").sleep(0.05)
            text = "Cancelled." if was else "Nothing is rendering."
            return render_view(st, number, None, progress_html(text, 0, 0, "cancelled"), tab_of(request))

        # the queue position and timer show on the progress box only: the timeline stays usable
        RENDER = dict(outputs=RENDER_OUT, concurrency_limit=LIMIT["render"], concurrency_id="render", show_progress="full",
                      show_progress_on=[queue_box])
        apply_in = [state, seg_pick, prompt, duration, unit, seed, locked, transition]
        ev_all = render_all_btn.click(apply_pending, apply_in, api_visibility="private", **EDIT).success(
            render_story, [state, seg_pick], api_name="render_story", **RENDER)
        ev_seg = render_seg_btn.click(apply_pending, apply_in, api_visibility="private", **EDIT).success(
            render_segment, [state, seg_pick], api_name="render_segment", **RENDER)
        # the flag stops the worker within a sampling step; `cancels` also drops a render still
        # waiting in the queue (a flag set then would be cleared when it starts)
        cancel_btn.click(cancel, [state, seg_pick], RENDER_OUT, api_name="cancel", concurrency_limit=None,
                         show_progress="hidden", cancels=[ev_all, ev_seg])

        # -- preview, export, save ---------------------------------------------------------------
        def preview(st, request: gr.Request):
            """The whole story as one MP4 (every segment must be rendered and fresh)."""
            st = ensure(st, request)
            try:
                return st, str(st.preview_path())
            except ProjectError as e:
                fail(e)

        def export(st, fmt, request: gr.Request):
            """Export the story as MP4, GIF or raw frames (.npy), plus the sidecar .story.json
            (prompts, seeds, settings) that renders the same frames again."""
            st = ensure(st, request)
            try:
                video, sidecar = st.export(parse_choice(fmt, "the export format", ("mp4", "gif", "npy")))
            except ProjectError as e:
                fail(e)
            return st, [str(video), str(sidecar)]

        def save_project(st, request: gr.Request):
            """The project's recipe as a JSON file (story, takes, settings, start frames; no paths, no
            frames: rendering it again gives the same frames)."""
            st = ensure(st, request)
            return st, str(st.project_file())

        def save_bundle(st, request: gr.Request):
            """The project as one .zip: the JSON recipe and every take's frames; opening it shows the
            rendered story at once, with no render."""
            st = ensure(st, request)
            try:
                return st, str(st.bundle_file())
            except (ProjectError, BundleError) as e:
                fail(e)

        def storyboard_sheet(st, request: gr.Request):
            """The storyboard sheet as PNG and PDF: per segment a few frames, prompt, timecode,
            duration, transition, seed and status."""
            st = ensure(st, request)
            from .sheet import SheetError
            try:
                return st, [str(f) for f in st.sheet_files()]
            except (ProjectError, SheetError) as e:
                fail(e)

        FILES = dict(concurrency_limit=LIMIT["files"], concurrency_id="files")
        bundle_btn.click(save_bundle, [state], [state, project_out], api_name="save_bundle", **FILES)
        sheet_btn.click(storyboard_sheet, [state], [state, sheet_files], api_name="storyboard_sheet", **FILES)
        preview_btn.click(preview, [state], [state, story_video], api_name="preview", **FILES)
        export_btn.click(export, [state, export_fmt], [state, export_files], api_name="export", **FILES)
        save_btn.click(save_project, [state], [state, project_out], api_name="save_project", **FILES)
    # the page's look and script, for whoever launches the demo (launch(css=, js=) would be
    # needed by every caller otherwise; these are what launch falls back to)
    demo._deprecated_css = STUDIO_CSS + PAGE_CSS
    demo._deprecated_js = studio_js(pick="board-pick", player="story-player", prompt="prompt", render="render-all",
                                    undo="undo", redo="redo")
    return demo
