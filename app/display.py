"""Pure display helpers for the studio page: plain data in, escaped HTML (and small JS) out.

Nothing here imports Gradio or touches a project: the UI gathers plain values (numbers,
prompts, timecodes, statuses, images) into `Card`s and these functions lay them out, so
each is testable alone and the page's look has one owner. Every user- or file-supplied
string goes through `html.escape`; ids and settings reach the JS as JSON literals.

The page's behaviour lives in one script, `studio_js(...)`, given to `launch(js=...)`:
clicking a board card or a player mark, and the keyboard shortcuts, all select a segment
the same way (writing its number into a hidden textbox the UI listens to), so there is
one path from the page to the project. The player's playhead and highlighted mark follow
the story video by itself, in the browser, with no server round trip.
"""
from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass

import numpy as np

STATUSES = ("rendered", "stale", "not rendered", "rendering")
STATUS_COLOURS = {"rendered": "#2e9d4f", "stale": "#c77d00", "not rendered": "#8a8a8e", "rendering": "#3d6df2"}
STATUS_WORDS = {"rendered": "rendered", "stale": "stale", "not rendered": "not rendered", "rendering": "rendering…"}
MAX_THUMB_SIDE = 512


def timecode(seconds: float) -> str:
    """`m:ss.s`, the studio's one way of writing a time on the story ("0:05.5", "1:02.0")."""
    tenths = round(max(0.0, float(seconds)) * 10)
    m, t = divmod(tenths, 600)
    return f"{m}:{t // 10:02d}.{t % 10}"


@dataclass(frozen=True)
class Card:
    """One segment on the board. `image`: a data URI or URL of its thumbnail (None: not
    rendered); `take`/`takes`: the active take's number and how many there are;
    `progress`: 0..1 while `status` is "rendering"."""

    number: int
    start: float
    end: float
    prompt: str
    status: str
    image: str | None = None
    take: int | None = None
    takes: int = 0
    progress: float | None = None


def _status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"unknown segment status {status!r}; one of {STATUSES}")
    return status


def thumbnail_data_uri(frame: np.ndarray) -> str:
    """A frame as a PNG data URI, at its own size: the page scales it up crisply with
    `image-rendering: pixelated`, so a 64x64 frame costs a few kB, and no file is served."""
    a = np.asarray(frame)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or not 0 < max(a.shape[:2]) <= MAX_THUMB_SIDE:
        raise ValueError(f"a thumbnail is an (H, W, 3) uint8 frame at most {MAX_THUMB_SIDE} px a side, "
                         f"got {a.dtype} {a.shape}")
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _src(image: str | None) -> str | None:
    """Only our own kinds of image source reach the page: a PNG/JPEG/GIF/WebP data URI or a
    same-origin path (Gradio's file route). Anything else (javascript:, remote hosts) is dropped."""
    if image is None:
        return None
    if image.startswith(("data:image/png;base64,", "data:image/jpeg;base64,", "data:image/gif;base64,",
                         "data:image/webp;base64,")) or (image.startswith("/") and not image.startswith("//")):
        return image
    return None


# -- the board -------------------------------------------------------------------------------
def board_html(cards: list[Card], selected: int | None = None) -> str:
    """The timeline board: one card per segment, the whole frame shown (contain, never
    cropped), number, timecode and status in text under it, the selected card marked
    (`aria-current`), the active take named, a rendering card shown as such."""
    if not cards:
        return ("<div class='ph-board ph-board-empty' id='ph-board'>The timeline is empty. Write a prompt and press "
                "<b>Add</b>, or load an example.</div>")
    out = ["<div class='ph-board' id='ph-board' role='list'>"]
    for c in cards:
        status = _status(c.status)
        current = c.number == selected
        src = _src(c.image)
        if src:
            picture = f"<img class='ph-thumb-img' src='{html.escape(src, quote=True)}' alt='segment {c.number}'>"
        else:
            picture = f"<span class='ph-thumb-empty'>{'rendering…' if status == 'rendering' else 'not rendered'}</span>"
        if status == "rendering":
            p = 0.0 if c.progress is None else max(0.0, min(1.0, float(c.progress)))
            picture += (f"<span class='ph-rendering' role='progressbar' aria-valuenow='{round(p * 100)}' "
                        f"aria-valuemin='0' aria-valuemax='100'><span style='width:{p * 100:.0f}%'></span></span>")
        take = (f"take {c.take} of {c.takes}" if c.take and c.takes > 1 else
                "1 take" if c.take else "no take yet")
        prompt = html.escape(c.prompt)
        aria = " aria-current='true'" if current else ""
        out.append(
            f"<button type='button' class='ph-card' role='listitem' data-segment='{c.number}' data-status='{status}'"
            f"{aria} title='{prompt}'>"
            f"<span class='ph-thumb'>{picture}</span>"
            f"<span class='ph-cap'><span class='ph-num'>{c.number}</span>"
            f"<span class='ph-tc'>{timecode(c.start)}</span></span>"
            f"<span class='ph-chip' style='--chip:{STATUS_COLOURS[status]}'>{STATUS_WORDS[status]}</span>"
            f"<span class='ph-take'>{take}</span>"
            f"<span class='ph-prompt'>{prompt}</span></button>")
    out.append("</div>")
    return "".join(out)


