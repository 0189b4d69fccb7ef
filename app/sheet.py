"""The storyboard sheet: the board as a page a creative shares, as a PNG and as a PDF.

Plain data in (`Sheet`, `SheetSegment`: the title, and per segment a few stills as uint8
arrays, its prompt, timecode, duration, transition, seed and status), bytes out. The PNG
is drawn with Pillow (one tall image, for chat and slides); the PDF with ReportLab's
platypus, which wraps text, paginates, keeps each segment on one page, embeds the fonts
and writes real text (searchable, copyable, readable by pypdf). Both take their wording
from `segment_lines`, so the two never disagree.

Fonts: DejaVu Sans from the system when present, else Bitstream Vera, which ships inside
ReportLab; nothing is downloaded.
"""
from __future__ import annotations

import functools
import html
import io
import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .display import STATUS_COLOURS, timecode

MAX_SHEET_SEGMENTS = 200
MAX_STILLS = 4
MAX_STILL_SIDE = 1024
MAX_TITLE_CHARS = 120
MAX_PNG_PIXELS = 24_000_000  # ~70 MB of RGB while drawing; about 55 segments at 1600 px wide
INK, MUTED, RULE, PAPER, EMPTY = "#1d1d1f", "#6e6e73", "#d9d9de", "#ffffff", "#ececf0"


class SheetError(ValueError):
    """Sheet data that cannot be drawn; the message says why."""


@dataclass(frozen=True)
class SheetSegment:
    """One segment as the sheet shows it. `stills`: a few frames (H, W, 3) uint8, e.g.
    `stills_of(take.frames)`; empty for a segment not rendered yet."""

    prompt: str
    start: float  # seconds on the story
    end: float
    frames: int
    transition: str  # "continue" | "cut"
    seed: int
    status: str = "rendered"
    stills: tuple = ()
    still_frames: tuple = ()  # the frame number (1-based, within the segment) of each still
    take: int | None = None


@dataclass(frozen=True)
class Sheet:
    title: str
    segments: list = field(default_factory=list)
    fps: float = 8.0
    model: str = ""


