"""Work kept and cleaned: an API client reaches its project again after a restart by its id;
session folders nobody touched for the set time are removed (live ones never); a project
made with another model is warned about; the Host header is checked."""
from __future__ import annotations

import http.client
import json
import os
import time

import pytest
from gradio_client.exceptions import AppError
from hostile_helpers import add, assert_plain, client, launch, summary

from app.project import Project
from app.render import new_session_id

pytestmark = pytest.mark.hostile("restart")
SESSION_MAX_AGE_DAYS = 30  # app.bounds owns it; test_clean_up_age_is_the_studios checks the two agree


def test_api_client_reaches_its_project_after_a_restart(tiny_pipe, tmp_path):
    """Every API client's work was autosaved under a session id it never learnt."""
    demo, url = launch(tiny_pipe, tmp_path)
    try:
        c = client(url)
        add(c, "a red circle moves right", seed=3)
        s = add(c, "a blue square moves left", seed=4)
        pid = s["project_id"]
    finally:
        demo.close()
    demo, url = launch(tiny_pipe, tmp_path)  # a new server process on the same folders
    try:
        c = client(url)
        s = c.predict(pid, api_name="/open_project")[0]
        assert [x["prompt"] for x in s["segments"]] == ["a red circle moves right", "a blue square moves left"]
        assert s["project_id"] == pid and s["can_undo"]
        s = add(c, "a green circle grows")  # and it goes on working there
        assert len(s["segments"]) == 3 and s["project_id"] == pid
    finally:
        demo.close()


@pytest.mark.parametrize("bad", ["../../etc", "x" * 32, "ABCDEF" * 6, "0" * 31, "<b>id</b>", "a" * 33, 5, "/tmp"])
def test_bad_project_id_refused(studio, bad):
    url, root, _ = studio
    c = client(url)
    add(c, "a red circle moves right")
    before = summary(c)
    with pytest.raises(AppError) as e:
        c.predict(bad, api_name="/open_project")
    assert_plain(str(e.value), root)
    assert "project id" in str(e.value)
    assert summary(c) == before


def test_unknown_project_id_is_an_empty_project(studio):
    c = client(studio[0])
    pid = new_session_id()
    s = c.predict(pid, api_name="/open_project")[0]
    assert s["project_id"] == pid and s["segments"] == []


def test_looking_leaves_no_folder_behind(studio):
    """Every API client left a session folder behind forever; one that only looks leaves none."""
    url, root, _ = studio
    before = set(os.listdir(root / "projects"))
    c = client(url)
    with pytest.raises(AppError, match="empty"):
        c.predict(1, "frames", api_name="/select_segment")
    with pytest.raises(AppError, match="nothing to undo"):
        c.predict(1, "frames", api_name="/undo")
    assert set(os.listdir(root / "projects")) == before


def _session(root, sid, age_days, files=("project.json",)):
    for sub in ("projects", "work"):
        d = root / sub / sid
        d.mkdir(parents=True, exist_ok=True)
        for f in files:
            (d / f).write_text("{}")
        t = time.time() - age_days * 86400
        for p in [d, *d.iterdir()]:
            os.utime(p, (t, t))


@pytest.mark.parametrize("age_days, kept", [(0, True), (SESSION_MAX_AGE_DAYS - 1, True),
                                            (SESSION_MAX_AGE_DAYS + 1, False), (400, False)])
def test_old_session_folders_are_cleaned(tiny_pipe, tmp_path, age_days, kept):
    from app.sessions import Sessions

    sid = new_session_id()
    _session(tmp_path, sid, age_days)
    (tmp_path / "projects" / "notes").mkdir()  # not a session folder: never touched
    (tmp_path / "projects" / ".browser-state-secret").write_text("s")
    Sessions(tiny_pipe, tmp_path / "projects", tmp_path / "work", "tiny")  # cleans at start
    for sub in ("projects", "work"):
        assert (tmp_path / sub / sid).exists() == kept
    assert (tmp_path / "projects" / "notes").is_dir() and (tmp_path / "projects" / ".browser-state-secret").exists()


def test_a_live_session_is_never_cleaned(tiny_pipe, tmp_path):
    from app.sessions import Sessions

    sessions = Sessions(tiny_pipe, tmp_path / "projects", tmp_path / "work", "tiny", max_age_s=60)
    st = sessions.open(None)
    _session(tmp_path, st.id, 1)
    assert sessions.clean() == []
    assert (tmp_path / "projects" / st.id).is_dir()


def test_recently_touched_file_keeps_an_old_folder(tiny_pipe, tmp_path):
    from app.sessions import Sessions

    sid = new_session_id()
    _session(tmp_path, sid, 400)
    (tmp_path / "projects" / sid / "frames.npz").write_text("new")  # touched now
    Sessions(tiny_pipe, tmp_path / "projects", tmp_path / "work", "tiny")
    assert (tmp_path / "projects" / sid).is_dir()


def test_project_from_another_model_is_warned_about(tmp_path):
    """The check compared the server's model with itself (from_dict stamped it on the file)."""
    p = Project(clip_frames=11, temporal_patch=2, frame_size=32, model_fps=8, model="phenaki-other")
    from phenaki_core.story import Segment
    p.add(Segment("a red circle moves right", 11, 1))
    text = p.to_json()
    loaded = Project.from_json(text, clip_frames=11, temporal_patch=2, frame_size=32, model_fps=8, model="tiny")
    assert loaded.made_with == "phenaki-other" and loaded.model == "tiny"
    mine = Project.from_json(Project(clip_frames=11, temporal_patch=2, frame_size=32, model="tiny").to_json(),
                             clip_frames=11, temporal_patch=2, frame_size=32, model="tiny")
    assert mine.made_with == "tiny"


def test_other_model_warning_reaches_the_page(studio, tmp_path):
    from gradio_client import handle_file

    url = studio[0]
    p = Project(clip_frames=11, temporal_patch=2, frame_size=32, model_fps=8, model="phenaki-other")
    from phenaki_core.story import Segment
    p.add(Segment("a red circle moves right", 11, 1))
    path = tmp_path / "other.json"
    path.write_text(p.to_json())
    c = client(url)
    s = c.predict(handle_file(str(path)), api_name="/load_project")[0]
    assert s["segments"][0]["prompt"] == "a red circle moves right"
    assert s["made_with"] == "phenaki-other" and s["model"] == "tiny"  # the page warns (gr.Warning) on load


@pytest.mark.parametrize("host, ok", [("127.0.0.1", True), ("localhost", True), ("evil.example.com", False),
                                      ("attacker.test:7860", False), ("127.0.0.1.nip.io", False)])
def test_host_header_checked(studio, host, ok):
    """A DNS-rebinding page reaches a local server under its own name: the Host header says so."""
    url = studio[0]
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/gradio_api/info", headers={"Host": host})
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    if ok:
        assert r.status == 200 and json.loads(body)
    else:
        assert r.status == 400, (r.status, body[:200])


def test_clean_up_age_is_the_studios():
    from app import bounds

    assert bounds.SESSION_MAX_AGE_DAYS == SESSION_MAX_AGE_DAYS
