"""Values an API client (or a tampered page) sends: each reaches a check that answers with a
plain-text message, the project stays as it was, and the server keeps answering."""
import json
import math
import re

import pytest
from hostile_helpers import (
    add,
    assert_plain,
    client,
    project_state,
    raw_call,
    refused,
    summary,
)

pytestmark = pytest.mark.hostile("input")

ZERO_WIDTH = ["\u200b", "\ufeff", "\u200b\u200c\u200d", "\u2060", " \u200b ", "\u200b\ufeff\u200b", "\u00a0\u200b",
              "\u3000", "\u180e"]


@pytest.fixture(scope="module")
def one(studio):
    """A client with one segment and a known state."""
    url, root, _ = studio
    c = client(url)
    add(c, "a red circle moves right", seed=3)
    return c, root, project_state(summary(c))  # every refusal below must leave exactly this


def unsendable(args) -> bool:
    """NaN and the infinities, and lone surrogates: what gradio_client cannot send."""
    def bad(a):
        if isinstance(a, float):
            return not math.isfinite(a)
        if isinstance(a, str):
            try:
                a.encode("utf-8")
            except UnicodeEncodeError:
                return True
        return False
    return any(bad(a) for a in args)


def check_refused(one, args, api_name, match):
    c, root, before = one
    if unsendable(args):  # a hand-written body sends what gradio_client cannot
        event, data = raw_call(c.src, api_name, json.dumps(list(args)))
        assert event == "error", (event, data)
        msg = (json.loads(data) or {}).get("error") or ""
        assert_plain(msg, root)
    else:
        msg = refused(c, *args, api_name=api_name, root=root)
    assert re.search(match, msg, re.IGNORECASE), msg
    assert project_state(summary(c)) == before  # unchanged, and the server still answers


# seed "abc", NaN and -inf reached gr.Number's own conversion (round(payload, 0)) and came back
# as Gradio's message-less error; seed 1.5 was silently rounded to 2.
BAD_SEEDS = ["abc", "", " ", "1.5x", "0x10", "nan", "inf", "-inf", "1e400", math.nan, math.inf, -math.inf, 1.5, 2.5,
             -1, 2**31, 2**63, 10**30, "1e3.5", [], {}, [1], True]


@pytest.mark.parametrize("seed", BAD_SEEDS, ids=[repr(s)[:20] for s in BAD_SEEDS])
def test_bad_seed(one, seed):
    check_refused(one, (None, "a blue square", 11, "frames", seed, True, "continue"), "/add_segment", "seed")


BAD_DURATIONS = ["abc", "", math.nan, math.inf, -math.inf, 0, -3, 1.5, 10**9, [], {}, True, "11 frames"]


@pytest.mark.parametrize("duration", BAD_DURATIONS, ids=[repr(s)[:20] for s in BAD_DURATIONS])
def test_bad_duration(one, duration):
    check_refused(one, (None, "a blue square", duration, "frames", 1, True, "continue"), "/add_segment", "duration")


BAD_SETTINGS = [  # (steps, guidance, fps, size, what the message names)
    (12.7, 3.0, 8, 64, "steps"), ("abc", 3.0, 8, 64, "steps"), (math.nan, 3.0, 8, 64, "steps"),
    (-math.inf, 3.0, 8, 64, "steps"), (0, 3.0, 8, 64, "steps"), (65, 3.0, 8, 64, "steps"), (True, 3.0, 8, 64, "steps"),
    (12, "abc", 8, 64, "guidance"), (12, math.nan, 8, 64, "guidance"), (12, math.inf, 8, 64, "guidance"),
    (12, -1, 8, 64, "guidance"), (12, 21, 8, 64, "guidance"),
    (12, 3.0, math.nan, 64, "fps"), (12, 3.0, math.inf, 64, "fps"), (12, 3.0, "fast", 64, "fps"),
    (12, 3.0, 0, 64, "fps"), (12, 3.0, -8, 64, "fps"), (12, 3.0, 1000, 64, "fps"),
    (12, 3.0, 8, 64.5, "export size"), (12, 3.0, 8, "big", "export size"), (12, 3.0, 8, math.nan, "export size"),
    (12, 3.0, 8, 15, "export size"), (12, 3.0, 8, 10**7, "export size"), (12, 3.0, 8, -64, "export size"),
]


