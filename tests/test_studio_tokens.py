"""The studio keeps each take's tokens: exports and the player at a size the model draws draw
the tokens the story was sampled as (bit for bit what `draw_clips` makes of them), bundles and
the autosave carry them, takes without them (old files) are tokenized again after the frames
they continued, and hostile token entries are refused in plain words before they cost memory.
All on the tiny model with an upsampler (its head perturbed, so drawing and upscaling differ)."""
import io
import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from app import bundle as bundle_mod
from app.bundle import MANIFEST, BundleError, TokenSpec, read_bundle, write_bundle
from app.messages import plain
from app.project import Project, ProjectError
from app.render import Studio, new_session_id, project_from_bundle, project_limits
from phenaki_core import Segment, StoryRenderer

SIZE, DRAWN = 32, 64  # the tiny model's frames, and its upsampler's


@pytest.fixture(scope="module")
def drawn(tiny_drawing_pipe):
    return tiny_drawing_pipe


SEGMENTS = [Segment("a red circle moves right", 11, 1), Segment("a red circle moves down", 16, 2),
            Segment("a blue square grows", 6, 3, "cut")]


def make_studio(pipe, tmp_path, segments=SEGMENTS, init=None, sid=None) -> Studio:
    st = Studio(pipe, sid or new_session_id(), tmp_path / "projects", tmp_path / "work", "tiny")
    st.project.set_settings(num_inference_steps=1, export_size=DRAWN)
    for s in segments:
        st.project.add(s)
    if init is not None:
        st.project.set_init_frames(init)
    return st


def rendered(pipe, tmp_path, **kw) -> Studio:
    st = make_studio(pipe, tmp_path, **kw)
    assert list(st.iter_render())[-1][0] == "done"
    return st


@pytest.fixture(scope="module")
def studio(drawn, tmp_path_factory):
    return rendered(drawn, tmp_path_factory.mktemp("tokens"))


