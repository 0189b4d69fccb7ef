"""Many clients at once, and a server killed mid-render.

8 API clients x 5 renders each: no failure, no client sees another's work, every render's
frames equal a direct render of the same recipe, and memory settles. A render killed with
SIGKILL at several points: every autosave loads, and every segment saved before the kill
is there with its frames, bit for bit.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from hostile_helpers import add, client, summary

from phenaki_core.story import Segment, Story, StoryRenderer

CLIENTS, RENDERS = 8, 5
PROMPTS = ["a red circle moves right", "a blue square moves left", "a green triangle moves up",
           "a yellow circle grows", "a white square shrinks", "a purple circle moves down",
           "a cyan triangle moves right", "an orange square stays still"]


def reference(pipe, prompt, seed, steps=1):
    r = StoryRenderer(pipe, Story([Segment(prompt, 11, seed)], num_inference_steps=steps, guidance_scale=3.0))
    r.render()
    return r.frames()


@pytest.mark.hostile("concurrency")
def test_eight_clients_five_renders_each(studio, tiny_pipe):
    import gc
    import threading

    url, _, _ = studio
    proc = psutil.Process()
    gc.collect()
    rss0, threads0 = proc.memory_info().rss, threading.active_count()

    def work(i):
        c = client(url)
        c.predict(None, 1, 3.0, 8, 64, api_name="/set_settings")
        add(c, PROMPTS[i], seed=i * 100)
        got = []
        for r in range(RENDERS):
            seed = i * 100 + r
            c.predict(1, PROMPTS[i], 11, "frames", seed, True, "continue", api_name="/update_segment")
            s = c.predict(1, api_name="/render_segment")[0]
            assert [x["status"] for x in s["segments"]] == ["rendered"], s
            assert [x["prompt"] for x in s["segments"]] == [PROMPTS[i]]  # its own work only
            paths = c.predict("npy", api_name="/export")
            npy = next(p for p in (x if isinstance(x, str) else x["path"] for x in paths) if p.endswith(".npy"))
            got.append((seed, np.load(npy)))
        return i, got, summary(c)

    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(CLIENTS) as ex:
        results = list(ex.map(work, range(CLIENTS)))
    wall = time.monotonic() - t0
    ids = set()
    for i, got, s in results:
        ids.add(s["project_id"])
        assert len(got) == RENDERS and len(s["segments"][0]["takes"]) == RENDERS
        for seed, frames in got:
            assert np.array_equal(frames, reference(tiny_pipe, PROMPTS[i], seed)), (i, seed)
    assert len(ids) == CLIENTS  # eight sessions, none shared
    gc.collect()
    time.sleep(1)
    grew = (proc.memory_info().rss - rss0) / 2**20
    print(f"FIGURE concurrency: {CLIENTS} clients x {RENDERS} renders in {wall:.0f} s, all frames equal to a direct "
          f"render, {len(ids)} separate projects, RSS growth {grew:.0f} MB, threads {threads0} -> "
          f"{threading.active_count()}")
    assert threading.active_count() <= threads0 + 4  # render workers ended
    assert grew < 400  # 40 takes of 11 small frames, not a leak


KILL_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from tests.conftest import make_tiny_pipeline
    from app.render import Studio
    from phenaki_core.story import Segment

    st = Studio(make_tiny_pipeline(), {sid!r}, {projects!r}, {work!r}, "tiny")
    st.project.set_settings(num_inference_steps=2)
    for n in range(8):
        st.project.add(Segment(f"a red circle moves right {{n}}", 11, n))
    st.autosave()
    for kind, data in st.iter_render():
        if kind == "segment":
            print("SAVED", data["done"], flush=True)  # after the autosave of this segment
""")


@pytest.mark.hostile("crash")
@pytest.mark.parametrize("kill_after", [1, 3, 5])
def test_kill_during_render_loses_nothing_saved(tiny_pipe, tmp_path, kill_after):
    from app.render import Studio, new_session_id

    sid = new_session_id()
    projects, work = tmp_path / "projects", tmp_path / "work"
    root = str(Path(__file__).resolve().parents[2])
    script = KILL_SCRIPT.format(root=root, sid=sid, projects=str(projects), work=str(work))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": root}
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    saved = 0
    try:
        for line in p.stdout:
            if line.startswith("SAVED"):
                saved = int(line.split()[1])
                if saved >= kill_after:
                    os.kill(p.pid, signal.SIGKILL)  # mid-way through the next segment
                    break
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=60)
    assert saved >= kill_after, "the render ended before the kill"
    st = Studio.restore(tiny_pipe, sid, projects, work, "tiny")
    status = st.status()
    assert len(status) == 8  # the autosave loads, the whole timeline is there
    rendered = [i for i, s in enumerate(status) if s == "rendered"]
    assert rendered == list(range(len(rendered))) and len(rendered) >= saved
    # the saved frames are those a render of the same story gives, bit for bit
    story = st.project.story()
    r = StoryRenderer(tiny_pipe, Story(story.segments[:len(rendered)], num_inference_steps=2,
                                       guidance_scale=story.guidance_scale))
    r.render()
    mine = np.concatenate([st.project.usable(i).frames for i in rendered])
    assert np.array_equal(mine, r.frames())
    print(f"FIGURE crash: killed after {saved} saved segment(s): autosave loads, {len(rendered)} rendered segment(s) "
          f"kept, frames bit-identical")