# -- status in words --------------------------------------------------------------------------
def _numbers(ns: list[int]) -> str:
    return ", ".join(map(str, ns[:-1])) + (" and " if len(ns) > 1 else "") + str(ns[-1])


def story_status(statuses: list[str]) -> str:
    """One sentence about the whole story, computed from the same per-segment statuses the
    board shows, so the two can never disagree."""
    for s in statuses:
        _status(s)
    n = len(statuses)
    if not n:
        return "The timeline is empty."
    by = {k: [i + 1 for i, s in enumerate(statuses) if s == k] for k in STATUSES}
    if by["rendering"]:
        return f"Rendering segment {_numbers(by['rendering'])} ({len(by['rendered'])} of {n} rendered)."
    if len(by["rendered"]) == n:
        return f"Every segment is rendered ({n} of {n})."
    parts = []
    if by["stale"]:
        parts.append(f"segment{'s' if len(by['stale']) > 1 else ''} {_numbers(by['stale'])} "
                     f"{'are' if len(by['stale']) > 1 else 'is'} stale")
    if by["not rendered"]:
        parts.append(f"segment{'s' if len(by['not rendered']) > 1 else ''} {_numbers(by['not rendered'])} "
                     f"{'are' if len(by['not rendered']) > 1 else 'is'} not rendered")
    return f"{len(by['rendered'])} of {n} rendered; {' and '.join(parts)}. Render the story to bring them up to date."


def playable_segments(statuses: list[str]) -> int:
    """How many segments from the start the story player can show: the rendered ones up to
    the first stale, missing or rendering one (a later segment continues frames that are
    not final yet, so it cannot play after them)."""
    n = 0
    for s in statuses:
        if _status(s) != "rendered":
            break
        n += 1
    return n


def player_note(statuses: list[str]) -> str:
    """The line under the player when it shows less than the whole story."""
    n, total = playable_segments(statuses), len(statuses)
    if total == 0 or n == total:
        return ""
    if n == 0:
        return "Nothing to play yet: render the story."
    return f"Playing segment{'s 1–' + str(n) if n > 1 else ' 1'} of {total}; render the story to see the rest."


def undo_notice(what: str) -> str:
    """The toast after a step that removes work (delete, new project, load over the story):
    it says what happened and how to get it back, instead of asking first."""
    return f"{what}. Undo (Ctrl+Z) brings it back."


def seed_hint(locked: bool, seed: int) -> str:
    """The line under the seed lock, saying what the box's state does (never the other one)."""
    return (f"Locked: regenerating keeps seed {int(seed)}." if locked
            else "Unlocked: regenerating draws a new seed.")