def exported(st, monkeypatch, fmt="mp4") -> np.ndarray:
    """The frames `Studio.export` hands to the writer (the file itself is lossy)."""
    import app.render

    got = {}
    real = app.render.export_story

    def spy(frames, *args, **kwargs):
        got["frames"], got["learned"] = frames, kwargs.get("learned")
        return real(frames, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(app.render, "export_story", spy)
        st.export(fmt)
    assert got["learned"] is True
    return got["frames"]


def from_tokens(pipe, st) -> np.ndarray:
    takes = [st.project.active_take(i) for i in range(len(st.project.items))]
    return np.concatenate([pipe.draw_clips(t.tokens, t.context_lengths, len(t.frames), DRAWN) for t in takes])


def no_sampling(monkeypatch, pipe):
    def boom(*a, **k):
        raise AssertionError("the model sampled")
    monkeypatch.setattr(pipe, "sample_tokens", boom)


# -- what a take keeps ----------------------------------------------------------------------------

def test_a_take_keeps_its_clips_tokens_compactly(studio, drawn, tiny_pipe):
    t = [studio.project.active_take(i) for i in range(3)]
    assert drawn.codebook_size == 1024 and drawn.clip_token_shape == (6, 4, 4)
    assert studio.project.tokenizer == drawn.tokenizer_revision == tiny_pipe.tokenizer_revision  # not the upsampler's
    assert [x.tokens.shape for x in t] == [(1, 6, 4, 4), (3, 6, 4, 4), (1, 6, 4, 4)]
    assert all(x.tokens.dtype == np.int16 for x in t)  # 1,024 codes: int16 holds them
    assert [x.context_lengths for x in t] == [(0,), (5, 5, 5), (0,)]  # 16 frames: 6 + 6 + 6 new
    # at the model's own size they draw exactly the rendered frames
    for x in t:
        assert np.array_equal(drawn.draw_clips(x.tokens, x.context_lengths, len(x.frames), SIZE), x.frames)


# -- exports and the player ------------------------------------------------------------------------

def test_export_at_the_drawn_size_is_the_takes_tokens_drawn_bit_for_bit(studio, drawn, monkeypatch):
    expected = from_tokens(drawn, studio)
    for fmt in ("mp4", "gif"):
        assert np.array_equal(exported(studio, monkeypatch, fmt), expected), fmt
    # the same story rendered by the library alone, drawn at that size: the tokens are the sampled ones
    r = StoryRenderer(drawn, studio.project.story())
    r.render()
    assert np.array_equal(r.frames(DRAWN), expected)
    # and not what tokenizing the frames again gives
    assert not np.array_equal(expected, drawn.redraw(studio.story_frames(), DRAWN))


def test_the_player_draws_the_tokens_too(studio, drawn, monkeypatch):
    import app.render

    got = []
    monkeypatch.setattr(app.render, "write_video", lambda frames, path, **kw: (got.append(frames), path.touch()))
    studio.player_path(2)
    assert np.array_equal(got[0], from_tokens(drawn, studio)[:27])


def test_the_player_draws_only_the_new_segment_after_each_render(drawn, tmp_path, monkeypatch):
    """The player draws the whole rendered prefix after every segment; each take is drawn once
    (from its tokens), not again for every later segment, and the frames stay bit for bit."""
    import app.render

    st = make_studio(drawn, tmp_path, segments=SEGMENTS[:2])
    drawn_clips = []
    real = drawn.draw_clips
    monkeypatch.setattr(drawn, "draw_clips", lambda tokens, *a, **k: (drawn_clips.append(len(tokens)), real(tokens, *a, **k))[1])
    monkeypatch.setattr(app.render, "write_video", lambda frames, path, **kw: path.touch())
    assert list(st.iter_render(1))[-1][0] == "done"
    st.player_path(1)
    assert drawn_clips == [1]
    assert list(st.iter_render(2))[-1][0] == "done"
    st.player_path(2)
    assert drawn_clips == [1, 3]  # segment 2 alone: segment 1 came from the cache
    frames = exported(st, monkeypatch)
    assert drawn_clips == [1, 3]  # the export drew nothing again
    assert np.array_equal(frames, from_tokens(drawn, st))


# -- bundles ---------------------------------------------------------------------------------------

def reopen(pipe, path, tmp_path) -> Studio:
    st = Studio(pipe, new_session_id(), tmp_path / "projects2", tmp_path / "work2", "tiny")
    st.project.adopt(project_from_bundle(path, **project_limits(pipe, "tiny")))
    return st


def test_a_bundle_keeps_the_tokens_and_exports_the_same_without_rendering(studio, drawn, tmp_path, monkeypatch):
    path = studio.bundle_file()
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read(MANIFEST))
    assert sum(n.endswith(".tokens.npy") for n in names) == 3 and sum(n.endswith(".context_lengths.npy") for n in names) == 3
    assert all(set(k) == {"frames", "tokens", "context_lengths"} for k in manifest["takes"].values())
    expected = exported(studio, monkeypatch)
    no_sampling(monkeypatch, drawn)
    st = reopen(drawn, path, tmp_path)
    assert st.status() == ["rendered"] * 3
    for i in range(3):
        a, b = st.project.active_take(i), studio.project.active_take(i)
        assert np.array_equal(a.tokens, b.tokens) and a.tokens.dtype == np.int16 and a.context_lengths == b.context_lengths
    got = exported(st, monkeypatch)
    assert np.array_equal(got, expected)


def strip_tokens(pipe, st, path, keep=()) -> None:
    """The studio's bundle as one written before takes kept tokens (bar the segments in `keep`)."""
    p = st.project
    takes = {}
    for i, it in enumerate(p.items):
        for t in it.takes:
            arrays = {"frames": t.frames}
            if i in keep:
                arrays.update(tokens=t.tokens, context_lengths=np.asarray(t.context_lengths))
            takes[f"{it.id}-{t.id}"] = arrays
    write_bundle(path, p.to_json(), takes, tokens=TokenSpec.of(p.limits()))


