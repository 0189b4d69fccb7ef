"""Bundles whose takes carry hostile tokens, opened through the studio's API: refused in one
plain sentence, the open project left as it was; a sound one opens rendered, tokens and all."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from gradio_client import handle_file
from hostile_helpers import add, client, project_state, refused, summary

pytestmark = pytest.mark.hostile("files")


@pytest.fixture(scope="module")
def bundle_entries(tiny_pipe, tmp_path_factory):
    """A one-segment bundle rendered on the suite's model, with its take's tokens; its entries and take key."""
    from app.bundle import TokenSpec, write_bundle
    from app.project import Project
    from app.render import project_limits, takes_arrays
    from phenaki_core import Segment, StoryRenderer

    limits = project_limits(tiny_pipe, "tiny")
    p = Project(**limits)
    p.set_settings(num_inference_steps=1)
    p.add(Segment("a red circle moves right", 16, 1))
    r = StoryRenderer(tiny_pipe, p.story())
    r.render()
    take = p.add_take(p.items[0].id, r.results[0], p.settings.sampling_key())
    assert take.tokens is not None and take.context_lengths == (0, 5)
    path = write_bundle(tmp_path_factory.mktemp("tokens") / "good.zip", p.to_json(), takes_arrays(p),
                        frame_size=p.frame_size, tokens=TokenSpec.of(limits))
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}, f"{p.items[0].id}-{take.id}"


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _bundle(tmp_path, entries, key, kind=None, array=None):
    entries = dict(entries)
    if kind is not None:
        manifest = json.loads(entries["phenaki-bundle.json"])
        manifest["takes"][key][kind] = list(array.shape)
        entries["phenaki-bundle.json"] = json.dumps(manifest).encode()
        entries[f"takes/{key}.{kind}.npy"] = _npy(array)
    path = tmp_path / "shared.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in entries.items():
            z.writestr(n, d)
    return path


CASES = {
    "codes past the codebook": ("tokens", np.full((2, 6, 4, 4), 60_000, np.uint16), "outside this model's codebook"),
    "another model's grid": ("tokens", np.zeros((2, 6, 8, 8), np.int16), "tokens of another model"),
    "float tokens": ("tokens", np.zeros((2, 6, 4, 4), np.float64), "whole numbers"),
    "lengths that make other frames": ("context_lengths", np.array([0, 9], np.int16), "make 13 new frames"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_tokens_in_a_bundle_are_refused_plainly(studio, bundle_entries, tmp_path, case):
    url, root, _ = studio
    c = client(url)
    add(c, "a blue square grows", seed=4)
    before = project_state(summary(c))
    kind, array, expected = CASES[case]
    msg = refused(c, handle_file(str(_bundle(tmp_path, *bundle_entries, kind, array))), api_name="/load_project",
                  root=root)
    assert expected in msg, msg
    assert project_state(summary(c)) == before


def test_a_bundle_with_sound_tokens_opens_rendered(studio, bundle_entries, tmp_path):
    c = client(studio[0])
    s = c.predict(handle_file(str(_bundle(tmp_path, *bundle_entries))), api_name="/load_project")[0]
    assert [x["status"] for x in s["segments"]] == ["rendered"]