# -- the whole-story player's marks ------------------------------------------------------------
def player_marks_html(spans: list[tuple[float, float]], prompts: list[str], current: int | None = None,
                      player_id: str = "story-player") -> str:
    """The bar under the story player: one mark per segment, placed and sized by its timecodes
    (percent of the story), the current one highlighted, a playhead; the script moves the
    playhead and the highlight as the video plays and seeks on a click."""
    if len(spans) != len(prompts):
        raise ValueError("one prompt per span")
    total = spans[-1][1] if spans else 0.0
    if total <= 0:
        return f"<div class='ph-marks ph-marks-empty' data-player='{html.escape(player_id, quote=True)}'></div>"
    out = [f"<div class='ph-marks' data-player='{html.escape(player_id, quote=True)}' data-total='{total:.4f}'>"]
    for i, ((t0, t1), prompt) in enumerate(zip(spans, prompts), 1):
        left, width = 100 * t0 / total, 100 * (t1 - t0) / total
        out.append(f"<button type='button' class='ph-mark{' ph-current' if i == current else ''}' data-segment='{i}' "
                   f"data-start='{t0:.4f}' data-end='{t1:.4f}' style='left:{left:.3f}%;width:{width:.3f}%' "
                   f"title='{i} · {timecode(t0)} · {html.escape(prompt, quote=True)}'><span>{i}</span></button>")
    out.append("<span class='ph-playhead' style='left:0%'></span></div>")
    return "".join(out)


def mark_at(spans: list[tuple[float, float]], t: float) -> int | None:
    """The segment number (1-based) on screen at time t; the one the script highlights."""
    for i, (t0, t1) in enumerate(spans, 1):
        if t0 <= t < t1:
            return i
    return len(spans) if spans and t >= spans[-1][1] else None


# -- prompts the model knows ---------------------------------------------------------------------
def prompt_words_html(prompt: str, unknown: list[str], suggestions: dict[str, list[str]],
                      closest: dict[str, list[str]] | None = None) -> str:
    """Under the prompt box: the words the model has never seen (with a spelling it knows,
    when one is close), and the phrases it knows, by kind, as chips that add themselves to
    the prompt. `unknown`, `suggestions`, `closest` come from phenaki_core.text.vocabulary."""
    closest = closest or {}
    parts = ["<div class='ph-words' id='ph-words'>"]
    if unknown:
        words = []
        for w in unknown:
            hint = closest.get(w) or []
            alt = f" (did you mean <b>{html.escape(hint[0])}</b>?)" if hint else ""
            words.append(f"<mark class='ph-unknown'>{html.escape(w)}</mark>{alt}")
        them = "it" if len(unknown) == 1 else "them"
        parts.append(f"<div class='ph-unknown-line' role='status'>The model has never seen: {', '.join(words)}. "
                     f"It will likely ignore {them}.</div>")
    elif prompt.strip():
        parts.append("<div class='ph-known-line'>Every word is one the model knows.</div>")
    if suggestions:
        parts.append("<details class='ph-suggest'><summary>Words this model knows</summary>")
        for kind, phrases in suggestions.items():
            chips = "".join(f"<button type='button' class='ph-phrase' data-phrase='{html.escape(p, quote=True)}'>"
                            f"{html.escape(p)}</button>" for p in phrases)
            parts.append(f"<div class='ph-kind'><span class='ph-kind-name'>{html.escape(kind)}</span>{chips}</div>")
        parts.append("</details>")
    parts.append("</div>")
    return "".join(parts)


# -- keyboard shortcuts ------------------------------------------------------------------------------
# Each: the keys as shown, what they do, and how the script recognises them. `typing`: whether
# the shortcut also works while the cursor is in a text box (only modifier combos that a text
# box does not use itself do).
SHORTCUTS = (
    {"keys": [["Ctrl/⌘", "Enter"]], "does": "Render the story", "action": "render", "typing": True,
     "match": {"key": "Enter", "mod": True}},
    {"keys": [["Space"], ["K"]], "does": "Play / pause the story", "action": "playpause", "typing": False,
     "match": {"key": [" ", "k", "K"], "mod": False}},
    {"keys": [["↓"], ["]"]], "does": "Next segment", "action": "next", "typing": False,
     "match": {"key": ["ArrowDown", "]"], "mod": False}},
    {"keys": [["↑"], ["["]], "does": "Previous segment", "action": "previous", "typing": False,
     "match": {"key": ["ArrowUp", "["], "mod": False}},
    {"keys": [["Ctrl/⌘", "Z"]], "does": "Undo", "action": "undo", "typing": False,
     "match": {"key": ["z", "Z"], "mod": True, "shift": False}},
    {"keys": [["Ctrl/⌘", "Shift", "Z"], ["Ctrl", "Y"]], "does": "Redo", "action": "redo", "typing": False,
     "match": {"key": ["z", "Z", "y", "Y"], "mod": True, "shift": None}},
)


