"""Where the shipped default model lives, and loading a pipeline by folder."""
from pathlib import Path

import torch

from .pipeline_phenaki import PhenakiPipeline

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "assets" / "phenaki-shapes-64"


def load_pipeline(model: str | Path | None = None, device: str = "cpu", dtype: torch.dtype | None = None) -> PhenakiPipeline:
    """The pipeline in folder `model` (default: the shipped Shapes World model), offline."""
    folder = Path(model) if model else DEFAULT_MODEL
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"no Phenaki model at {folder} (a folder with model_index.json)")
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    pipe = PhenakiPipeline.from_pretrained(str(folder), torch_dtype=dtype).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
