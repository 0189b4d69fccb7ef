"""The token upsampler wired in: PhenakiPipeline's optional `upsampler` component, the size a
call asks for (drawn by the model, or upscaled), stories drawn again from their tokens, the
CLI's --size and the studio's exports and player. All on the tiny model with an upsampler made
here (its head perturbed, so a learned drawing and an upscale cannot be confused)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from studio_harness import serve

from phenaki_core import PhenakiPipeline, PhenakiStoryPipeline, Segment, Story, StoryRenderer
from phenaki_core.model_folder import check_model_folder
from phenaki_core.models.upsampler import TokenUpsampler, to_frames, upscale_video
from phenaki_core.pipelines import ModelLoadError, load_pipeline

PROMPT = "a red circle moves right"
SIZE = 32  # the tiny model's frames
DRAWN = 64  # its upsampler's (scale 2)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def with_upsampler(pipe, upsampler) -> PhenakiPipeline:
    parts = {k: v for k, v in pipe.components.items() if k != "upsampler"}
    out = PhenakiPipeline(**parts, upsampler=upsampler)
    out.set_progress_bar_config(disable=True)
    return out


@pytest.fixture(scope="module")
def upsampler(tiny_drawing_pipe):
    return tiny_drawing_pipe.upsampler


@pytest.fixture(scope="module")
def folders(tiny_pipe, upsampler, tmp_path_factory):
    root = tmp_path_factory.mktemp("wiring")
    with_upsampler(tiny_pipe, upsampler).save_pretrained(root / "with")
    tiny_pipe.save_pretrained(root / "without")
    return root / "with", root / "without"


@pytest.fixture(scope="module")
def drawn(folders):
    return load_pipeline(folders[0])


@pytest.fixture(scope="module")
def plain(folders):
    return load_pipeline(folders[1])


def frames_of(video: torch.Tensor) -> np.ndarray:
    return to_frames(video)


# -- the component -------------------------------------------------------------------------------

def test_the_folder_lists_it_when_present_and_the_pipeline_loads_it(folders, drawn, plain, upsampler):
    with_, without = folders
    assert json.loads((with_ / "model_index.json").read_text())["upsampler"] == \
        ["phenaki_core.models.upsampler", "TokenUpsampler"]
    assert not (without / "upsampler").exists()
    assert check_model_folder(with_) == with_ and check_model_folder(without) == without
    assert isinstance(drawn.upsampler, TokenUpsampler) and plain.upsampler is None
    assert drawn.drawn_sizes == (SIZE, DRAWN) and plain.drawn_sizes == (SIZE,)
    ours, theirs = drawn.upsampler.state_dict(), upsampler.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_save_pretrained_round_trips_it(drawn, tmp_path):
    drawn.save_pretrained(tmp_path / "again")
    again = PhenakiPipeline.from_pretrained(tmp_path / "again")
    assert isinstance(again.upsampler, TokenUpsampler)
    a, b = again.upsampler.state_dict(), drawn.upsampler.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_dtype_and_device_moves_take_it_along(folders):
    half = PhenakiPipeline.from_pretrained(folders[0], dtype=torch.bfloat16)
    assert half.upsampler.dtype == torch.bfloat16
    half.to(torch.float32)
    assert half.upsampler.dtype == torch.float32 and half.upsampler.device.type == "cpu"


def test_a_broken_or_foreign_upsampler_is_a_plain_load_error(folders, text_encoder, make_tiny, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(folders[0], broken)
    next((broken / "upsampler").glob("*.safetensors")).unlink()
    with pytest.raises(ModelLoadError, match="upsampler/ has no .safetensors"):
        check_model_folder(broken)
    shutil.rmtree(broken / "upsampler")
    with pytest.raises(ModelLoadError, match="upsampler/config.json is missing"):
        check_model_folder(broken)

    # An upsampler made for another tokenizer (64-pixel frames, another token grid).
    other = make_tiny(text_encoder=text_encoder, image_size=64)
    foreign = TokenUpsampler.from_tokenizer(other.vqvae, scale=2, channels=8, blocks=1)
    mixed = tmp_path / "mixed"
    shutil.copytree(folders[0], mixed)
    shutil.rmtree(mixed / "upsampler")
    foreign.save_pretrained(mixed / "upsampler")
    check_model_folder(mixed)  # whole on disk: the mismatch shows when the parts meet
    with pytest.raises(ModelLoadError, match="another model"):
        load_pipeline(mixed)
    with pytest.raises(ValueError, match="another model"):
        with_upsampler(other, TokenUpsampler.from_tokenizer(make_tiny(text_encoder=text_encoder).vqvae))


# -- the call's size -------------------------------------------------------------------------------

def test_the_default_output_is_unchanged_bit_for_bit(drawn, plain):
    base = plain(PROMPT, num_inference_steps=2, generator=gen()).frames
    assert np.array_equal(drawn(PROMPT, num_inference_steps=2, generator=gen()).frames, base)
    assert np.array_equal(drawn(PROMPT, num_inference_steps=2, generator=gen(), height=SIZE, width=SIZE).frames, base)
    assert base.shape == (1, 11, SIZE, SIZE, 3)


def test_the_drawn_size_comes_from_the_upsampler(drawn):
    """Two clips: the second's context frames are dropped, as at the model's size."""
    tokens = drawn(PROMPT, num_frames=14, num_inference_steps=2, generator=gen(), output_type="latent").frames
    out = drawn(PROMPT, num_frames=14, num_inference_steps=2, generator=gen(), height=DRAWN, width=DRAWN,
                output_type="np").frames
    assert tokens.shape[:2] == (1, 2) and out.shape == (1, 14, DRAWN, DRAWN, 3)
    first = frames_of(drawn.upsampler.detokenize(tokens[:, 0]))
    second = frames_of(drawn.upsampler.detokenize(tokens[:, 1]))[:, 5:]  # 5 context frames
    expected = np.concatenate([first, second], axis=1)[:, :14]
    assert np.array_equal((out * 255).round().astype(np.uint8), expected)
    small = drawn(PROMPT, num_frames=14, num_inference_steps=2, generator=gen()).frames
    upscaled = upscale_video(torch.from_numpy(small).permute(0, 4, 1, 2, 3) * 2 - 1, DRAWN, "bicubic")
    assert not np.allclose(out, frames_of(upscaled) / 255, atol=2 / 255)  # drawn, not an upscale of 32


def test_every_output_type_comes_at_the_size(drawn, plain):
    common = dict(num_inference_steps=1, generator=gen(), height=DRAWN)
    pt = drawn(PROMPT, output_type="pt", **common).frames
    pil = plain(PROMPT, output_type="pil", **common).frames
    latent = drawn(PROMPT, output_type="latent", **common).frames
    assert pt.shape == (1, 11, 3, DRAWN, DRAWN) and pil[0][0].size == (DRAWN, DRAWN) and len(pil[0]) == 11
    assert latent.shape == (1, 1, 6, 4, 4)  # tokens: the size does not apply


def test_without_the_component_the_size_is_an_upscale(plain):
    tokens = plain(PROMPT, num_inference_steps=2, generator=gen(), output_type="latent").frames[:, 0]
    out = plain(PROMPT, num_inference_steps=2, generator=gen(), width=48).frames
    expected = frames_of(upscale_video(plain.vqvae.detokenize(tokens), 48, "bicubic"))
    assert out.shape == (1, 11, 48, 48, 3) and np.array_equal((out * 255).round().astype(np.uint8), expected)


def test_a_size_the_upsampler_does_not_draw_is_upscaled_too(drawn):
    tokens = drawn(PROMPT, num_inference_steps=1, generator=gen(), output_type="latent").frames[:, 0]
    out = drawn(PROMPT, num_inference_steps=1, generator=gen(), height=96, output_type="pt").frames
    expected = frames_of(upscale_video(drawn.vqvae.detokenize(tokens), 96, "bicubic"))
    assert np.array_equal((out.permute(0, 1, 3, 4, 2) * 255).round().to(torch.uint8).numpy(), expected)


@pytest.mark.parametrize("height, width, message", [
    (64, 48, "square"), (0, None, "height"), (None, 5000, "width"), ("64", None, "height"), (True, None, "height"),
    (64.0, 64.0, "height"), (-1, -1, "height"),
])
def test_bad_sizes_are_plain_errors(drawn, height, width, message):
    with pytest.raises(ValueError, match=message):
        drawn(PROMPT, num_inference_steps=1, height=height, width=width)
    with pytest.raises(ValueError, match=message):
        PhenakiStoryPipeline.from_pipe(drawn)([PROMPT], num_inference_steps=1, height=height, width=width)


# -- stories ---------------------------------------------------------------------------------------

def bookkeeping_story():
    """A first segment of 2 frames (a shorter context than K after it), a long continuation
    (3 clips), a cut, and a continuation after the cut: every kind of clip start."""
    return Story([Segment(PROMPT, 2, 1), Segment("a red circle moves down", 16, 2),
                  Segment("a blue square grows", 6, 3, "cut"), Segment("a blue square moves left", 8, 4)],
                 num_inference_steps=1, context_frames=5)


@pytest.mark.parametrize("start", [None, 3])
def test_story_redraw_at_the_models_size_is_the_render_bit_for_bit(tiny_pipe, start):
    """The redraw path itself (each clip's tokens, its context frames dropped) at the model's
    size without an upsampler gives back exactly the frames the engine rendered: the context
    bookkeeping of every clip is right, start frames included."""
    init = None if start is None else np.random.default_rng(0).integers(0, 256, (start, SIZE, SIZE, 3), dtype=np.uint8)
    r = StoryRenderer(tiny_pipe, bookkeeping_story(), init)
    r.render()
    lengths = [x.context_lengths for x in r.results]
    # Counted by hand. Without start frames: segment 2 continues 2 frames, of which C-ViViT
    # takes 1 (1 + n*2), so 10 new, then K = 5 and 6 new; the cut starts afresh; segment 4
    # makes 6 + 6. With 3 start frames: segment 1 continues them; segment 2 continues 2 + 3.
    assert lengths == ([[0], [1, 5], [0], [5, 5]] if start is None else [[3], [5, 5, 5], [0], [5, 5]])
    for x in r.results:
        assert np.array_equal(x.redraw(tiny_pipe, SIZE), x.frames)
        assert np.array_equal(tiny_pipe.draw_clips(x.tokens, x.context_lengths, len(x.frames), SIZE), x.frames)
    assert np.array_equal(r.frames(SIZE), r.frames())


def test_story_at_the_drawn_size_draws_each_clips_tokens(drawn):
    story = PhenakiStoryPipeline.from_pipe(drawn)
    small = story(bookkeeping_story(), output_type="np")
    large = story(bookkeeping_story(), output_type="np", height=DRAWN)
    assert large.frames.shape == (1, 32, DRAWN, DRAWN, 3) and small.frames.shape == (1, 32, SIZE, SIZE, 3)
    expected = []
    for x in small.segments:  # the same tokens (the story is sampled at the model's size either way)
        clips = [frames_of(drawn.upsampler.detokenize(t[None]))[0, skip:] for t, skip in zip(x.tokens, x.context_lengths)]
        expected.append(np.concatenate(clips)[: len(x.frames)])
    assert np.array_equal((large.frames[0] * 255).round().astype(np.uint8), np.concatenate(expected))


# -- frames without tokens ----------------------------------------------------------------------------

def test_redraw_retokenizes_frames_in_clip_chunks(drawn):
    frames = (drawn(PROMPT, num_frames=24, num_inference_steps=1, generator=gen()).frames[0] * 255).round().astype(np.uint8)
    out = drawn.redraw(frames, DRAWN)
    assert out.shape == (24, DRAWN, DRAWN, 3) and out.dtype == np.uint8
    # As a long video is sampled: frames 0-10; then 6-16, 12-22 and 18-23 (+ a repeat of 23 to
    # fill its tubelet), each after 5 context frames that are drawn and dropped.
    pieces = [(frames[:11], 0), (frames[6:17], 5), (frames[12:23], 5),
              (np.concatenate([frames[18:], frames[-1:]]), 5)]
    expected = np.concatenate([frames_of(drawn.upsampler.detokenize(drawn.encode_frames(p)))[0, skip:]
                               for p, skip in pieces])[:24]
    assert np.array_equal(out, expected)
    assert np.array_equal(drawn.redraw(frames[:17], DRAWN), out[:17])  # causal: a prefix draws the same alone
    three = drawn.redraw(frames, DRAWN, context_frames=3)  # 0-10, 8-18 (new 11-18), 16-23 (new 19-23)
    assert np.array_equal(three[11:19], frames_of(drawn.upsampler.detokenize(drawn.encode_frames(frames[8:19])))[0, 3:])
    assert drawn.redraw(frames, SIZE) is frames  # the model's own size: the frames as they are


def test_redraw_refuses_what_it_cannot_draw(drawn, plain):
    frames = np.zeros((5, SIZE, SIZE, 3), np.uint8)
    with pytest.raises(ValueError, match="draws 32 and 64 pixels, not 96"):
        drawn.redraw(frames, 96)
    with pytest.raises(ValueError, match="draws 32 pixels, not 64"):
        plain.redraw(frames, DRAWN)
    with pytest.raises(ValueError, match="uint8 frames"):
        drawn.redraw(np.zeros((5, DRAWN, DRAWN, 3), np.uint8), DRAWN)
    with pytest.raises(ValueError, match="context_frames"):
        drawn.redraw(frames, DRAWN, context_frames=4)


# -- the CLI -----------------------------------------------------------------------------------------

def cli(*args, cwd=None):
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-m", "phenaki_core.cli", "generate", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env={**__import__("os").environ, "PYTHONPATH": str(root),
                                                     "OMP_NUM_THREADS": "2"})  # as conftest: the same sums


def test_cli_size_draws_with_the_learned_decoder_and_falls_back_without(folders, drawn, tmp_path):
    common = ["--prompt", PROMPT, "--frames", "6", "--steps", "1", "--device", "cpu", "--size", str(DRAWN)]
    run = cli(*common, "--model", str(folders[0]), "--out", str(tmp_path / "a.npy"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"size {DRAWN}: drawn by the model's learned decoder" in run.stderr
    out = np.load(tmp_path / "a.npy")
    assert out.shape == (6, DRAWN, DRAWN, 3)
    # the same story's tokens, drawn by the upsampler
    rendered = StoryRenderer(drawn, Story([Segment(PROMPT, 6, 0)], num_inference_steps=1))
    rendered.render()
    assert np.array_equal(out, rendered.frames(DRAWN))
    assert json.loads((tmp_path / "a.story.json").read_text())["export"]["learned"] is True

    forced = cli(*common, "--resample", "nearest", "--model", str(folders[0]), "--out", str(tmp_path / "b.npy"))
    assert forced.returncode == 0 and "upscaled (nearest)" in forced.stderr and "learned" not in forced.stderr
    assert np.array_equal(np.load(tmp_path / "b.npy"), rendered.frames().repeat(2, axis=1).repeat(2, axis=2))

    bare = cli(*common, "--model", str(folders[1]), "--out", str(tmp_path / "c.npy"))
    assert bare.returncode == 0 and f"size {DRAWN}: the model's {SIZE}-pixel frames upscaled (nearest)" in bare.stderr
    assert np.load(tmp_path / "c.npy").shape == (6, DRAWN, DRAWN, 3)

    # Re-rendering a sidecar reproduces its export: drawn stays drawn, upscaled stays upscaled.
    again = cli("--story", str(tmp_path / "a.story.json"), "--model", str(folders[0]), "--out", str(tmp_path / "d.npy"),
                "--quiet")
    assert again.returncode == 0 and again.stderr == "" and np.array_equal(np.load(tmp_path / "d.npy"), out)
    again = cli("--story", str(tmp_path / "b.story.json"), "--model", str(folders[0]), "--out", str(tmp_path / "e.npy"))
    assert again.returncode == 0 and "upscaled" in again.stderr
    assert np.array_equal(np.load(tmp_path / "e.npy"), np.load(tmp_path / "b.npy"))


def test_cli_refuses_a_foreign_upsampler_in_one_line(folders, text_encoder, make_tiny, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(folders[0], mixed)
    shutil.rmtree(mixed / "upsampler")
    TokenUpsampler.from_tokenizer(make_tiny(text_encoder=text_encoder, image_size=64).vqvae).save_pretrained(
        mixed / "upsampler")
    run = cli("--prompt", PROMPT, "--model", str(mixed), "--out", str(tmp_path / "x.npy"), "--device", "cpu")
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert run.returncode == 2 and len(errors) == 1 and "another model" in errors[0] and "Traceback" not in run.stderr


# -- the studio -----------------------------------------------------------------------------------------

def test_studio_export_and_player_at_the_drawn_size_use_the_learned_decoder(drawn, tmp_path):
    from app.render import Studio, new_session_id
    from phenaki_core.io import load_sidecar, read_video

    st = Studio(drawn, new_session_id(), tmp_path / "p", tmp_path / "w", "tiny")
    st.project.set_settings(num_inference_steps=1, export_size=DRAWN)
    st.project.add(Segment(PROMPT, 11, 1))
    st.project.add(Segment("a red circle moves down", 6, 2))
    assert list(st.iter_render())[-1][0] == "done"
    frames = st.story_frames()
    takes = [st.project.active_take(i) for i in range(2)]  # drawn from the tokens each take was sampled as
    expected = np.concatenate([drawn.draw_clips(t.tokens, t.context_lengths, len(t.frames), DRAWN) for t in takes])
    assert not np.array_equal(expected, drawn.redraw(frames, DRAWN, st.project.settings.context_frames))
    nearest = frames.repeat(2, axis=1).repeat(2, axis=2)
    assert np.abs(expected.astype(int) - nearest).mean() > 4  # the two drawings differ

    for fmt in ("mp4", "gif"):
        video, sidecar = st.export(fmt)
        got = read_video(video).astype(int)
        assert got.shape == (17, DRAWN, DRAWN, 3)
        assert np.abs(got - expected).mean() < 0.8 * np.abs(got - nearest).mean(), fmt  # lossy codecs: nearer
        assert load_sidecar(sidecar)[2]["learned"] is True

    player = read_video(st.player_path(2)).astype(int)
    assert player.shape == (17, 512, 512, 3)  # the player's minimum: drawn at 64, then nearest (8x8 blocks)
    centres = player[:, 4::8, 4::8]
    assert np.abs(centres - expected).mean() < 0.8 * np.abs(centres - nearest).mean()

    st.project.set_settings(export_size=96)  # not drawn: upscaled as before
    video, sidecar = st.export("mp4")
    assert read_video(video).shape[1:3] == (96, 96) and load_sidecar(sidecar)[2]["learned"] is False


def test_studio_api_exports_at_the_drawn_size_with_the_learned_decoder(drawn, tmp_path):
    """The same through the studio's named API (as tests/test_app_api.py drives it)."""
    pytest.importorskip("gradio_client")

    from gradio_client import Client

    from app.ui import build_demo
    from phenaki_core.io import load_sidecar, read_video

    demo = build_demo(drawn, projects_dir=tmp_path / "projects", work_dir=tmp_path / "work", model="tiny")
    url = serve(demo)
    try:
        c = Client(url, verbose=False)
        c.predict(None, 1, 2.0, 8, DRAWN, api_name="/set_settings")
        c.predict(None, PROMPT, 6, "frames", 1, True, "continue", api_name="/add_segment")
        assert [x["status"] for x in c.predict(1, api_name="/render_story")[0]["segments"]] == ["rendered"]
        paths = [p if isinstance(p, str) else p["path"] for p in c.predict("mp4", api_name="/export")]
        video = next(p for p in paths if not p.endswith(".story.json"))
        sidecar = next(p for p in paths if p.endswith(".story.json"))
        assert read_video(video).shape == (6, DRAWN, DRAWN, 3)
        assert load_sidecar(sidecar)[2] == {"fps": 8, "size": DRAWN, "resample": "nearest", "learned": True}
    finally:
        demo.close()
