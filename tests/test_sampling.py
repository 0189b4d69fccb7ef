"""The MaskGIT schedule and the pipeline's sampling."""
import math

import numpy as np
import pytest
import torch

from phenaki_core import MaskGitScheduler


def test_schedule_reveals_per_cosine_counting_only_generated_positions():
    sched = MaskGitScheduler(mask_token_id=16, choice_temperature=0.0, refine_steps=0)
    sched.set_timesteps(8)
    tokens = torch.full((1, 6, 4, 4), 16)
    tokens[:, :3] = 5  # a frozen prefix of 3 latent frames: 48 known, 48 to generate
    logits = torch.randn(1, 6, 4, 4, 16)
    state = sched.create_state(8)
    for i in range(8):
        out = sched.step(logits, i, tokens, torch.Generator().manual_seed(i), state=state)
        tokens, state = out.prev_sample, out.state
        still_masked = int((tokens == 16).sum())
        assert still_masked == math.floor(48 * math.cos(math.pi / 2 * (i + 1) / 8))
        assert (tokens[:, :3] == 5).all()
    assert (tokens != 16).all()


def test_refinement_redraws_the_least_likely_generated_tokens_greedily():
    torch.manual_seed(0)
    sched = MaskGitScheduler(mask_token_id=16, choice_temperature=0.0, refine_steps=2, refine_fraction=0.25)
    sched.set_timesteps(3)
    assert len(sched.timesteps) == 5
    tokens = torch.full((1, 4, 4, 4), 16)
    tokens[:, :2] = 5  # frozen prefix: 32 known, 32 to generate
    # Sharp logits everywhere except 12 positions of the generated frames, where they are nearly flat.
    logits = torch.full((1, 4, 4, 4, 16), -10.0)
    logits[..., 3] = 10.0
    flat = torch.zeros(1, 4, 4, 4, dtype=torch.bool)
    flat.view(1, -1)[:, 32 + torch.randperm(32)[:12]] = True
    logits[flat] = torch.randn(int(flat.sum()), 16) * 0.1
    state = sched.create_state(3)
    for i in range(3):
        tokens, state = sched.step(logits, i, tokens, torch.Generator().manual_seed(i), state=state, return_dict=False)
    remasked = tokens == 16
    assert int(remasked.sum()) == 8  # floor(32 * 0.25 * 2/2), all among the least likely draws
    assert (remasked <= flat).all() and (tokens[:, :2] == 5).all()
    # Code 7 is the argmax but only 15% likely: a draw at temperature 1 would miss it.
    greedy = torch.zeros(1, 4, 4, 4, 16)
    greedy[..., 7] = 1.0
    tokens, state = sched.step(greedy, 3, tokens, torch.Generator().manual_seed(3), state=state, return_dict=False)
    assert int((tokens == 16).sum()) == 4  # floor(32 * 0.25 * 1/2)
    redrawn = remasked & (tokens != 16)
    assert (tokens[redrawn] == 7).all()
    tokens = sched.step(greedy, 4, tokens, state=state).prev_sample
    assert (tokens != 16).all() and (tokens[:, :2] == 5).all() and (tokens[remasked] == 7).all()


@pytest.mark.parametrize("kwargs", [{"refine_steps": -1}, {"refine_steps": 1.5}, {"refine_fraction": 1.5},
                                    {"refine_guidance": -0.5}])
def test_bad_refinement_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="refine"):
        MaskGitScheduler(**kwargs)


def test_scheduler_leaves_known_tokens_alone_when_nothing_is_masked():
    sched = MaskGitScheduler(mask_token_id=16)
    sched.set_timesteps(4)
    tokens = torch.randint(0, 16, (2, 3, 4, 4))
    assert torch.equal(sched.step(torch.randn(2, 3, 4, 4, 16), 0, tokens.clone()).prev_sample, tokens)


def test_logits_at_the_masked_positions_only_sample_the_same_tokens():
    from phenaki_core import MaskGitTransformer

    torch.manual_seed(0)
    tr = MaskGitTransformer(codebook_size=16, latent_frames=3, grid=4, width=32, depth=1, heads=2, text_dim=8).eval()
    tokens = torch.randint(0, 16, (2, 3, 4, 4)).masked_fill(torch.rand(2, 3, 4, 4) < 0.6, 16)
    text, mask = torch.randn(2, 3, 8), torch.ones(2, 3, dtype=torch.bool)
    unknown = tokens == 16
    with torch.no_grad():
        full, masked_only = tr(tokens, text, mask), tr(tokens, text, mask, logits_at=unknown)
    assert torch.allclose(full[unknown], masked_only, atol=1e-5)
    sched = MaskGitScheduler(mask_token_id=16)
    sched.set_timesteps(4)
    a = sched.step(full, 0, tokens.clone(), torch.Generator().manual_seed(3)).prev_sample
    b = sched.step(full[unknown], 0, tokens.clone(), torch.Generator().manual_seed(3)).prev_sample
    assert torch.equal(a, b) and (a[~unknown] == tokens[~unknown]).all()


