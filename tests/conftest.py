import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from phenaki_core import CViViT, MaskGitScheduler, MaskGitTransformer, PhenakiPipeline, TextEncoder

torch.set_num_threads(2)


def make_tiny_pipeline(seed: int = 0, text_encoder: TextEncoder | None = None, image_size: int = 32,
                       temporal_patch_size: int = 2) -> PhenakiPipeline:
    """A randomly initialised pipeline small enough for unit tests (11-frame clips, 32x32)."""
    torch.manual_seed(seed)
    te = text_encoder or TextEncoder()
    vq = CViViT(image_size=image_size, width=32, heads=2, spatial_depth=1, temporal_depth=1, head_channels=8,
                temporal_patch_size=temporal_patch_size)
    tr = MaskGitTransformer(codebook_size=vq.codebook_size, latent_frames=vq.latent_frames(11), grid=vq.grid, width=32, depth=1,
                            heads=2, text_dim=te.hidden_size)
    pipe = PhenakiPipeline(te, vq, tr, MaskGitScheduler(mask_token_id=tr.mask_token_id))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def text_encoder():
    return TextEncoder()


@pytest.fixture(scope="session")
def tiny_pipe(text_encoder):
    return make_tiny_pipeline(text_encoder=text_encoder)


@pytest.fixture(scope="session")
def tiny_drawing_pipe(tiny_pipe):
    """The tiny pipeline with an upsampler drawing its 32-pixel tokens at 64, the head
    perturbed so drawing and upscaling differ (an untrained head is exactly a bilinear upscale)."""
    from phenaki_core.models.upsampler import TokenUpsampler

    torch.manual_seed(3)
    up = TokenUpsampler.from_tokenizer(tiny_pipe.vqvae, scale=2, channels=8, blocks=1).eval()
    with torch.no_grad():
        for p in up.up.parameters():
            p.normal_(0, 0.05)
    parts = {k: v for k, v in tiny_pipe.components.items() if k != "upsampler"}
    pipe = PhenakiPipeline(**parts, upsampler=up)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="session")
def make_tiny():
    """`make_tiny_pipeline` as a fixture: `from conftest import ...` would find whichever
    conftest module was imported first (tests/hostile has its own)."""
    return make_tiny_pipeline


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium for the browser tests, and Playwright to drive it. Missing, they skip
    on a developer's machine; in CI (CI=true) they fail, so a green run means they ran."""
    import importlib.util
    import os
    from pathlib import Path

    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    missing = [what for what, ok in ((f"no chromium at {path} (apt-get install -y chromium)", Path(path).exists()),
                                     ("no playwright (pip install playwright)",
                                      importlib.util.find_spec("playwright") is not None)) if not ok]
    if missing:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{'; '.join(missing)}; CI=true, so the browser tests must run, not skip")
        pytest.skip("; ".join(missing))
    return path