def retokenized(pipe, frames_by_segment, init=None) -> list[np.ndarray]:
    """By hand: segment 1 after the start frames (if any), segment 2 after segment 1, segment 3 a cut."""
    f1, f2, f3 = frames_by_segment
    return [pipe.redraw(f1, DRAWN, 5, before=init), pipe.redraw(f2, DRAWN, 5, before=f1), pipe.redraw(f3, DRAWN, 5)]


def test_a_bundle_without_tokens_opens_and_exports_by_tokenizing_again(studio, drawn, tmp_path, monkeypatch):
    path = tmp_path / "old.zip"
    strip_tokens(drawn, studio, path)
    no_sampling(monkeypatch, drawn)
    st = reopen(drawn, path, tmp_path)
    assert st.status() == ["rendered"] * 3 and all(st.project.active_take(i).tokens is None for i in range(3))
    frames = [studio.project.active_take(i).frames for i in range(3)]
    parts = retokenized(drawn, frames)
    assert np.array_equal(exported(st, monkeypatch), np.concatenate(parts))
    # segment 2 continued segment 1's last five frames: tokenized after them, as it was sampled
    whole = drawn.redraw(np.concatenate([frames[0][-5:], frames[1]]), DRAWN, 5)
    assert np.array_equal(parts[1], whole[5:])
    assert not np.array_equal(parts[1], drawn.redraw(frames[1], DRAWN, 5))

    # a take with tokens beside takes without: each drawn its own way
    path = tmp_path / "mixed.zip"
    strip_tokens(drawn, studio, path, keep=(0,))
    st = reopen(drawn, path, tmp_path)
    mixed = np.concatenate([from_tokens(drawn, studio)[:11], parts[1], parts[2]])
    assert np.array_equal(exported(st, monkeypatch), mixed)


def test_start_frames_lead_in_and_stay_out_of_the_export(drawn, tmp_path, monkeypatch):
    init = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    st = rendered(drawn, tmp_path, segments=SEGMENTS[:2], init=init)
    assert [st.project.active_take(i).context_lengths for i in range(2)] == [(3, 5), (5, 5, 5)]
    got = exported(st, monkeypatch)
    assert got.shape == (27, DRAWN, DRAWN, 3)  # the start frames are context, not exported (as at 32)
    assert np.array_equal(got, from_tokens(drawn, st))
    path = tmp_path / "old.zip"
    strip_tokens(drawn, st, path)
    again = reopen(drawn, path, tmp_path)
    assert again.project.init_frames is not None
    f1, f2 = (st.project.active_take(i).frames for i in range(2))
    expected = np.concatenate([drawn.redraw(f1, DRAWN, 5, before=init), drawn.redraw(f2, DRAWN, 5, before=f1)])
    assert np.array_equal(exported(again, monkeypatch), expected)


# -- stale takes, undo, take switching ---------------------------------------------------------------

def test_tokens_stay_with_their_take(drawn, tmp_path, monkeypatch):
    st = rendered(drawn, tmp_path)
    first = exported(st, monkeypatch)
    old_tokens = st.project.active_take(1).tokens.copy()

    st.project.update(2, replace(st.project.items[1].segment, prompt="a red circle moves up"))
    with pytest.raises(ProjectError, match="stale"):  # as for frames: an edited segment's take is not drawn
        st.export("mp4")
    assert st.status() == ["rendered", "stale", "rendered"]
    st.project.undo()
    assert np.array_equal(exported(st, monkeypatch), first)

    # a second take of segment 2 (another seed) draws its own tokens; picking take 1 again draws the first
    st.project.update(2, replace(st.project.items[1].segment, seed=77))
    assert list(st.iter_render())[-1][0] == "done"
    second = st.project.active_take(1)
    assert len(st.project.items[1].takes) == 2 and not np.array_equal(second.tokens, old_tokens)
    assert np.array_equal(exported(st, monkeypatch), from_tokens(drawn, st))
    st.project.pick_take(2, 1)
    assert np.array_equal(st.project.active_take(1).tokens, old_tokens)
    assert np.array_equal(exported(st, monkeypatch), first)
    st.project.undo()  # back to take 2
    assert st.project.active_take(1) is second
    assert np.array_equal(exported(st, monkeypatch)[11:27], drawn.draw_clips(second.tokens, second.context_lengths,
                                                                            16, DRAWN))