@pytest.mark.parametrize("steps", [0, -1, 2.5])
def test_bad_step_counts_are_refused(steps):
    with pytest.raises(ValueError, match="positive integer"):
        MaskGitScheduler().set_timesteps(steps)


def test_sampling_keeps_the_prefix_and_fills_every_position(tiny_pipe):
    prefix = torch.randint(0, tiny_pipe.vqvae.codebook_size, (1, 3, 4, 4))
    tokens = tiny_pipe.sample_tokens(["a red circle moves left"], prefix, num_inference_steps=12,
                                     generator=torch.Generator().manual_seed(0))
    assert torch.equal(tokens[:, :3], prefix)
    assert (tokens != tiny_pipe.transformer.mask_token_id).all()
    assert tokens.max() < tiny_pipe.vqvae.codebook_size


def test_same_seed_same_tokens_other_seed_other_tokens(tiny_pipe):
    def run(seed):
        return tiny_pipe.sample_tokens(["a blue square grows"], num_inference_steps=6,
                                       generator=torch.Generator().manual_seed(seed))
    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_guidance_is_one_batched_forward_per_step(tiny_pipe):
    calls, original = [], tiny_pipe.scheduler
    hook = tiny_pipe.transformer.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    try:
        tiny_pipe.sample_tokens(["a", "b"], num_inference_steps=5, guidance_scale=3.0)
        guided, calls[:] = list(calls), []
        tiny_pipe.scheduler = MaskGitScheduler.from_config(original.config, refine_guidance=0.0)
        tiny_pipe.sample_tokens(["a", "b"], num_inference_steps=5, guidance_scale=3.0)
    finally:
        tiny_pipe.scheduler = original
        hook.remove()
    assert guided == [4] * 7  # conditional and null rows together, once a step, the 2 refinement steps too
    assert calls == [4] * 5 + [2] * 2  # unguided refinement: the conditional rows alone


def test_guidance_pushes_the_logits_from_the_null_text_towards_the_prompt(tiny_pipe, monkeypatch):
    """Classifier-free guidance: logits = null + scale * (cond - null), the full scale while
    sampling and 1 + refine_guidance * (scale - 1) in refinement."""
    seen, real_step = [], tiny_pipe.scheduler.step

    def step(logits, i, sample, generator=None, **kwargs):
        seen.append((i, logits.clone(), sample.clone()))
        return real_step(logits, i, sample, generator, **kwargs)

    monkeypatch.setattr(tiny_pipe.scheduler, "step", step)
    prompt, scale = ["a red circle moves left"], 3.0
    tiny_pipe.sample_tokens(prompt, num_inference_steps=2, guidance_scale=scale, generator=torch.Generator().manual_seed(0))
    states, mask = tiny_pipe.encode_prompt(prompt)
    refine = tiny_pipe.scheduler.config.refine_guidance
    assert [i for i, _, _ in seen] == [0, 1, 2, 3]
    for i, logits, sample in seen:
        unknown = sample == tiny_pipe.transformer.mask_token_id
        with torch.no_grad():
            cond = tiny_pipe.transformer(sample, states, mask, logits_at=unknown).float()
            null = tiny_pipe.transformer(sample, states, mask, torch.tensor([True]), logits_at=unknown).float()
        s = scale if i < 2 else 1 + refine * (scale - 1)
        assert not torch.allclose(cond, null, atol=1e-3)  # the prompt matters, so the sign shows
        assert torch.allclose(logits, null + s * (cond - null), atol=1e-4), f"step {i}"


def test_callback_and_interrupt(tiny_pipe):
    seen = []

    def cb(pipe, i, t, kwargs):
        seen.append(i)
        if i == 2:
            pipe._interrupt = True
        return kwargs

    with pytest.raises(InterruptedError):
        tiny_pipe.sample_tokens(["a red circle"], num_inference_steps=10, callback_on_step_end=cb)
    assert seen == [0, 1, 2]


def test_bfloat16_pipeline_samples_in_bfloat16_on_cpu(tiny_pipe):
    import copy

    pipe = copy.deepcopy(tiny_pipe).to(dtype=torch.bfloat16)
    dtypes = []
    hook = pipe.transformer.register_forward_hook(lambda m, args, out: dtypes.append(out.dtype))
    try:
        out = pipe("a green square moves up", generator=torch.Generator().manual_seed(3), num_inference_steps=4)
        again = pipe("a green square moves up", generator=torch.Generator().manual_seed(3), num_inference_steps=4)
    finally:
        hook.remove()
    assert dtypes and set(dtypes) == {torch.bfloat16}  # the transformer really ran in bfloat16
    assert pipe.vqvae.dtype == torch.bfloat16 and pipe.revision != tiny_pipe.revision
    assert out.frames.shape == (1, 11, 32, 32, 3)
    assert np.array_equal(out.frames, again.frames)  # as reproducible as float32
    assert len(np.unique(out.frames.reshape(-1, 3), axis=0)) > 1  # a picture, not one flat colour
