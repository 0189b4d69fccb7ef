"""Loading a pipeline by folder (default: the shipped Shapes World model), offline."""
from pathlib import Path

import torch

from ..model_folder import (
    DEFAULT_MODEL,
    DEFAULT_MODEL_NAME,
    ModelLoadError,
    check_model_folder,
)
from ..runtime import resolve_device
from .pipeline_phenaki import PhenakiPipeline

__all__ = ["DEFAULT_MODEL", "DEFAULT_MODEL_NAME", "ModelLoadError", "load_pipeline"]


def load_pipeline(model: str | Path | None = None, device: str = "cpu", dtype: torch.dtype | None = None) -> PhenakiPipeline:
    """The pipeline in folder `model` (default: the shipped model), offline, from safetensors
    only, on `device` ("auto", "cpu", "cuda", "cuda:1", ...).

    Raises ModelLoadError (a ValueError) for a missing, incomplete or corrupt folder, and
    ValueError for a device that is not there."""
    folder = check_model_folder(model)
    device = resolve_device(device)
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    try:
        pipe = PhenakiPipeline.from_pretrained(str(folder), dtype=dtype)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        # safetensors' own errors are OSError/ValueError subclasses or a SafetensorError(Exception)
        raise ModelLoadError(f"cannot load the model in {folder}: {e}") from e
    except Exception as e:  # SafetensorError (header or data corrupt) derives from Exception alone
        if type(e).__name__ == "SafetensorError":
            raise ModelLoadError(f"cannot load the model in {folder}: {e}") from e
        raise
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
