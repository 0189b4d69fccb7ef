"""PhenakiPipeline the way a diffusers user calls it, and the layering under it."""
import io
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from phenaki_core import MaskGitScheduler, PhenakiStoryPipeline

P = "a red circle moves left"


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_output_types_share_one_set_of_frames(tiny_pipe):
    np_out = tiny_pipe(P, generator=gen(0), num_inference_steps=3).frames
    assert np_out.shape == (1, 11, 32, 32, 3) and np_out.dtype == np.float32
    assert 0 <= np_out.min() and np_out.max() <= 1
    pt = tiny_pipe(P, generator=gen(0), num_inference_steps=3, output_type="pt").frames
    assert pt.shape == (1, 11, 3, 32, 32)  # CogVideoX's video processor: (B, F, C, H, W)
    assert torch.equal(pt.permute(0, 1, 3, 4, 2), torch.from_numpy(np_out))
    pil = tiny_pipe(P, generator=gen(0), num_inference_steps=3, output_type="pil").frames
    assert len(pil) == 1 and len(pil[0]) == 11
    assert np.array_equal(np.asarray(pil[0][4]), (np_out[0, 4] * 255).astype(np.uint8))
    latent = tiny_pipe(P, generator=gen(0), num_inference_steps=3, output_type="latent").frames
    assert latent.shape == (1, 1, 6, 4, 4) and latent.dtype == torch.long
    decoded = tiny_pipe.decode_tokens(latent[:, 0])
    assert np.array_equal(decoded, (np_out * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="output_type"):
        tiny_pipe(P, output_type="latent-ish")


def test_return_dict_false_gives_a_tuple(tiny_pipe):
    out = tiny_pipe(P, generator=gen(1), num_inference_steps=2, return_dict=False)
    assert isinstance(out, tuple) and len(out) == 1
    assert np.array_equal(out[0], tiny_pipe(P, generator=gen(1), num_inference_steps=2).frames)


def test_a_list_of_prompts_is_a_batch_and_num_videos_per_prompt_multiplies_it(tiny_pipe):
    two = tiny_pipe([P, "a blue square grows"], generator=gen(2), num_inference_steps=2).frames
    assert two.shape == (2, 11, 32, 32, 3) and not np.array_equal(two[0], two[1])
    four = tiny_pipe([P, "a blue square grows"], num_videos_per_prompt=2, generator=gen(2), num_inference_steps=2).frames
    assert four.shape == (4, 11, 32, 32, 3)
    assert not np.array_equal(four[0], four[1])  # two draws of one prompt differ


def test_a_generator_per_video_makes_each_depend_on_its_own(tiny_pipe):
    a = tiny_pipe([P, P], generator=[gen(5), gen(6)], num_inference_steps=3, output_type="latent").frames
    b = tiny_pipe([P, P], generator=[gen(5), gen(7)], num_inference_steps=3, output_type="latent").frames
    assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="generators"):
        tiny_pipe([P, P], generator=[gen(5)] * 3)


def test_negative_prompt_takes_the_place_of_the_null_text(tiny_pipe):
    kw = dict(num_inference_steps=3, guidance_scale=4.0, output_type="latent")
    plain = tiny_pipe(P, generator=gen(3), **kw).frames
    negative = tiny_pipe(P, negative_prompt="a green triangle", generator=gen(3), **kw).frames
    other = tiny_pipe(P, negative_prompt="a white square shrinks", generator=gen(3), **kw).frames
    assert not torch.equal(plain, negative) and not torch.equal(negative, other)
    again = tiny_pipe(P, negative_prompt="a green triangle", generator=gen(3), **kw).frames
    assert torch.equal(negative, again)
    # Without guidance the unconditional rows are never run, so a negative prompt changes nothing.
    kw["guidance_scale"] = 1.0
    tiny_pipe.scheduler, refining = MaskGitScheduler.from_config(tiny_pipe.scheduler.config, refine_guidance=0.0), tiny_pipe.scheduler
    try:
        assert torch.equal(tiny_pipe(P, generator=gen(3), **kw).frames,
                           tiny_pipe(P, negative_prompt="a green triangle", generator=gen(3), **kw).frames)
    finally:
        tiny_pipe.scheduler = refining