def shortcuts_html() -> str:
    """The shortcuts as a table (each key a <kbd>), for the page: the list the script obeys."""
    def combo(keys):
        return " + ".join(f"<kbd>{html.escape(k)}</kbd>" for k in keys)

    rows = "".join(f"<tr><td>{' or '.join(combo(c) for c in s['keys'])}</td><td>{html.escape(s['does'])}</td></tr>"
                   for s in SHORTCUTS)
    return (f"<table class='ph-keys' id='ph-keys'><caption>Keyboard shortcuts</caption>{rows}</table>"
            "<p class='ph-keys-note'>Shortcuts without Ctrl/⌘ work when the cursor is not in a text box.</p>")


# -- the page's script and styles -------------------------------------------------------------------
_JS = r"""
() => {
  if (window.__phenakiStudio) return;
  window.__phenakiStudio = true;
  const C = __CONFIG__;
  const $ = (sel) => document.querySelector(sel);
  const field = () => $('#' + C.pick + ' textarea, #' + C.pick + ' input');
  // Select segment n through the hidden textbox the UI listens to (one path for every gesture).
  const pick = (n) => {
    const box = field();
    if (!box || !n) return;
    box.value = String(n) + ':' + Date.now();  // a new value each time, so picking the same card again counts
    box.dispatchEvent(new Event('input', { bubbles: true }));
  };
  const video = () => $('#' + C.player + ' video');
  const current = () => {
    const card = $('.ph-card[aria-current="true"]');
    return card ? Number(card.dataset.segment) : 0;
  };
  const count = () => document.querySelectorAll('.ph-card').length;
  const click = (id) => { const b = $('#' + id); if (b && !b.disabled) b.click(); };
  const typing = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));

  // Playhead and highlighted mark follow the story video; marks seek it.
  const follow = () => {
    const v = video(), bar = $('.ph-marks[data-player="' + C.player + '"]');
    if (!v || !bar) return;
    const total = Number(bar.dataset.total) || v.duration || 1;
    const t = v.currentTime;
    const head = bar.querySelector('.ph-playhead');
    if (head) head.style.left = Math.min(100, 100 * t / total) + '%';
    let on = null;
    bar.querySelectorAll('.ph-mark').forEach((m) => {
      const hit = t >= Number(m.dataset.start) && t < Number(m.dataset.end);
      m.classList.toggle('ph-current', hit);
      if (hit) on = m;
    });
    if (!on) {
      const last = bar.querySelector('.ph-mark:last-of-type');
      if (last && t >= Number(last.dataset.end) - 1e-3) last.classList.add('ph-current');
    }
    bar.dataset.current = on ? on.dataset.segment : '';
  };
  let raf = 0;
  const loop = () => { follow(); const v = video(); raf = v && !v.paused ? requestAnimationFrame(loop) : 0; };
  for (const ev of ['timeupdate', 'seeked', 'loadedmetadata']) document.addEventListener(ev, follow, true);
  document.addEventListener('play', () => { if (!raf) raf = requestAnimationFrame(loop); }, true);

  const seekTo = (n, play) => {
    const m = $('.ph-marks[data-player="' + C.player + '"] .ph-mark[data-segment="' + n + '"]'), v = video();
    if (!m || !v) return;
    v.currentTime = Number(m.dataset.start) + 1e-3;
    if (play) v.play().catch(() => {});
    follow();
  };

  document.addEventListener('click', (e) => {
    const mark = e.target.closest('.ph-mark');
    if (mark) { seekTo(mark.dataset.segment, true); pick(mark.dataset.segment); return; }
    const card = e.target.closest('.ph-card');
    if (card) { pick(card.dataset.segment); seekTo(card.dataset.segment, true); return; }
    const phrase = e.target.closest('.ph-phrase');
    if (phrase) {
      const box = $('#' + C.prompt + ' textarea');
      if (!box) return;
      const s = box.selectionStart ?? box.value.length, t = box.selectionEnd ?? s;
      const before = box.value.slice(0, s), after = box.value.slice(t);
      const add = (before && !/\s$/.test(before) ? ' ' : '') + phrase.dataset.phrase + (after && !/^\s/.test(after) ? ' ' : '');
      box.value = before + add + after;
      box.selectionStart = box.selectionEnd = (before + add).length;
      box.dispatchEvent(new Event('input', { bubbles: true }));
      box.focus();
    }
  });

  const keys = (e, spec) => {
    const mod = e.ctrlKey || e.metaKey;
    const ks = Array.isArray(spec.key) ? spec.key : [spec.key];
    if (!ks.includes(e.key) || mod !== spec.mod || e.altKey) return false;
    if (spec.shift === false && e.shiftKey) return false;
    return true;
  };
  const actions = {
    render: () => click(C.render),
    playpause: () => { const v = video(); if (v) { if (v.paused) v.play().catch(() => {}); else v.pause(); } },
    next: () => { const n = Math.min(count(), current() + 1); if (n) { pick(n); seekTo(n, false); } },
    previous: () => { const n = Math.max(1, current() - 1); if (count()) { pick(n); seekTo(n, false); } },
    undo: () => click(C.undo),
    redo: () => click(C.redo),
  };
  document.addEventListener('keydown', (e) => {
    if (e.repeat || e.isComposing) return;
    for (const s of C.shortcuts) {
      if (!keys(e, s.match)) continue;
      if (s.action === 'redo' && /^[zZ]$/.test(e.key) && !e.shiftKey) continue;
      if (s.action === 'undo' && e.shiftKey) continue;
      if (!s.typing && typing(document.activeElement)) return;
      if (s.action === 'playpause' && document.activeElement && document.activeElement.tagName === 'VIDEO') return;
      e.preventDefault();
      actions[s.action]();
      return;
    }
  });
}
"""


