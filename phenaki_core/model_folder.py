"""Where the shipped default model lives, and whether a folder holds a Phenaki model.

Light on purpose (no torch, no diffusers): the CLI checks `--model` with it before it
loads anything, so a typo costs a line, not seconds of imports and a traceback.
"""
import json
from pathlib import Path

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "assets" / "phenaki-shapes-64"
DEFAULT_MODEL_NAME = DEFAULT_MODEL.name
COMPONENTS = ("text_encoder", "vqvae", "transformer", "scheduler")
WEIGHTED = ("vqvae", "transformer")  # the components whose weights live in the folder


class ModelLoadError(ValueError):
    """A model folder that is missing, incomplete or unreadable; the message says which part."""


def check_model_folder(model: str | Path | None) -> Path:
    """The folder `model` (None: the shipped default) if it looks like a Phenaki pipeline
    folder: model_index.json naming every component, each with its config, and safetensors
    weights for those that carry weights. Raises ModelLoadError saying what is wrong."""
    folder = Path(model) if model else DEFAULT_MODEL
    if not folder.is_dir():
        raise ModelLoadError(f"no model folder at {folder}")
    index = folder / "model_index.json"
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{folder} is not a Phenaki model: it has no model_index.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{index} is unreadable: {e}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{index} is not a pipeline index")
    missing = [c for c in COMPONENTS if c not in data]
    if missing:
        raise ModelLoadError(f"{folder} is not a Phenaki model: model_index.json lacks {', '.join(missing)}")
    for c in COMPONENTS:
        config = "scheduler_config.json" if c == "scheduler" else "config.json"
        if not (folder / c / config).is_file():
            raise ModelLoadError(f"{folder} is incomplete: {c}/{config} is missing")
    for c in WEIGHTED:
        if not list((folder / c).glob("*.safetensors")):
            raise ModelLoadError(f"{folder} is incomplete: {c}/ has no .safetensors weights")
    return folder
