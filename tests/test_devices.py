"""Devices: the noise helper, device and dtype choice, and (marked `cuda`) the GPU path itself.

The CPU tests prove what does not need a GPU: a CPU generator gives the same numbers
whatever device they are for (the `meta` device stands in for a GPU: numbers drawn for
it are drawn on the generator's CPU and moved), and nothing in sampling needs the CPU.
The `cuda` tests run the pipeline, a story, model offload and training steps on a GPU,
and are skipped where there is none (scripts/gpu_check.sh runs them on a lent GPU)."""
import pathlib
import re

import numpy as np
import pytest
import torch

from phenaki_core import MaskGitScheduler
from phenaki_core.noise import _draw_device, cpu_generator, gumbel_tensor, rand_tensor
from phenaki_core.runtime import resolve_device, resolve_dtype

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_a_cpu_generator_gives_the_same_numbers_for_any_device():
    expected = torch.rand((3, 5), generator=torch.Generator().manual_seed(4))
    assert torch.equal(rand_tensor((3, 5), cpu_generator(4), "cpu"), expected)
    g = cpu_generator(4)
    moved = rand_tensor((3, 5), g, "meta")  # drawn on the CPU, then moved: no numbers exist on meta
    assert moved.device.type == "meta" and moved.shape == (3, 5)
    assert torch.equal(torch.rand((2,), generator=g), torch.rand((17,), generator=cpu_generator(4))[15:])
    assert _draw_device(cpu_generator(0), torch.device("cuda")).type == "cpu"
    class CudaGenerator:  # stands in for torch.Generator("cuda"), which needs a GPU to exist
        device = torch.device("cuda")

    with pytest.raises(ValueError, match="CPU generator"):
        _draw_device(CudaGenerator(), torch.device("cpu"))


def test_a_list_of_generators_draws_each_row_from_its_own():
    a = rand_tensor((2, 4), [cpu_generator(1), cpu_generator(2)])
    b = rand_tensor((2, 4), [cpu_generator(1), cpu_generator(3)])
    assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])
    assert torch.equal(a[0], rand_tensor((1, 4), cpu_generator(1))[0])
    assert torch.isfinite(gumbel_tensor((1000,), cpu_generator(0))).all()


def test_scheduler_with_a_generator_per_row_steps_each_row_as_if_alone():
    sched = MaskGitScheduler(mask_token_id=16)
    tokens = torch.full((2, 3, 4, 4), 16)
    tokens[1, 0] = 5  # rows with different masked counts: the noise is ragged across the batch
    logits = torch.randn(2, 3, 4, 4, 16)
    both = sched.step(logits, 0, tokens, [cpu_generator(1), cpu_generator(2)], state=sched.create_state(6)).prev_sample
    for row, seed in ((0, 1), (1, 2)):
        alone = sched.step(logits[row:row + 1], 0, tokens[row:row + 1], cpu_generator(seed),
                           state=sched.create_state(6)).prev_sample
        assert torch.equal(both[row:row + 1], alone)


def test_the_scheduler_draws_as_it_always_did_for_a_cpu_generator():
    """The shipped model's frames for a seed stay what they were: the helper draws on the CPU
    generator exactly what `torch.rand(shape, generator=g, device="cpu")` drew before."""
    sched = MaskGitScheduler(mask_token_id=16, refine_steps=0)
    tokens, logits = torch.full((1, 2, 3, 3), 16), torch.randn(1, 2, 3, 3, 16)
    out = sched.step(logits, 0, tokens, cpu_generator(7), state=sched.create_state(4)).prev_sample
    # The same step written out with plain torch.rand, as the scheduler was before the helper.
    g = cpu_generator(7)
    lp = torch.log_softmax(logits.reshape(18, 16), -1)
    u = torch.rand(lp.shape, generator=g).clamp_(1e-20, 1 - 1e-7)
    drawn = (lp - torch.log(-torch.log(u))).argmax(-1)
    u2 = torch.rand(drawn.shape, generator=g).clamp_(1e-20, 1 - 1e-7)
    conf = lp.gather(-1, drawn[:, None]).squeeze(-1) + 0.75 * -torch.log(-torch.log(u2))
    keep_masked = int(18 * np.cos(np.pi / 2 * 1 / 4))
    expected = drawn.masked_fill(conf.argsort().argsort() < keep_masked, 16).view(1, 2, 3, 3)
    assert torch.equal(out, expected)