def stills_of(frames: np.ndarray, n: int = 3) -> tuple[tuple[np.ndarray, ...], tuple[int, ...]]:
    """`n` frames spread over a take (first, middle, last for 3) and their 1-based numbers."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or not len(frames):
        raise SheetError("a take's frames must be a (T, H, W, 3) array")
    idx = sorted({round(i * (len(frames) - 1) / max(1, n - 1)) for i in range(n)})
    return tuple(frames[i] for i in idx), tuple(i + 1 for i in idx)


def _clean_text(text, what: str, limit: int) -> str:
    if not isinstance(text, str):
        raise SheetError(f"the {what} must be text")
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp") else c
                   for c in unicodedata.normalize("NFC", text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check(sheet: Sheet) -> Sheet:
    """The sheet with text cleaned and every still checked, or a SheetError saying what is wrong."""
    if len(sheet.segments) > MAX_SHEET_SEGMENTS:
        raise SheetError(f"a sheet holds at most {MAX_SHEET_SEGMENTS} segments; this story has {len(sheet.segments)}")
    if not (isinstance(sheet.fps, (int, float)) and math.isfinite(sheet.fps) and sheet.fps > 0):
        raise SheetError(f"the fps must be a positive number, got {sheet.fps!r}")
    segs = []
    for n, s in enumerate(sheet.segments, 1):
        if len(s.stills) > MAX_STILLS:
            raise SheetError(f"segment {n}: at most {MAX_STILLS} stills, got {len(s.stills)}")
        for still in s.stills:
            a = np.asarray(still)
            if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or not 0 < max(a.shape[:2]) <= MAX_STILL_SIDE:
                raise SheetError(f"segment {n}: each still must be an (H, W, 3) uint8 image at most "
                                 f"{MAX_STILL_SIDE} px a side, got {a.dtype} {a.shape}")
        if s.still_frames and len(s.still_frames) != len(s.stills):
            raise SheetError(f"segment {n}: one frame number per still")
        try:
            start, end, frames, seed = float(s.start), float(s.end), int(s.frames), int(s.seed)
        except (TypeError, ValueError):
            raise SheetError(f"segment {n}: start, end, frames and seed must be numbers") from None
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
            raise SheetError(f"segment {n}: its timecodes must be finite with start <= end")
        segs.append(SheetSegment(_clean_text(s.prompt, "prompt", 2000), start, end, frames, str(s.transition),
                                 seed, str(s.status), tuple(s.stills), tuple(s.still_frames), s.take))
    title = _clean_text(sheet.title, "title", MAX_TITLE_CHARS) or "Untitled story"
    return Sheet(title, segs, float(sheet.fps), _clean_text(sheet.model, "model name", 80))


def summary_line(sheet: Sheet) -> str:
    frames = sum(s.frames for s in sheet.segments)
    n = len(sheet.segments)
    parts = [f"{n} segment{'s' if n != 1 else ''}", f"{timecode(frames / sheet.fps)} ({frames} frames at {sheet.fps:g} fps)"]
    if sheet.model:
        parts.append(f"model {sheet.model}")
    return " · ".join(parts)


def segment_lines(s: SheetSegment, number: int) -> dict:
    """The words of one entry, shared by the PNG and the PDF."""
    if s.transition == "cut":
        transition = "cut: starts a new shot"
    elif number == 1:
        transition = "opens the story"
    else:
        transition = f"continues from {number - 1}"
    take = f" · take {s.take}" if s.take else ""
    note = {"stale": "stale: these frames are from before the last edit; render to refresh them",
            "rendering": "rendering now"}.get(s.status, "")
    return {"note": note, "number": str(number), "time": f"{timecode(s.start)} – {timecode(s.end)}", "prompt": s.prompt,
            "meta": f"{s.frames} frame{'s' if s.frames != 1 else ''} · {s.end - s.start:.2f} s · seed {s.seed}{take}",
            "transition": transition, "status": s.status}


# -- fonts ------------------------------------------------------------------------------------
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@functools.cache
def _font_files() -> tuple[str, str]:
    """(regular, bold) TrueType files: DejaVu Sans when installed, else ReportLab's bundled Vera."""
    if (_DEJAVU / "DejaVuSans.ttf").is_file() and (_DEJAVU / "DejaVuSans-Bold.ttf").is_file():
        return str(_DEJAVU / "DejaVuSans.ttf"), str(_DEJAVU / "DejaVuSans-Bold.ttf")
    import reportlab

    fonts = Path(reportlab.__file__).parent / "fonts"
    return str(fonts / "Vera.ttf"), str(fonts / "VeraBd.ttf")


@functools.cache
def _pil_font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(_font_files()[bold], size)


def _upscaled(still: np.ndarray, side: int) -> Image.Image:
    """A still fitted into side x side without cropping; nearest-neighbour keeps pixels crisp."""
    im = Image.fromarray(np.ascontiguousarray(still))
    k = side / max(im.size)
    size = (max(1, round(im.width * k)), max(1, round(im.height * k)))
    return im.resize(size, Image.NEAREST if k >= 1 else Image.LANCZOS)


# -- PNG --------------------------------------------------------------------------------------
def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int, max_lines: int = 6) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        while draw.textlength(word, font=font) > width:  # a word longer than the column: break it
            cut = max(1, next((i for i in range(len(word), 0, -1) if draw.textlength(word[:i], font=font) <= width), 1))
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:cut])
            word = word[cut:]
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= width:
            line = trial
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip() + " …"
    return lines