def test_callback_sees_every_step_and_its_returned_tokens_are_used(tiny_pipe):
    seen, mask_id = [], tiny_pipe.transformer.mask_token_id

    def fill_with_code_3(pipe, i, t, kwargs):
        seen.append((i, int(t), sorted(kwargs)))
        tokens = kwargs["tokens"]
        if i == 3:  # the last MaskGIT step (steps 4 and 5 refine)
            return {"tokens": torch.where(tokens == mask_id, tokens, torch.full_like(tokens, 3))}
        return kwargs

    out = tiny_pipe(P, generator=gen(0), num_inference_steps=4, output_type="latent",
                    callback_on_step_end=fill_with_code_3, callback_on_step_end_tensor_inputs=["tokens", "logits"])
    assert [s[0] for s in seen] == [0, 1, 2, 3, 4, 5] and [s[1] for s in seen] == [0, 1, 2, 3, 4, 5]
    assert seen[0][2] == ["logits", "tokens"]
    # Refinement re-drew some tokens; every token it left alone is the 3 the callback wrote.
    assert (out.frames == 3).float().mean() > 0.5
    with pytest.raises(ValueError, match="callback_on_step_end_tensor_inputs"):
        tiny_pipe(P, callback_on_step_end=fill_with_code_3, callback_on_step_end_tensor_inputs=["latents"])


def test_interrupt_stops_the_call_and_is_reset_for_the_next(tiny_pipe):
    from phenaki_core.pipelines import GenerationInterrupted

    steps = []

    def stop_at_2(pipe, i, t, kwargs):
        steps.append(i)
        if i == 2:
            pipe._interrupt = True
        assert pipe.interrupt == (i == 2)
        return kwargs

    with pytest.raises(GenerationInterrupted):
        tiny_pipe(P, num_inference_steps=8, callback_on_step_end=stop_at_2)
    assert steps == [0, 1, 2] and tiny_pipe.interrupt
    assert tiny_pipe(P, num_inference_steps=2).frames.shape == (1, 11, 32, 32, 3)
    assert not tiny_pipe.interrupt


def test_num_frames_beyond_a_clip_continues_the_prompt(tiny_pipe):
    out = tiny_pipe([P, "a blue square grows"], num_frames=20, generator=gen(4), num_inference_steps=2,
                    output_type="latent").frames
    assert out.shape == (2, 3, 6, 4, 4)  # 11 + 6 + 6 >= 20: three clips
    frames = tiny_pipe([P, "a blue square grows"], num_frames=20, generator=gen(4), num_inference_steps=2).frames
    assert frames.shape == (2, 20, 32, 32, 3)
    # Each later clip's frozen prefix is the re-encoding of the last 5 frames before it.
    first = (frames[:, :11] * 255).round().astype(np.uint8)
    assert torch.equal(out[:, 1, :3], tiny_pipe.encode_frames(first[:, -5:]))


def test_one_progress_bar_over_the_whole_call(tiny_pipe):
    bars = []
    original = tiny_pipe.progress_bar

    def spy(*args, **kwargs):
        bar = original(*args, **kwargs)
        bars.append(bar)
        return bar

    tiny_pipe.progress_bar = spy
    tiny_pipe.set_progress_bar_config(disable=False, file=io.StringIO())  # a disabled bar counts nothing
    try:
        tiny_pipe(P, num_frames=17, num_inference_steps=3)
    finally:
        del tiny_pipe.progress_bar
        tiny_pipe.set_progress_bar_config(disable=True)
    assert len(bars) == 1 and bars[0].total == 2 * 5 and bars[0].n == 10  # 2 clips x (3 + 2 refinement) steps


def test_export_to_video_writes_the_clip_the_pipeline_made(tiny_pipe, tmp_path):
    from diffusers.utils import export_to_video

    from phenaki_core.io import read_video

    frames = tiny_pipe(P, generator=gen(0), num_inference_steps=3).frames[0]
    path = export_to_video(frames, str(tmp_path / "clip.mp4"), fps=tiny_pipe.fps)
    decoded = read_video(path)
    assert decoded.shape == (11, 32, 32, 3)
    error = np.abs(decoded.astype(int) - (frames * 255).round().astype(int)).mean()
    assert error < 12, error  # H.264 is lossy; a wrong frame or a x255 slip is far above this


def test_dtype_and_torch_dtype_load_alike_without_a_deprecation_warning(tiny_pipe, tmp_path):
    from phenaki_core import PhenakiPipeline

    tiny_pipe.save_pretrained(tmp_path / "m")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        a = PhenakiPipeline.from_pretrained(tmp_path / "m", dtype=torch.bfloat16)
        b = PhenakiPipeline.from_pretrained(tmp_path / "m", torch_dtype=torch.bfloat16)
    assert a.transformer.dtype == b.transformer.dtype == torch.bfloat16
    assert a.text_encoder.dtype == torch.float32  # the encoder stays fp32; its states are cast where used