def test_sampling_code_never_reads_cuda_tensors_as_numpy_without_moving_them():
    root = pathlib.Path(__file__).resolve().parents[1] / "phenaki_core"
    for name in ("pipelines/pipeline_phenaki.py", "story/engine.py", "story/pipeline_story.py", "schedulers/scheduling_maskgit.py"):
        for line in (root / name).read_text().splitlines():
            if re.search(r"\.numpy\(\)", line):
                assert ".cpu().numpy()" in line or ".cpu().contiguous()" in line, (name, line)


def test_resolve_device_and_dtype():
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    assert resolve_dtype("auto", "cpu") == torch.float32 and resolve_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("float8", "cpu")
    if torch.cuda.is_available():
        assert resolve_device("auto") == "cuda"
    else:
        assert resolve_device("auto") == "cpu"
        with pytest.raises(ValueError, match="no CUDA device is available"):
            resolve_device("cuda")


# -- on a GPU -------------------------------------------------------------------------------------
@pytest.mark.cuda
@cuda
def test_pipeline_samples_on_cuda_from_a_cpu_generator(tiny_pipe):
    import copy

    pipe = copy.deepcopy(tiny_pipe).to("cuda")
    a = pipe("a red circle moves left", generator=cpu_generator(0), num_inference_steps=4, num_frames=17).frames
    b = pipe("a red circle moves left", generator=cpu_generator(0), num_inference_steps=4, num_frames=17).frames
    assert a.shape == (1, 17, 32, 32, 3) and np.array_equal(a, b)
    cpu = tiny_pipe("a red circle moves left", generator=cpu_generator(0), num_inference_steps=4,
                    output_type="latent").frames
    gpu = pipe("a red circle moves left", generator=cpu_generator(0), num_inference_steps=4, output_type="latent").frames
    # Same noise on both devices; only the arithmetic differs, so nearly all tokens agree.
    assert gpu.device.type == "cuda" and (gpu.cpu() == cpu).float().mean() > 0.5


@pytest.mark.cuda
@cuda
def test_story_renders_on_cuda_and_renders_again_identically(tiny_pipe):
    import copy

    from phenaki_core import PhenakiStoryPipeline

    pipe = copy.deepcopy(tiny_pipe).to("cuda", torch.bfloat16)
    story = PhenakiStoryPipeline.from_pipe(pipe)
    out = story(["a red circle moves right", "a red circle moves down"], num_frames=[11, 12], seed=0, num_inference_steps=3)
    again = story(out.story)
    assert out.frames.shape == (1, 23, 32, 32, 3) and np.array_equal(out.frames, again.frames)


@pytest.mark.cuda
@cuda
def test_model_cpu_offload_runs_a_clip(tiny_pipe):
    import copy

    pipe = copy.deepcopy(tiny_pipe)
    pipe.enable_model_cpu_offload(device="cuda")
    out = pipe("a blue square grows", generator=cpu_generator(1), num_inference_steps=3, num_frames=17)
    assert out.frames.shape == (1, 17, 32, 32, 3)


@pytest.mark.cuda
@cuda
def test_training_steps_run_on_cuda_in_bf16():
    from phenaki_core import CViViT, MaskGitTransformer
    from phenaki_core.training import losses

    vq = CViViT(image_size=64).cuda()
    opt = torch.optim.AdamW(vq.parameters())
    videos = torch.rand(8, 3, 11, 64, 64, device="cuda") * 2 - 1
    for _ in range(2):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = losses.reconstruction_loss(vq(videos)[0], videos)
        opt.zero_grad(), loss.backward(), opt.step()
    assert torch.isfinite(loss)
    tr = MaskGitTransformer(codebook_size=1024, latent_frames=6, grid=8, width=128, depth=2, heads=2, text_dim=384).cuda()
    topt, sched = torch.optim.AdamW(tr.parameters()), MaskGitScheduler(mask_token_id=1024)
    tokens = torch.randint(0, 1024, (16, 6, 8, 8), device="cuda")
    states, mask = torch.randn(16, 7, 384, device="cuda"), torch.ones(16, 7, dtype=torch.bool, device="cuda")
    for step in range(2):
        inputs, masked = sched.mask_tokens(tokens, generator=cpu_generator(step))
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = losses.masked_token_loss(tr(inputs, states, mask, logits_at=masked), tokens, masked)
        topt.zero_grad(), loss.backward(), topt.step()
    assert torch.isfinite(loss)
