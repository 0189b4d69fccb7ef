"""The studio's Project: timeline edits, undo/redo, takes, files, hostile files, atomic saves."""
import copy
import json
import os

import numpy as np
import pytest

from app.project import PROJECT_FORMAT, Project, ProjectError, atomic_write
from phenaki_core.pipelines import DEFAULT_GUIDANCE
from phenaki_core.story import RenderedSegment, Segment


def seg(prompt="a red circle moves right", frames=11, seed=1, transition="continue"):
    return Segment(prompt, frames, seed, transition)


@pytest.fixture
def project():
    p = Project(clip_frames=11, temporal_patch=2, frame_size=32, model_fps=8, model="tiny")
    p.add(seg("a red circle moves right", seed=1))
    p.add(seg("a red circle moves left", seed=2))
    p.add(seg("a blue circle moves left", seed=3))
    return p


def prompts(p):
    return [it.segment.prompt for it in p.items]


def fake_render(p, index, value):
    """A rendering as the story engine returns it (frames are arbitrary; only the Project is under test)."""
    it = p.items[index]
    frames = np.full((it.segment.frames, 32, 32, 3), value, np.uint8)
    return p.add_take(it.id, RenderedSegment(it.segment, "none", frames), p.settings.sampling_key())


def test_timeline_ops(project):
    p = project
    assert p.add(seg("a green square stays still"), index=2) == 2
    assert prompts(p)[1] == "a green square stays still"
    assert p.duplicate(1) == 2 and prompts(p)[:2] == ["a red circle moves right"] * 2
    assert p.delete(2) == 2 and len(p.items) == 4
    assert p.move(1, +1) == 2 and prompts(p)[:2] == ["a green square stays still", "a red circle moves right"]
    assert p.move(2, -1) == 1 and prompts(p)[0] == "a red circle moves right"
    with pytest.raises(ProjectError, match="already first"):
        p.move(1, -1)
    with pytest.raises(ProjectError, match="segment number"):
        p.delete(99)
    assert p.frames_from(1.5, "seconds") == 12 and p.frames_from(7, "frames") == 7
    assert [round(a, 3) for a, _ in p.timecodes()] == [0, 1.375, 2.75, 4.125]
    assert p.total_frames() == 44


@pytest.mark.parametrize("prompt, duration, unit, seed, message", [
    ("", 11, "frames", 0, "empty"),
    ("   ", 11, "frames", 0, "empty"),
    ("x" * 10_000, 11, "frames", 0, "10000 characters"),
    ("a red \x00circle", 11, "frames", 0, "U\\+0000"),
    ("a red \ud800 circle", 11, "frames", 0, "surrogate"),
    ("ok", 0, "frames", 0, "positive"),
    ("ok", -3, "seconds", 0, "positive"),
    ("ok", float("nan"), "seconds", 0, "positive"),
    ("ok", 1e12, "frames", 0, "far too long"),
    ("ok", 100_000, "frames", 0, "duration must be 1 to"),
    ("ok", 2.5, "frames", 0, "whole number"),
    ("ok", 11, "minutes", 0, "unit"),
    ("ok", 11, "frames", -1, "seed"),
    ("ok", 11, "frames", 2**40, "seed"),
    ("ok", 11, "frames", 1.5, "seed"),
])
def test_bad_edits_are_rejected_and_change_nothing(project, prompt, duration, unit, seed, message):
    before = project.to_json(history=True)
    with pytest.raises(ProjectError, match=message):
        project.update(2, project.make_segment(prompt, duration, unit, seed))
    assert project.to_json(history=True) == before


def test_odd_but_valid_unicode_is_kept(project):
    project.update(1, project.make_segment("a red circle 🔴 moves ➡ right — ünïcödé\nnext", 11, "frames", 5))
    assert project.items[0].segment.prompt == "a red circle 🔴 moves ➡ right — ünïcödé next"


def test_bad_settings_rejected(project):
    before = project.to_json(history=True)
    for kw, msg in [({"num_inference_steps": 0}, "steps"), ({"num_inference_steps": 10**9}, "steps"),
                    ({"guidance_scale": float("nan")}, "guidance"), ({"guidance_scale": float("inf")}, "guidance"),
                    ({"fps": 0}, "fps"), ({"export_size": 10**6}, "export size")]:
        with pytest.raises(ProjectError, match=msg):
            project.set_settings(**kw)
    assert project.to_json(history=True) == before
    assert project.set_settings(num_inference_steps=4, guidance_scale=1.5)
    assert project.settings.num_inference_steps == 4


def test_undo_redo(project):
    p = project
    start = prompts(p)
    p.update(2, seg("a yellow square moves up", seed=9))
    p.delete(1)
    p.move(1, +1)
    assert prompts(p) == ["a blue circle moves left", "a yellow square moves up"]
    p.undo(); p.undo()
    assert prompts(p) == ["a red circle moves right", "a yellow square moves up", "a blue circle moves left"]
    p.undo()
    assert prompts(p) == start and p.items[1].segment.seed == 2
    p.redo()
    assert prompts(p)[1] == "a yellow square moves up"
    p.add(seg("a white triangle grows"))  # a new edit drops the redo branch
    assert not p.can_redo()
    with pytest.raises(ProjectError, match="nothing to redo"):
        p.redo()