@pytest.mark.parametrize("steps, guidance, fps, size, what", BAD_SETTINGS,
                         ids=[f"{w}={v!r}"[:30] for *vals, w in BAD_SETTINGS for v in [vals]])
def test_bad_settings(one, steps, guidance, fps, size, what):
    check_refused(one, (None, steps, guidance, fps, size), "/set_settings", what)


@pytest.mark.parametrize("prompt", ZERO_WIDTH, ids=[p.encode("unicode_escape").decode() for p in ZERO_WIDTH])
def test_invisible_prompt(one, prompt):
    check_refused(one, (None, prompt, 11, "frames", 1, True, "continue"), "/add_segment", "prompt")


BAD_PROMPTS = [None, "a\x00b", "a\x1bb", "a\ud800b", "\udfff", "x" * 1001, "\ue000 private", "\U0010fffe"]


@pytest.mark.parametrize("prompt", BAD_PROMPTS, ids=[repr(p)[:20] for p in BAD_PROMPTS])
def test_bad_prompt(one, prompt):
    check_refused(one, (None, prompt, 11, "frames", 1, True, "continue"), "/add_segment", "prompt")


@pytest.mark.parametrize("unit", ["minutes", "", None, 5, "FRAMES"])
def test_bad_unit(one, unit):
    check_refused(one, (None, "a blue square", 11, unit, 1, True, "continue"), "/add_segment", "unit")


@pytest.mark.parametrize("transition", ["fade", "", None, 1, "<b>cut</b>"])
def test_bad_transition(one, transition):
    check_refused(one, (None, "a blue square", 11, "frames", 1, True, transition), "/add_segment", "transition")


@pytest.mark.parametrize("locked", ["maybe", "", 2, 0.5, [], "nope"])
def test_bad_lock_flag(one, locked):
    check_refused(one, (None, "a blue square", 11, "frames", 1, locked, "continue"), "/add_segment", "lock")


@pytest.mark.parametrize("text, expected", [("false", False), ("False", False), ("0", False), ("no", False),
                                            ("true", True), ("1", True)])
def test_lock_flag_as_text_is_read_as_meant(studio, text, expected):
    """locked="false" stayed locked: any non-empty string is true to bool()."""
    c = client(studio[0])
    s = add(c, "a red circle moves right", locked=text)
    assert s["segments"][-1]["seed_locked"] is expected


BAD_NUMBERS = ["abc", 1.5, -1, 0, 99, math.nan, math.inf, "", [], "2x", "deadbeef"]


@pytest.mark.parametrize("api_name", ["/delete_segment", "/duplicate_segment", "/move_down", "/move_up"])
@pytest.mark.parametrize("number", BAD_NUMBERS, ids=[repr(n)[:12] for n in BAD_NUMBERS])
def test_bad_segment_number(one, api_name, number):
    check_refused(one, (number, "frames"), api_name, "segment|timeline is empty")


@pytest.mark.parametrize("fmt", ["exe", "", None, "../mp4", "MP4", 3])
def test_bad_export_format(one, fmt):
    check_refused(one, (fmt,), "/export", "format")


@pytest.mark.parametrize("take", ["abc", 1.5, math.nan, 0, 7, None])
def test_bad_take(one, take):
    # a hand-written body (NaN) arrives in a fresh session, whose timeline is empty
    check_refused(one, (1, take), "/pick_take", "take|timeline is empty")


def test_whole_numbers_as_text_are_accepted(studio):
    """The API may send numbers as text; whole numbers in range are taken as they are."""
    c = client(studio[0])
    s = c.predict(None, "a red circle moves right", "11", "frames", "42", True, "continue", api_name="/add_segment")[0]
    assert s["segments"][-1]["seed"] == 42 and s["segments"][-1]["frames"] == 11
    s = c.predict(None, "7", 2.5, "8", "64", api_name="/set_settings")[0]
    assert s["settings"]["steps"] == 7 and s["settings"]["export_size"] == 64
    assert_plain("ok")