def test_a_rerender_of_the_same_recipe_refreshes_frames_and_tokens_together(drawn):
    p = Project(**project_limits(drawn, "tiny"))
    p.add(SEGMENTS[0])
    r = StoryRenderer(drawn, p.story())
    r.render()
    take = p.add_take(p.items[0].id, r.results[0], p.settings.sampling_key())
    assert take.tokens is not None
    bare = replace(r.results[0], tokens=[], context_lengths=[])  # a rendering without tokens (a library caller)
    assert p.add_take(p.items[0].id, bare, p.settings.sampling_key()) is take
    assert take.tokens is None and take.context_lengths is None  # no stale tokens beside new frames


# -- the autosave ------------------------------------------------------------------------------------

def test_the_autosave_keeps_tokens_and_an_old_one_still_loads(drawn, tmp_path, monkeypatch, caplog):
    st = rendered(drawn, tmp_path)
    expected = exported(st, monkeypatch)
    no_sampling(monkeypatch, drawn)
    back = Studio.restore(drawn, st.id, tmp_path / "projects", tmp_path / "work", "tiny")
    assert back.status() == ["rendered"] * 3
    assert all(back.project.active_take(i).tokens is not None for i in range(3))
    assert np.array_equal(exported(back, monkeypatch), expected)

    npz = tmp_path / "projects" / st.id / "frames.npz"
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    assert sum(k.endswith(".tokens") for k in arrays) == 3
    old = {k: v for k, v in arrays.items() if "." not in k}  # as written before tokens were kept
    np.savez(npz, **old)
    back = Studio.restore(drawn, st.id, tmp_path / "projects", tmp_path / "work", "tiny")
    assert back.status() == ["rendered"] * 3 and all(back.project.active_take(i).tokens is None for i in range(3))
    frames = [back.project.active_take(i).frames for i in range(3)]
    assert np.array_equal(exported(back, monkeypatch), np.concatenate(retokenized(drawn, frames)))

    bad = dict(arrays)
    key = next(k for k in arrays if k.endswith(".tokens"))
    bad[key] = np.full_like(arrays[key], 5000)  # out of the codebook: dropped, the frames kept
    np.savez(npz, **bad)
    back = Studio.restore(drawn, st.id, tmp_path / "projects", tmp_path / "work", "tiny")
    assert back.status() == ["rendered"] * 3
    assert sum(back.project.active_take(i).tokens is None for i in range(3)) == 1
    assert "outside this model's codebook" in caplog.text


# -- hostile token entries ------------------------------------------------------------------------------

def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@pytest.fixture
def good(studio, tmp_path):
    """A bundle's entries, the key of segment 2's take (16 frames, three clips) and the model's limits."""
    path = studio.bundle_file()
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    p = studio.project
    return entries, f"{p.items[1].id}-{p.items[1].active}", project_limits(studio.pipe, "tiny")


def _with(entries, key, kind, array=None, declared=None, data=None):
    out = dict(entries)
    manifest = json.loads(out[MANIFEST])
    if array is None and data is None:
        manifest["takes"][key].pop(kind)
        out.pop(f"takes/{key}.{kind}.npy")
    else:
        manifest["takes"][key][kind] = declared if declared is not None else list(np.shape(array))
        out[f"takes/{key}.{kind}.npy"] = data if data is not None else _npy(array)
    out[MANIFEST] = json.dumps(manifest).encode()
    return out


def _zip(tmp_path, entries):
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in entries.items():
            z.writestr(n, d)
    return path


