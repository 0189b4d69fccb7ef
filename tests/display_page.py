"""A minimal page built only from app.display, for its browser test and for looking at it:
the board, the whole-story player with its marks, the prompt's word check, the shortcuts.

`python tests/display_page.py` serves it on 127.0.0.1:7861 (no model needed).
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
import gradio as gr
import numpy as np

from app.display import (
    STUDIO_CSS,
    Card,
    board_html,
    picked_segment,
    player_marks_html,
    prompt_words_html,
    seed_hint,
    shortcuts_html,
    story_status,
    studio_js,
    thumbnail_data_uri,
)
from phenaki_core.data import shapes_world as sw
from phenaki_core.io import write_video
from phenaki_core.text.vocabulary import (
    closest_words,
    shapes_world_vocabulary,
    suggestions,
    unknown_words,
)

FPS = 8
PROMPTS = ["a red circle moves right", "a red circle moves left", "a blue square grows on a gray background",
           "a yellow triangle moves up on a navy background"]
STATUSES = ["rendered", "rendered", "stale", "not rendered"]
FRAMES = [11, 11, 16, 8]


def story_frames() -> list[np.ndarray]:
    clips = []
    for p, n in zip(PROMPTS, FRAMES):
        c = sw.parse_caption(p)
        scene = sw.Scene(c["colour"], c["shape"], c["motion"], c["background"] or "black", x=32, y=44, half=7)
        clips.append(sw.render(scene, n))
    return clips


def spans() -> list[tuple[float, float]]:
    out, t = [], 0.0
    for n in FRAMES:
        out.append((t, t + n / FPS))
        t += n / FPS
    return out


def build(work: Path, export_size: int = 512) -> gr.Blocks:
    clips = story_frames()
    video = write_video(np.concatenate(clips), work / "story.mp4", fps=FPS, size=export_size)
    vocab = shapes_world_vocabulary()

    def cards(selected, rendering=None):
        out = []
        for i, ((t0, t1), p, s, clip) in enumerate(zip(spans(), PROMPTS, STATUSES, clips), 1):
            s = "rendering" if i == rendering else s
            image = None if s in ("not rendered",) or (s == "rendering" and i == 4) else thumbnail_data_uri(clip[len(clip) // 2])
            out.append(Card(i, t0, t1, p, s, image, take=None if image is None else (2 if i == 2 else 1),
                            takes=3 if i == 2 else (1 if image else 0), progress=0.4 if s == "rendering" else None))
        return board_html(out, selected)

    def words(text):
        unknown = unknown_words(text or "", vocab)
        return prompt_words_html(text or "", unknown, suggestions(vocab), {w: closest_words(w, vocab) for w in unknown})

    with gr.Blocks(title="Phenaki Studio display") as demo:
        pick = gr.Textbox(visible="hidden", elem_id="board-pick")
        gr.Markdown(story_status(STATUSES), elem_id="story-status")
        board = gr.HTML(cards(1), elem_id="board", padding=False)
        picked = gr.Textbox("1", label="Selected segment", elem_id="picked")
        gr.Video(str(video), elem_id="story-player", autoplay=False, loop=True, height=512,
                          interactive=False, label="Story")
        marks = gr.HTML(player_marks_html(spans(), PROMPTS, 1), elem_id="marks", padding=False)
        prompt = gr.Textbox(PROMPTS[0], label="Prompt", elem_id="prompt")
        word_box = gr.HTML(words(PROMPTS[0]), elem_id="words", padding=False)
        gr.HTML(f"<div id='seed-hint'>{seed_hint(True, 7)}</div>")
        with gr.Row():
            render = gr.Button("Render story", elem_id="render-all", variant="primary")
            undo = gr.Button("Undo", elem_id="undo")
            redo = gr.Button("Redo", elem_id="redo")
        last = gr.Textbox(label="Last action", elem_id="last-action")
        gr.HTML(shortcuts_html())

        def on_pick(value):
            n = picked_segment(value)
            if n is None or not 1 <= n <= len(PROMPTS):
                return gr.update(), gr.update(), gr.update()
            return str(n), cards(n), player_marks_html(spans(), PROMPTS, n)

        pick.change(on_pick, pick, [picked, board, marks])
        prompt.change(words, prompt, word_box)
        render.click(lambda: ("render", cards(None, rendering=4)), None, [last, board])
        undo.click(lambda: "undo", None, last)
        redo.click(lambda: "redo", None, last)
    demo.css_for_launch = STUDIO_CSS
    demo.js_for_launch = studio_js()
    return demo


if __name__ == "__main__":
    import tempfile

    d = build(Path(tempfile.mkdtemp()))
    d.launch(server_name="127.0.0.1", server_port=7861, css=d.css_for_launch, js=d.js_for_launch)
