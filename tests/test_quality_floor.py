"""A quality floor on the shipped model: a few dozen prompts, seen and held-out, through the
Shapes World checker. The floors sit well under the model card's figures (seen 92.2%,
held-out 81.2% at n = 64, seed 0), so sampling noise cannot fail them, but a model that
stopped following its prompts (broken weights, a text encoder swapped, a sampling bug)
cannot ship green."""
import numpy as np
import pytest
import torch

from phenaki_core.eval import check_clip, summarize
from phenaki_core.eval.evaluate import clip_prompts
from phenaki_core.pipelines import DEFAULT_GUIDANCE, load_pipeline

pytestmark = pytest.mark.default_model

SEED = 0
STEPS = 12  # the card's setting
# split: (prompts, lowest adherence that passes); each split is one batched sampling call.
FLOORS = {"train": (24, 0.70), "heldout": (12, 0.50)}


def sample_clips(pipe, prompts: list[str], seed: int) -> np.ndarray:
    """uint8 clips (N, T, H, W, 3), one per prompt, in one batched sampling call.

    The one place this file calls the pipeline: adapt it here when the pipeline's API changes."""
    generator = torch.Generator().manual_seed(seed)
    frames = pipe(prompts, num_inference_steps=STEPS, guidance_scale=DEFAULT_GUIDANCE, generator=generator).frames
    return (frames * 255).round().astype(np.uint8)  # "np" frames are the decoded 8-bit frames / 255


@pytest.fixture(scope="module")
def shipped():
    pipe = load_pipeline()
    assert not pipe.transformer.training and not pipe.vqvae.training
    return pipe


@pytest.mark.parametrize("split", list(FLOORS))
def test_shipped_model_follows_its_prompts(shipped, split):
    n, floor = FLOORS[split]
    prompts = clip_prompts(np.random.default_rng([SEED, list(FLOORS).index(split)]), n, split)
    clips = sample_clips(shipped, prompts, SEED)
    assert clips.shape[0] == n and clips.dtype == np.uint8
    results = [check_clip(c, p) for c, p in zip(clips, prompts)]
    score = summarize(results)
    failed = [p for p, r in zip(prompts, results) if not r.follows]
    assert score["adherence"] >= floor, (
        f"{split}: {score['adherence']:.0%} of {n} clips follow their prompt, floor {floor:.0%} "
        f"(card: seen 92.2%, held-out 81.2%); per attribute {score}; failed: {failed}")