TOK = "tokens"
CTX = "context_lengths"
HOSTILE = {
    "float tokens": ({TOK: np.zeros((3, 6, 4, 4), np.float32)}, "whole numbers"),
    "object tokens": ({TOK: np.full((3, 6, 4, 4), None, dtype=object)}, "plain little-endian"),
    "code at the codebook size": ({TOK: np.full((3, 6, 4, 4), 1024, np.int16)}, "token 1024 is outside this model's"),
    "negative code": ({TOK: np.full((3, 6, 4, 4), -1, np.int16)}, "token -1 is outside"),
    "huge code": ({TOK: np.full((3, 6, 4, 4), 2**31 - 1, np.int32)}, "outside this model's codebook"),
    "another model's grid": ({TOK: np.zeros((3, 6, 8, 8), np.int16)}, "tokens of another model"),
    "three dimensions": ({TOK: np.zeros((6, 4, 4), np.int16)}, "malformed tokens shape"),
    "more clips than lengths": ({TOK: np.zeros((4, 6, 4, 4), np.int16)}, "one whole number per clip"),
    "more clips than frames": ({TOK: np.zeros((17, 6, 4, 4), np.int16)}, "17 clips for 16 frames"),
    "float lengths": ({CTX: np.array([5.0, 5.0, 5.0])}, "one whole number per clip"),
    "lengths of a wrong count": ({CTX: np.array([5, 5], np.int16)}, "one whole number per clip"),
    "a length the tokenizer cannot take": ({CTX: np.array([5, 4, 5], np.int16)}, "clip 2 begins with 4"),
    "a later clip starting afresh": ({CTX: np.array([5, 0, 5], np.int16)}, "clip 2 begins with 0"),
    "a length of a whole clip": ({CTX: np.array([11, 5, 5], np.int16)}, "clip 1 begins with 11"),
    "negative length": ({CTX: np.array([-1, 5, 5], np.int64)}, "clip 1 begins with -1"),
    "too few frames": ({CTX: np.array([5, 9, 9], np.int16)}, "make 10 new frames, not the take's 16"),
    "a clip too many": ({CTX: np.array([0, 5, 5], np.int16)}, "make 23 new frames, not the take's 16"),
    "no lengths": ({CTX: None}, "come together"),
    "no tokens": ({TOK: None}, "come together"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_token_entries_are_refused_plainly(good, tmp_path, case):
    entries, key, limits = good
    arrays, message = HOSTILE[case]
    for kind, a in arrays.items():
        entries = _with(entries, key, kind, a)
    path = _zip(tmp_path, entries)
    with pytest.raises(BundleError, match=message) as e:
        project_from_bundle(path, **limits)
    msg = str(e.value)
    assert plain(msg) == msg and "Traceback" not in msg and str(tmp_path) not in msg  # a sentence, shown as it is


def test_huge_token_entries_are_refused_before_they_are_read(good, tmp_path, monkeypatch):
    entries, key, limits = good
    read = []
    real = bundle_mod._read_entry
    monkeypatch.setattr(bundle_mod, "_read_entry", lambda z, info, limit: (read.append(info.filename),
                                                                            real(z, info, limit))[1])
    # an honest manifest for 19 MB of tokens: far more clips than the take's 16 frames need
    big = np.zeros((100_000, 6, 4, 4), np.int16)
    path = _zip(tmp_path, _with(entries, key, TOK, big))
    with pytest.raises(BundleError, match="100000 clips for 16 frames"):
        read_bundle(path, frame_size=SIZE, tokens=TokenSpec.of(limits))
    assert not any(n.endswith((".tokens.npy", ".frames.npy")) for n in read)
    # a manifest that lies small about a large entry
    read.clear()
    path = _zip(tmp_path, _with(entries, key, TOK, declared=[3, 6, 4, 4], data=_npy(big)))
    with pytest.raises(BundleError, match="larger than its declared shape"):
        read_bundle(path, frame_size=SIZE, tokens=TokenSpec.of(limits))
    assert not any(n.endswith(".tokens.npy") for n in read)
    # absurd declared shapes are a malformed manifest, not arithmetic on them
    for shape in ([10**12, 6, 4, 4], [2, 6, 4, "4"], "x", [True, 6, 4, 4]):
        path = _zip(tmp_path, _with(entries, key, TOK, declared=shape, data=_npy(np.zeros((3, 6, 4, 4), np.int16))))
        with pytest.raises(BundleError, match="malformed tokens shape"):
            read_bundle(path, frame_size=SIZE, tokens=TokenSpec.of(limits))


def test_writing_checks_tokens_too(studio, tmp_path):
    from app.render import takes_arrays

    p = studio.project
    takes = takes_arrays(p)
    key = f"{p.items[0].id}-{p.items[0].active}"
    takes[key] = {**takes[key], "tokens": takes[key]["tokens"] + 2000}
    with pytest.raises(BundleError, match="outside this model's codebook"):
        write_bundle(tmp_path / "x.zip", p.to_json(), takes, tokens=TokenSpec.of(p.limits()))
    assert not (tmp_path / "x.zip").exists()


# -- tokens of another tokenizer ---------------------------------------------------------------------

def test_tokens_of_another_tokenizer_are_left_out(studio, drawn, make_tiny, text_encoder, tmp_path, monkeypatch):
    """A retrained tokenizer keeps every shape and gives the codes other pictures: a bundle or
    an autosave made before is opened with its frames, its tokens left unread, and drawn by
    tokenizing the frames again."""
    path = studio.bundle_file()
    with zipfile.ZipFile(path) as z:
        assert json.loads(z.read(MANIFEST))["tokenizer"] == drawn.tokenizer_revision
    frames = [studio.project.active_take(i).frames for i in range(3)]
    for fingerprint in ("0123456789ab", None):
        limits = {**project_limits(drawn, "tiny"), "tokenizer": fingerprint}
        p = project_from_bundle(path, **limits)
        assert all(t.frames is not None and t.tokens is None for it in p.items for t in it.takes)
    manifest_lies = tmp_path / "odd.zip"  # a tokenizer field that is not a fingerprint at all: the same
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(manifest_lies, "w") as out:
        for n in z.namelist():
            data = z.read(n)
            if n == MANIFEST:
                data = json.dumps({**json.loads(data), "tokenizer": [{"x": 1}]}).encode()
            out.writestr(n, data)
    st = reopen(drawn, manifest_lies, tmp_path)
    assert all(st.project.active_take(i).tokens is None for i in range(3))
    assert np.array_equal(exported(st, monkeypatch), np.concatenate(retokenized(drawn, frames)))

    # the autosave, restored by a server that now runs another tokenizer of the same shapes
    studio.autosave()
    other = make_tiny(seed=1, text_encoder=text_encoder)
    assert other.clip_token_shape == drawn.clip_token_shape and other.tokenizer_revision != drawn.tokenizer_revision
    back = Studio.restore(other, studio.id, studio.save_dir.parent, tmp_path / "w", "tiny")
    assert [back.project.active_take(i).frames is not None for i in range(3)] == [True] * 3
    assert all(back.project.active_take(i).tokens is None for i in range(3))
    same = Studio.restore(drawn, studio.id, studio.save_dir.parent, tmp_path / "w", "tiny")
    assert all(same.project.active_take(i).tokens is not None for i in range(3))


# -- the library's re-tokenized drawing after a lead-in ------------------------------------------------

def test_redraw_after_frames_before_is_the_longer_redraw_less_its_lead_in(drawn, studio):
    f1, f2 = (studio.project.active_take(i).frames for i in range(2))
    for before, lead in ((f1, 5), (f1[:4], 3), (f1[:2], 1), (f1[:1], 1)):  # cut as the engine cuts a context
        got = drawn.redraw(f2, DRAWN, 5, before=before)
        assert np.array_equal(got, drawn.redraw(np.concatenate([before[-lead:], f2]), DRAWN, 5)[lead:]), lead
    assert np.array_equal(drawn.redraw(f2, DRAWN, 5, before=f1[:0]), drawn.redraw(f2, DRAWN, 5))
    assert drawn.redraw(f2, SIZE, 5, before=f1) is f2
    with pytest.raises(ValueError, match="frames before"):
        drawn.redraw(f2, DRAWN, 5, before=np.zeros((5, DRAWN, DRAWN, 3), np.uint8))