def studio_js(pick: str = "board-pick", player: str = "story-player", prompt: str = "prompt",
              render: str = "render-all", undo: str = "undo", redo: str = "redo") -> str:
    """The page's one script, for `launch(js=...)`: board and mark clicks, the playhead,
    suggestion chips and the shortcuts. Arguments are the elem_ids of: a hidden textbox the
    UI listens to (it receives "N:stamp" for segment N), the story gr.Video, the prompt
    textbox, and the render, undo and redo buttons."""
    config = {"pick": pick, "player": player, "prompt": prompt, "render": render, "undo": undo, "redo": redo,
              "shortcuts": [{"action": s["action"], "typing": s["typing"], "match": s["match"]} for s in SHORTCUTS]}
    for k, v in config.items():
        if k != "shortcuts" and not (isinstance(v, str) and v.replace("-", "").replace("_", "").isalnum()):
            raise ValueError(f"{k}: an elem_id of letters, digits, - and _, got {v!r}")
    # json.dumps escapes quotes; "</" is escaped too so the script can sit inside a <script> tag
    return _JS.replace("__CONFIG__", json.dumps(config).replace("</", "<\\/")).strip()


def picked_segment(value) -> int | None:
    """The segment number from the hidden textbox's "N:stamp" value; None for anything else."""
    if not isinstance(value, str):
        return None
    head = value.split(":", 1)[0]
    return int(head) if head.isdigit() and 0 < len(head) <= 6 else None