def test_takes_and_undo_of_delete_keeps_takes(project):
    p = project
    t1 = fake_render(p, 1, 10)
    assert p.active_take(1) is t1 and p.usable(1) is not None
    p.update(2, seg("a red circle moves up", seed=2))
    assert p.usable(1) is None  # edited: the take no longer describes the segment
    t2 = fake_render(p, 1, 20)
    assert [t.id for t in p.items[1].takes] == [t1.id, t2.id] and p.active_take(1) is t2
    p.pick_take(2, 1)
    assert p.items[1].segment.prompt == "a red circle moves left" and p.usable(1).frames[0, 0, 0, 0] == 10
    # the same recipe again refreshes its take instead of adding one
    fake_render(p, 1, 10)
    assert len(p.items[1].takes) == 2
    p.delete(2)
    p.undo()
    assert len(p.items[1].takes) == 2 and p.usable(1) is not None
    p.set_settings(num_inference_steps=3)
    assert p.usable(1) is None  # rendered with other sampling settings: stale
    with pytest.raises(ProjectError, match="take number"):
        p.pick_take(2, 7)


def test_save_load_round_trip(project, tmp_path):
    p = project
    fake_render(p, 0, 5)
    p.update(3, seg("a blue square moves left", seed=3, transition="cut"))
    p.set_settings(guidance_scale=2.5, fps=12, export_size=128)
    p.set_init_frames(np.arange(2 * 32 * 32 * 3, dtype=np.uint32).reshape(2, 32, 32, 3).astype(np.uint8))
    path = p.save(tmp_path / "p.json", history=True)
    text = path.read_text()
    assert "/tmp" not in text and str(tmp_path) not in text and "file" not in text  # no paths in a project file
    q = Project.load(path, **p.limits())
    assert q.story() == p.story() and q.settings == p.settings
    assert [it.id for it in q.items] == [it.id for it in p.items]
    assert q.items[0].takes[0].segment == p.items[0].takes[0].segment and q.items[0].takes[0].frames is None
    assert np.array_equal(q.init_frames, p.init_frames)
    q.undo()  # history came along
    assert q.settings.fps == 8
    # adopting a loaded project is one undoable step
    r = Project(**p.limits())
    r.add(seg("a white circle stays still"))
    r.adopt(q)
    assert r.story().segments == q.story().segments
    r.undo()
    assert prompts(r) == ["a white circle stays still"]


def _hostile(base: dict):
    def with_(path, value):
        d = copy.deepcopy(base)
        node = d
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        return json.dumps(d)
    return [
        ("{not json", "not valid JSON"),
        ("[]", "not a Phenaki Studio project"),
        (json.dumps({"format": "something-else"}), "not a Phenaki Studio project"),
        (with_(("story", "segments", 0, "prompt"), "../../etc/passwd"), None),  # a prompt is just text: allowed
        (with_(("story", "segments", 0, "path"), "../../etc/passwd"), "malformed"),
        (with_(("items", 0, "id"), "../../etc/passwd"), "invalid id"),
        (with_(("init_frames",), ["../../etc/passwd"]), "PNG"),
        (with_(("init_frames",), "/etc/passwd"), "init frames"),
        (with_(("story", "segments", 0, "frames"), 10**30), "duration"),
        (with_(("story", "segments", 0, "frames"), "11"), "duration"),
        (with_(("story", "segments", 0, "seed"), -5), "seed"),
        (with_(("story", "num_inference_steps"), 10**9), "steps"),
        (with_(("story", "segments"), "abc"), "malformed"),
        (with_(("story", "segments"), []), "segments"),
        (with_(("story", "segments", 0), 7), "malformed"),
        (with_(("items",), {"a": 1}), "items"),
        (with_(("settings", "fps"), "fast"), "fps"),
        (with_(("settings", "export_size"), 10**12), "export size"),
        (with_(("items", 0, "takes"), [{"segment": "x"}]), "malformed"),
        (json.dumps(base).replace(f'"guidance_scale": {DEFAULT_GUIDANCE}', '"guidance_scale": NaN'), "NaN"),
        (json.dumps(base).replace(f'"guidance_scale": {DEFAULT_GUIDANCE}', '"guidance_scale": 1e999'), "guidance"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply|not a Phenaki"),
        (b"\xff\xfe{}", "UTF-8"),  # a UTF-16 byte-order mark: bytes as read from disk
    ]


def test_hostile_project_files_rejected_project_unchanged(project, tmp_path):
    base = json.loads(project.to_json())
    assert base["format"] == PROJECT_FORMAT
    before = project.to_json(history=True)
    for text, message in _hostile(base):
        if message is None:  # the one allowed case, checked below
            continue
        with pytest.raises(ProjectError, match=message):
            project.adopt(Project.from_json(text, **project.limits()))
        assert project.to_json(history=True) == before
    # a prompt that looks like a path is only text: it loads, and nothing reads it
    ok = Project.from_json(_hostile(base)[3][0], **project.limits())
    assert ok.items[0].segment.prompt == "../../etc/passwd"
    assert sum(message is None for _, message in _hostile(base)) == 1  # every other case ran above
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (9 * 1024 * 1024))
    with pytest.raises(ProjectError, match="too large"):
        Project.load(big, **project.limits())


def test_atomic_save_keeps_old_file_on_crash(project, tmp_path, monkeypatch):
    path = project.save(tmp_path / "p.json")
    old = path.read_bytes()
    project.update(1, seg("a purple square shrinks", seed=4))

    def crash(*a, **k):
        raise OSError("simulated crash before the rename")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        project.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert [f.name for f in tmp_path.iterdir()] == ["p.json"]  # no temp file left behind
    # a crash mid-write (the writer dies after a partial write): the old file is untouched
    real_open = open

    class Half:
        def __init__(self, f):
            self.f = f
        def __enter__(self):
            return self
        def __exit__(self, *a):
            self.f.close()
        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise KeyboardInterrupt("killed mid-write")
        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr("builtins.open", lambda p, m="r", *a, **k: Half(real_open(p, m, *a, **k)) if "w" in m else real_open(p, m, *a, **k))
    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, project.to_json())
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert Project.load(path, **project.limits()).items[0].segment.prompt == "a red circle moves right"