def test_diffusion_pipeline_loads_through_the_entry_file(tiny_pipe, tmp_path):
    from diffusers import DiffusionPipeline

    from phenaki_core import PhenakiPipeline
    from phenaki_core.pipelines import DIFFUSERS_ENTRY

    tiny_pipe.save_pretrained(tmp_path / "m")
    pipe = DiffusionPipeline.from_pretrained(tmp_path / "m", custom_pipeline=DIFFUSERS_ENTRY, trust_remote_code=True)
    assert isinstance(pipe, PhenakiPipeline) and pipe.clip_frames == 11


def test_story_pipeline_is_one_call_with_the_same_conventions(tiny_pipe):
    from phenaki_core import Segment, Story, StoryRenderer

    story = PhenakiStoryPipeline.from_pipe(tiny_pipe)
    out = story([P, "a blue square grows"], num_frames=[11, 6], seed=3, num_inference_steps=2)
    assert out.frames.shape == (1, 17, 32, 32, 3) and out.frames.dtype == np.float32
    # The same frames the story engine renders for the same story, seed i for segment i.
    r = StoryRenderer(tiny_pipe, Story([Segment(P, 11, 3), Segment("a blue square grows", 6, 4)], num_inference_steps=2))
    r.render()
    assert np.array_equal((out.frames[0] * 255).round().astype(np.uint8), r.frames())
    assert out.story.model_revision == tiny_pipe.revision and len(out.segments) == 2
    again = story(out.story, output_type="pt").frames  # a Story (e.g. from a sidecar) renders the same frames
    assert torch.equal(again.permute(0, 1, 3, 4, 2), torch.from_numpy(out.frames))
    assert story(out.story, return_dict=False)[0].shape == (1, 17, 32, 32, 3)


def test_importing_the_pipeline_imports_no_story_module():
    code = ("import sys, phenaki_core.pipelines.pipeline_phenaki, phenaki_core.pipelines; "
            "from phenaki_core import PhenakiPipeline, MaskGitScheduler; "
            "print([m for m in sys.modules if m.startswith('phenaki_core.story')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_story_engine_uses_only_the_pipelines_public_interface():
    """No underscore attribute of the pipeline, and none of its components, is reached from the story package."""
    import ast
    import pathlib

    from phenaki_core import story

    for path in pathlib.Path(story.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("pipe", "p"):
                assert node.attr in ("_interrupt",) or not node.attr.startswith("_"), (path.name, node.attr)
                assert node.attr not in ("vqvae", "transformer", "scheduler", "text_encoder"), (path.name, node.attr)


def test_scheduler_masks_training_tokens_with_the_training_schedule():
    """mask_tokens draws exactly what training's random_mask draws (so training can call it)."""
    from phenaki_core.training.losses import prepare_masked_batch

    sched = MaskGitScheduler(mask_token_id=16)
    tokens = torch.randint(0, 16, (6, 4, 3, 3))
    is_image = torch.tensor([False, True, False, False, True, False])
    prefix = torch.tensor([0, 0, 2, 0, 0, 1])
    inputs, mask = sched.mask_tokens(tokens, is_image, prefix, torch.Generator().manual_seed(9))
    ref_inputs, ref_mask = prepare_masked_batch(tokens, is_image, 16, prefix, torch.Generator().manual_seed(9))
    assert torch.equal(inputs, ref_inputs) and torch.equal(mask, ref_mask)
    assert (mask.flatten(1).sum(1) >= 1).all() and not mask[2, :2].any() and not mask[1, 1:].any()


def test_scheduler_step_returns_an_output_and_keeps_no_call_state():
    sched = MaskGitScheduler(mask_token_id=16)
    tokens = torch.full((1, 2, 3, 3), 16)
    state = sched.create_state(4)
    out = sched.step(torch.randn(1, 2, 3, 3, 16), 0, tokens, gen(0), state=state)
    assert out.prev_sample.shape == tokens.shape and out.state.to_generate.tolist() == [18]
    assert not any(k in vars(sched) for k in ("_to_generate", "_log_prob"))
    prev, state2 = sched.step(torch.randn(1, 2, 3, 3, 16), 1, out.prev_sample, gen(1), state=out.state, return_dict=False)
    assert torch.is_tensor(prev) and state2.num_inference_steps == 4
    with pytest.raises(ValueError, match="state"):
        sched.step(torch.randn(1, 2, 3, 3, 16), 1, prev)


def test_a_prompt_longer_than_the_encoder_reads_is_warned_about(tiny_pipe):
    assert tiny_pipe.max_prompt_tokens == tiny_pipe.text_encoder.config.max_length == 32  # one owner: the encoder
    long = "a red circle moves right on a gray background " * 4
    assert tiny_pipe.prompt_tokens(long) > 32 >= tiny_pipe.prompt_tokens(P)
    with pytest.warns(UserWarning, match="keeps the first 32"):
        tiny_pipe(long, num_inference_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny_pipe(P + " slowly", num_inference_steps=1)
