"""The storyboard sheet: one entry per segment in the PNG and the PDF, text as written, stills whole."""
import io
import re

import numpy as np
import pytest
from PIL import Image

from app.sheet import (
    MAX_SHEET_SEGMENTS,
    Sheet,
    SheetError,
    SheetSegment,
    sheet_pdf,
    sheet_png,
    stills_of,
    write_sheet,
)
from phenaki_core.data import shapes_world as sw

pypdf = pytest.importorskip("pypdf")

PROMPTS = ["a red circle moves right", "a red circle moves left", "a blue square grows on a gray background",
           "a yellow triangle moves up on a navy background", "a white ball slides down"]


def _frames(prompt: str, n: int = 11) -> np.ndarray:
    c = sw.parse_caption(prompt.split(" take ")[0])
    return sw.render(sw.Scene(c["colour"], c["shape"], c["motion"], c["background"] or "black", x=32, y=32, half=7), n)


def _sheet(prompts=PROMPTS, statuses=None, title="The red circle's day") -> Sheet:
    segs, t = [], 0.0
    for n, p in enumerate(prompts):
        status = (statuses or {}).get(n, "rendered")
        stills, numbers = stills_of(_frames(p)) if status != "not rendered" else ((), ())
        segs.append(SheetSegment(p, t, t + 11 / 8, 11, "cut" if n == 2 else "continue", n + 7, status,
                                 stills, numbers, take=1))
        t += 11 / 8
    return Sheet(title, segs, fps=8, model="phenaki-shapes-64")