STUDIO_CSS = """
.ph-board { display: flex; gap: 10px; overflow-x: auto; padding: 4px 2px 10px; scroll-snap-type: x proximity; }
.ph-board-empty { display: block; padding: 1em; opacity: .8; }
.ph-card { flex: 0 0 152px; display: flex; flex-direction: column; gap: 3px; padding: 6px; text-align: left;
  border: 2px solid var(--border-color-primary, #d0d0d6); border-radius: 10px; background: var(--block-background-fill, #fff);
  color: var(--body-text-color, #1d1d1f); cursor: pointer; scroll-snap-align: start; font: inherit; }
.ph-card:hover { border-color: var(--color-accent, #3d6df2); }
.ph-card:focus-visible { outline: 3px solid var(--color-accent, #3d6df2); outline-offset: 2px; }
.ph-card[aria-current="true"] { border-color: var(--color-accent, #3d6df2); box-shadow: 0 0 0 2px var(--color-accent, #3d6df2); }
.ph-thumb { position: relative; display: flex; align-items: center; justify-content: center; width: 100%;
  aspect-ratio: 1 / 1; background: #000; border-radius: 6px; overflow: hidden; }
.ph-thumb-img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; display: block; }
.ph-thumb-empty { color: #bbb; font-size: 12px; }
.ph-card[data-status="not rendered"] .ph-thumb { background: repeating-linear-gradient(45deg, #2a2a30 0 8px, #33333a 8px 16px); }
.ph-card[data-status="stale"] .ph-thumb-img { opacity: .55; }
.ph-rendering { position: absolute; left: 0; right: 0; bottom: 0; height: 6px; background: rgba(255,255,255,.25); }
.ph-rendering > span { display: block; height: 100%; background: #3d6df2; transition: width .3s; }
.ph-card[data-status="rendering"] .ph-thumb::after { content: ""; position: absolute; inset: 0;
  background: linear-gradient(100deg, transparent 30%, rgba(255,255,255,.18) 50%, transparent 70%);
  background-size: 200% 100%; animation: ph-sweep 1.2s linear infinite; }
@keyframes ph-sweep { from { background-position: 200% 0; } to { background-position: -200% 0; } }
.ph-cap { display: flex; justify-content: space-between; align-items: baseline; font-size: 14px; }
.ph-num { font-weight: 700; font-size: 16px; }
.ph-tc { font-variant-numeric: tabular-nums; opacity: .8; }
.ph-chip { align-self: flex-start; padding: 1px 8px; border-radius: 999px; background: var(--chip); color: #fff;
  font-size: 12px; font-weight: 600; }
.ph-take { font-size: 12px; opacity: .75; }
.ph-prompt { font-size: 12px; line-height: 1.3; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical;
  overflow: hidden; }
.ph-marks { position: relative; height: 30px; margin: 6px 0 2px; background: rgba(128,128,128,.15); border-radius: 6px; }
.ph-mark { position: absolute; top: 3px; bottom: 3px; padding: 0; border: 0; border-left: 2px solid var(--body-background-fill, #fff);
  background: rgba(61,109,242,.28); color: inherit; font-size: 12px; font-weight: 600; cursor: pointer; overflow: hidden; }
.ph-mark:first-child { border-left: 0; border-radius: 6px 0 0 6px; }
.ph-mark:last-of-type { border-radius: 0 6px 6px 0; }
.ph-mark.ph-current { background: #3d6df2; color: #fff; }
.ph-playhead { position: absolute; top: -3px; bottom: -3px; width: 3px; margin-left: -1px; background: #e0362c;
  border-radius: 2px; pointer-events: none; }
.ph-words { font-size: 14px; }
.ph-unknown { background: #ffe1a8; color: #5a3b00; padding: 0 3px; border-radius: 3px; }
.ph-unknown-line { margin: 4px 0; }
.ph-words b { font-size: inherit; }
.ph-known-line { margin: 4px 0; opacity: .7; }
.ph-suggest summary { cursor: pointer; margin: 4px 0; }
.ph-kind { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; margin: 3px 0; }
.ph-kind-name { min-width: 90px; font-weight: 600; font-size: 13px; opacity: .8; }
.ph-phrase { padding: 1px 8px; border: 1px solid var(--border-color-primary, #ccc); border-radius: 999px;
  background: var(--background-fill-secondary, #f4f4f6); color: inherit; font: inherit; font-size: 13px; cursor: pointer; }
.ph-phrase:hover { border-color: var(--color-accent, #3d6df2); }
.ph-keys { border-collapse: collapse; font-size: 14px; }
.ph-keys caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
.ph-keys, table.ph-keys { width: auto; margin: 0; border: none; }
table.ph-keys td, table.ph-keys tr { border: none; background: none; padding: 3px 16px 3px 0; }
table.ph-keys kbd { font-family: inherit; font-size: 12px; padding: 1px 6px; border: 1px solid #b8b8c0;
  border-bottom-width: 2px; border-radius: 4px; background: var(--background-fill-secondary, #f4f4f6); }
.ph-keys-note { font-size: 12px; opacity: .7; }
"""