def sheet_png(sheet: Sheet, width: int = 1600) -> bytes:
    """The sheet as one PNG, `width` pixels wide, one row per segment."""
    sheet = _check(sheet)
    if not 800 <= width <= 4000:
        raise SheetError("the sheet's width must be 800 to 4000 pixels")
    u = width / 1600  # every measure below is at 1600 px and scales with the width
    margin, gutter, still, num_w = round(56 * u), round(28 * u), round(200 * u), round(64 * u)
    f_title, f_sub = _pil_font(round(44 * u), True), _pil_font(round(20 * u))
    f_num, f_time = _pil_font(round(34 * u), True), _pil_font(round(21 * u), True)
    f_prompt, f_meta, f_small = _pil_font(round(27 * u), True), _pil_font(round(19 * u)), _pil_font(round(15 * u))
    n_stills = max([len(s.stills) for s in sheet.segments] + [3])
    stills_w = n_stills * still + (n_stills - 1) * round(10 * u)
    text_x = margin + num_w + stills_w + gutter
    text_w = width - margin - text_x
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    title_lines = _wrap(scratch, sheet.title, f_title, width - 2 * margin, max_lines=2)
    title_step = round(54 * u)
    header_h = round(150 * u) + (len(title_lines) - 1) * title_step
    rows = []
    for n, s in enumerate(sheet.segments, 1):
        words = segment_lines(s, n)
        prompt_lines = _wrap(scratch, words["prompt"], f_prompt, text_w)
        text_h = round(34 * u) + len(prompt_lines) * round(36 * u) + round((2 + bool(words["note"])) * 30 * u) \
            + round(12 * u)
        rows.append((s, words, prompt_lines, max(still + round(30 * u), text_h) + round(2 * 26 * u)))
    empty_h = 0 if rows else round(120 * u)
    footer_h = round(64 * u)
    height = header_h + sum(r[3] for r in rows) + empty_h + footer_h
    if width * height > MAX_PNG_PIXELS:
        raise SheetError(f"{len(rows)} segments make too long a PNG sheet ({width}x{height} px); "
                         "export the PDF sheet, which holds them on pages, or a narrower PNG")
    im = Image.new("RGB", (width, height), PAPER)
    d = ImageDraw.Draw(im)

    for k, line in enumerate(title_lines):
        d.text((margin, round(44 * u) + k * title_step), line, font=f_title, fill=INK)
    d.text((margin, header_h - round(48 * u)), summary_line(sheet), font=f_sub, fill=MUTED)
    y = header_h
    d.line([(margin, y), (width - margin, y)], fill=INK, width=max(1, round(2 * u)))
    if not rows:
        d.text((margin, y + round(40 * u)), "The timeline is empty.", font=f_prompt, fill=MUTED)
    for i, (s, words, prompt_lines, row_h) in enumerate(rows):
        top = y + round(26 * u)
        d.text((margin, top - round(4 * u)), words["number"], font=f_num, fill=INK)
        x = margin + num_w
        for k in range(n_stills):
            box = [x, top, x + still - 1, top + still - 1]
            if k < len(s.stills):
                tile = _upscaled(s.stills[k], still)
                ox, oy = x + (still - tile.width) // 2, top + (still - tile.height) // 2
                d.rectangle(box, fill="#000000")
                im.paste(tile, (ox, oy))
                label = f"frame {s.still_frames[k]}" if s.still_frames else ""
                d.text((x, top + still + round(6 * u)), label, font=f_small, fill=MUTED)
            elif not s.stills:  # nothing rendered: placeholders; a short take's spare columns stay blank
                d.rectangle(box, fill=EMPTY)
                if k == 0:
                    d.text((x + still // 2, top + still // 2), "not rendered" if s.status != "rendering" else "rendering…",
                           font=f_meta, fill=MUTED, anchor="mm")
            if k < len(s.stills) or not s.stills:
                d.rectangle([x - 1, top - 1, x + still, top + still], outline=RULE, width=1)  # outside the still
            x += still + round(10 * u)
        ty = top
        d.text((text_x, ty), words["time"], font=f_time, fill=INK)
        chip_x = text_x + d.textlength(words["time"], font=f_time) + round(16 * u)
        chip_w = d.textlength(words["status"], font=f_meta) + round(20 * u)
        colour = STATUS_COLOURS.get(s.status, MUTED)
        d.rounded_rectangle([chip_x, ty - round(1 * u), chip_x + chip_w, ty + round(27 * u)], radius=round(13 * u),
                            fill=colour)
        d.text((chip_x + chip_w / 2, ty + round(13 * u)), words["status"], font=f_meta, fill="#ffffff", anchor="mm")
        ty += round(40 * u)
        for line in prompt_lines:
            d.text((text_x, ty), line, font=f_prompt, fill=INK)
            ty += round(36 * u)
        ty += round(8 * u)
        d.text((text_x, ty), words["meta"], font=f_meta, fill=MUTED)
        ty += round(30 * u)
        d.text((text_x, ty), words["transition"], font=f_meta, fill=INK if s.transition == "cut" else MUTED)
        if words["note"]:
            ty += round(30 * u)
            d.text((text_x, ty), words["note"], font=f_meta, fill=colour)
        y += row_h
        if i < len(rows) - 1:
            d.line([(margin, y), (width - margin, y)], fill=RULE, width=1)
    d.line([(margin, height - footer_h), (width - margin, height - footer_h)], fill=INK, width=max(1, round(2 * u)))
    d.text((margin, height - footer_h + round(18 * u)), "Storyboard from Phenaki Studio", font=f_small, fill=MUTED)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


# -- PDF --------------------------------------------------------------------------------------
@functools.cache
def _pdf_fonts() -> tuple[str, str]:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    regular, bold = _font_files()
    pdfmetrics.registerFont(TTFont("SheetSans", regular))
    pdfmetrics.registerFont(TTFont("SheetSans-Bold", bold))
    return "SheetSans", "SheetSans-Bold"


def sheet_pdf(sheet: Sheet) -> bytes:
    """The sheet as an A4 landscape PDF: the title and summary on every page, one entry per
    segment (never split across pages), real text."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Flowable,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )
    from reportlab.platypus import Image as RLImage

    class Bookmark(Flowable):
        """An outline entry for the page the segment lands on, so a viewer lists the segments."""

        def __init__(self, key: str, label: str):
            super().__init__()
            self.key, self.label = key, label

        def wrap(self, *_):
            return 0, 0

        def draw(self):
            self.canv.bookmarkPage(self.key)
            self.canv.addOutlineEntry(self.label, self.key, level=0)

    sheet = _check(sheet)
    regular, bold = _pdf_fonts()
    page_w, page_h = landscape(A4)
    margin = 14 * mm
    esc = html.escape

    def style(name, font, size, colour=INK, leading=None):
        return ParagraphStyle(name, fontName=font, fontSize=size, leading=leading or size * 1.25,
                              textColor=colors.HexColor(colour))

    s_num, s_time = style("num", bold, 20), style("time", bold, 10.5)
    s_prompt, s_meta = style("prompt", bold, 13, leading=16.5), style("meta", regular, 9.5, MUTED)
    s_trans, s_label = style("trans", regular, 9.5), style("label", regular, 7.5, MUTED)

    n_stills = max([len(s.stills) for s in sheet.segments] + [3])
    still = 29 * mm  # four entries to an A4 landscape page
    num_w = 12 * mm
    text_w = page_w - 2 * margin - num_w - n_stills * (still + 2 * mm) - 4 * mm

    def still_cell(s: SheetSegment):
        cells, labels = [], []
        for k in range(n_stills):
            if k < len(s.stills):
                tile = _upscaled(s.stills[k], 256)  # pixels big enough that viewers' smoothing keeps them sharp
                w, h = (still, still * tile.height / tile.width) if tile.width >= tile.height else \
                       (still * tile.width / tile.height, still)
                png = io.BytesIO()
                tile.save(png, format="PNG")
                png.seek(0)
                cells.append(RLImage(png, width=w, height=h))
                labels.append(Paragraph(f"frame {s.still_frames[k]}" if s.still_frames else "", s_label))
            elif not s.stills:  # nothing rendered: placeholders; a short take's spare columns stay blank
                png = io.BytesIO()
                Image.new("RGB", (8, 8), EMPTY).save(png, format="PNG")
                png.seek(0)
                cells.append(RLImage(png, width=still, height=still))
                text = "rendering…" if s.status == "rendering" else "not rendered"
                labels.append(Paragraph(text if k == 0 else "", s_label))
            else:
                cells.append("")
                labels.append("")
        t = Table([cells, labels], colWidths=[still + 2 * mm] * n_stills, rowHeights=[still + 1.5 * mm, 11])
        cmds = [("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("ALIGN", (0, 0), (-1, 0), "CENTER"),
                ("LEFTPADDING", (0, 0), (-1, -1), 1 * mm), ("RIGHTPADDING", (0, 0), (-1, -1), 1 * mm),
                ("TOPPADDING", (0, 0), (-1, -1), 0), ("BOTTOMPADDING", (0, 0), (-1, -1), 0)]
        t.setStyle(TableStyle(cmds))
        return t

    def status_chip(s: SheetSegment) -> str:
        colour = STATUS_COLOURS.get(s.status, MUTED)
        return f"<font color='{colour}'>{esc(s.status)}</font>"  # a word, not a glyph: Vera has no bullet

    story = []
    for n, s in enumerate(sheet.segments, 1):
        words = segment_lines(s, n)
        stills = still_cell(s)
        text = [Paragraph(f"{esc(words['time'])} &nbsp;&nbsp; {status_chip(s)}", s_time), Spacer(1, 3),
                Paragraph(esc(words["prompt"]), s_prompt), Spacer(1, 4),
                Paragraph(esc(words["meta"]), s_meta),
                Paragraph(esc(words["transition"]), s_trans if s.transition == "cut" else s_meta)]
        if words["note"]:
            colour = STATUS_COLOURS.get(s.status, MUTED)
            text.append(Paragraph(f"<font color='{colour}'>{esc(words['note'])}</font>", s_meta))
        label = f"{n} · {words['time']} · {words['prompt'][:80]}"
        row = Table([[[Bookmark(f"segment-{n}", label), Paragraph(words["number"], s_num)], stills, text]],
                    colWidths=[num_w, n_stills * (still + 2 * mm) + 2 * mm, text_w])
        row.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                                 ("RIGHTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 2 * mm),
                                 ("BOTTOMPADDING", (0, 0), (-1, -1), 2 * mm),
                                 ("LINEBELOW", (0, 0), (-1, -1), 0.5, colors.HexColor(RULE))]))
        story.append(row)
    if not story:
        story.append(Paragraph("The timeline is empty.", s_prompt))

    from reportlab.pdfbase.pdfmetrics import stringWidth

    summary = summary_line(sheet)
    title, title_size = sheet.title, 18.0
    while stringWidth(title, bold, title_size) > page_w - 2 * margin and title_size > 11:
        title_size -= 1  # a long title gets smaller first, then shorter
    while stringWidth(title, bold, title_size) > page_w - 2 * margin:
        title = title[:-2] + "…"

    def decorate(canvas, doc):
        canvas.saveState()
        canvas.setFont(bold, title_size)
        canvas.setFillColor(colors.HexColor(INK))
        canvas.drawString(margin, page_h - margin - 14, title)
        canvas.setFont(regular, 9.5)
        canvas.setFillColor(colors.HexColor(MUTED))
        canvas.drawString(margin, page_h - margin - 30, summary)
        canvas.setStrokeColor(colors.HexColor(INK))
        canvas.setLineWidth(1)
        canvas.line(margin, page_h - margin - 38, page_w - margin, page_h - margin - 38)
        canvas.setFont(regular, 8)
        canvas.drawString(margin, margin - 14, "Storyboard from Phenaki Studio")
        canvas.drawRightString(page_w - margin, margin - 14, f"page {doc.page}")
        canvas.restoreState()

    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=(page_w, page_h), leftMargin=margin, rightMargin=margin,
                            topMargin=margin + 44, bottomMargin=margin, title=title,
                            author="Phenaki Studio", subject="storyboard", creator="Phenaki Studio")
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buf.getvalue()


def write_sheet(sheet: Sheet, png_path: str | Path, pdf_path: str | Path) -> tuple[Path, Path]:
    """Both files, each written whole (to a temporary name, then renamed)."""
    from .project import atomic_write

    return atomic_write(png_path, sheet_png(sheet)), atomic_write(pdf_path, sheet_pdf(sheet))