def _pdf_text(data: bytes) -> tuple[pypdf.PdfReader, str]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return reader, " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def test_stills_of_spread_over_the_take():
    frames = np.arange(11, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    stills, numbers = stills_of(frames)
    assert numbers == (1, 6, 11) and [int(s[0, 0, 0]) for s in stills] == [0, 5, 10]
    assert stills_of(frames[:1])[1] == (1,)
    assert stills_of(frames, n=4)[1] == (1, 4, 8, 11)


def test_pdf_has_one_entry_per_segment_with_its_facts():
    sheet = _sheet(statuses={3: "stale", 4: "not rendered"})
    reader, text = _pdf_text(sheet_pdf(sheet))
    for n, p in enumerate(PROMPTS):
        assert text.count(p) == 1, p
        assert f"seed {n + 7}" in text
    assert "0:01.4 – 0:02.8" in text and "cut: starts a new shot" in text and "continues from 1" in text
    found = re.findall(r"\d:\d\d\.\d – \d:\d\d\.\d (rendered|stale|not rendered)", text)
    assert found == ["rendered"] * 3 + ["stale", "not rendered"]
    # the viewer's outline lists the segments in order, one each
    outline = [o.title for o in reader.outline]
    assert len(outline) == len(PROMPTS)
    assert [o.split(" · ")[0] for o in outline] == ["1", "2", "3", "4", "5"]
    # the title and summary head every page
    for page in reader.pages:
        assert page.extract_text().startswith("The red circle's day")
    assert "5 segments · 0:06.9 (55 frames at 8 fps)" in text
    assert reader.metadata.title == "The red circle's day"


def test_many_segments_paginate_without_losing_any():
    prompts = [f"{p} take {k}" for k in range(5) for p in PROMPTS][:23]
    reader, text = _pdf_text(sheet_pdf(_sheet(prompts)))
    assert len(reader.pages) >= 6  # a handful of entries a page, none split
    assert len(reader.outline) == 23
    assert all(text.count(p) == 1 for p in prompts)


def test_markup_and_unicode_in_text_come_out_as_written():
    prompts = ["a <b>red</b> circle & <script>alert(1)</script>", "un café — naïve ünïcode"]
    data = sheet_pdf(_sheet_plain(prompts, title="Ideas <i>&amp; more</i>"))
    _, text = _pdf_text(data)
    assert "a <b>red</b> circle & <script>alert(1)</script>" in text
    assert "un café — naïve ünïcode" in text
    assert "Ideas <i>&amp; more</i>" in text
    sheet_png(_sheet_plain(prompts))  # draws too


def _sheet_plain(prompts, title="t"):
    frame = np.zeros((64, 64, 3), np.uint8)
    return Sheet(title, [SheetSegment(p, i, i + 1, 8, "continue", i, "rendered", (frame,), (1,))
                         for i, p in enumerate(prompts)], fps=8)


def test_png_shows_each_still_whole_and_uncropped():
    magenta = np.zeros((64, 32, 3), np.uint8)
    magenta[:] = (255, 0, 255)  # a tall still: contained in its square, never cropped
    sheet = Sheet("t", [SheetSegment("a tall frame", 0, 1, 8, "continue", 0, "rendered", (magenta,), (1,))], fps=8)
    im = np.asarray(Image.open(io.BytesIO(sheet_png(sheet, width=1600))).convert("RGB"))
    ys, xs = np.nonzero(np.all(im == (255, 0, 255), axis=-1))
    assert len(ys) == 100 * 200  # a 200 px square holds the 1:2 still at 100 x 200, every pixel of it
    assert ys.max() - ys.min() + 1 == 200 and xs.max() - xs.min() + 1 == 100


def test_png_has_a_row_per_segment():
    one = Image.open(io.BytesIO(sheet_png(_sheet(PROMPTS[:1]))))
    five = Image.open(io.BytesIO(sheet_png(_sheet(PROMPTS))))
    assert one.format == five.format == "PNG" and one.width == five.width == 1600
    row = (five.height - one.height) / 4
    assert 200 < row < 400
    # each rendered segment's object colour is on the page
    px = np.asarray(five.convert("RGB"))
    for colour in ("red", "blue", "yellow", "white"):
        assert np.all(px == sw.COLOURS[colour], axis=-1).sum() > 100, colour


def test_long_and_unbroken_prompts_fit():
    long_word = "x" * 900
    sheet = _sheet_plain([long_word, "word " * 199])
    im = Image.open(io.BytesIO(sheet_png(sheet)))
    assert im.width == 1600
    _, text = _pdf_text(sheet_pdf(sheet))
    assert text.replace(" ", "").count("x" * 100) >= 1


def test_a_long_title_stays_on_the_page():
    title = "A very long working title for a story " * 3  # 114 characters: over a line at 44 px
    sheet = _sheet_plain(["p"], title=title)
    im = np.asarray(Image.open(io.BytesIO(sheet_png(sheet))).convert("RGB"))
    ink = np.nonzero(np.any(im[:200] < 100, axis=(0, 2)))[0]
    assert ink.max() < im.shape[1] - 40  # the title wraps instead of running off the right edge
    reader, text = _pdf_text(sheet_pdf(sheet))
    assert text.startswith("A very long working title")
    assert reader.pages[0].mediabox.width > 800


def test_empty_story_still_makes_a_page():
    sheet = Sheet("Nothing yet", [], fps=8)
    _, text = _pdf_text(sheet_pdf(sheet))
    assert "The timeline is empty." in text and "0 segments" in text
    assert Image.open(io.BytesIO(sheet_png(sheet))).height > 100


@pytest.mark.parametrize("bad, message", [
    ({"stills": (np.zeros((64, 64, 3), np.float32),)}, "uint8"),
    ({"stills": (np.zeros((64, 64), np.uint8),)}, r"\(H, W, 3\)"),
    ({"stills": (np.zeros((5000, 8, 3), np.uint8),)}, "at most 1024"),
    ({"stills": tuple(np.zeros((8, 8, 3), np.uint8) for _ in range(5))}, "at most 4 stills"),
    ({"prompt": None}, "prompt must be text"),
    ({"seed": None}, "must be numbers"),
    ({"start": 2.0}, "start <= end"),
    ({"end": float("nan")}, "finite"),
])
def test_bad_sheet_data_says_why(bad, message):
    fields = {"prompt": "p", "start": 0, "end": 1, "frames": 8, "transition": "continue", "seed": 0}
    seg = SheetSegment(**{**fields, **bad})
    with pytest.raises(SheetError, match=message):
        sheet_pdf(Sheet("t", [seg], fps=8))
    with pytest.raises(SheetError, match=message):
        sheet_png(Sheet("t", [seg], fps=8))


def test_a_png_too_long_to_draw_points_to_the_pdf():
    frame = np.zeros((64, 64, 3), np.uint8)
    seg = SheetSegment("p", 0, 1, 8, "continue", 0, "rendered", (frame,), (1,))
    with pytest.raises(SheetError, match="export the PDF"):
        sheet_png(Sheet("t", [seg] * 80, fps=8))
    assert len(sheet_pdf(Sheet("t", [seg] * 80, fps=8))) > 0


def test_too_many_segments_are_refused():
    seg = SheetSegment("p", 0, 1, 8, "continue", 0)
    with pytest.raises(SheetError, match=str(MAX_SHEET_SEGMENTS)):
        sheet_png(Sheet("t", [seg] * (MAX_SHEET_SEGMENTS + 1), fps=8))


def test_write_sheet_writes_both_files(tmp_path):
    png, pdf = write_sheet(_sheet(PROMPTS[:2]), tmp_path / "board.png", tmp_path / "board.pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board.pdf", "board.png"]


def test_without_system_fonts_the_sheet_uses_reportlabs_own(tmp_path):
    # A machine without DejaVu still makes both files, with ReportLab's bundled Vera.
    import subprocess
    import sys

    code = (
        "import io, sys, numpy as np, pypdf\n"
        "from pathlib import Path\n"
        "import app.sheet as s\n"
        "s._DEJAVU = Path('/nonexistent')\n"
        "assert s._font_files()[0].endswith('Vera.ttf')\n"
        "f = np.zeros((64, 64, 3), np.uint8)\n"
        "sh = s.Sheet('Café – plan', [s.SheetSegment('a red circle… naïve', 0, 1.375, 11, 'cut', 3, 'stale', (f,), (1,))])\n"
        "s.sheet_png(sh)\n"
        "text = ' '.join(pypdf.PdfReader(io.BytesIO(s.sheet_pdf(sh))).pages[0].extract_text().split())\n"
        "assert 'Café – plan' in text and 'a red circle… naïve' in text and '0:00.0 – 0:01.4 stale' in text, text\n"
    )
    from pathlib import Path

    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).parent.parent)
    assert run.returncode == 0, run.stderr[-2000:]
