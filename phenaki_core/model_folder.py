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
# A folder may also hold these (PhenakiPipeline._optional_components); when model_index.json
# names one, it must be whole. "upsampler": the same tokens drawn at a larger size.
OPTIONAL = ("upsampler",)


class ModelLoadError(ValueError):
    """A model folder that is missing, incomplete or unreadable; the message says which part."""


def check_model_folder(model: str | Path | None) -> Path:
    """The folder `model` (None: the shipped default) if it looks like a Phenaki pipeline
    folder: model_index.json naming every component, each with its config, and safetensors
    weights for those that carry weights; an optional component it names must be whole too.
    Raises ModelLoadError saying what is wrong (an upsampler made for another tokenizer is
    found when the pipeline loads: load_pipeline raises ModelLoadError then)."""
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
    present = [c for c in OPTIONAL if isinstance(data.get(c), list) and any(data[c])]  # [null, null]: absent
    for c in present:
        if not (folder / c / "config.json").is_file():
            raise ModelLoadError(f"{folder} is incomplete: model_index.json names {c}, but {c}/config.json is missing")
    for c in (*WEIGHTED, *present):
        if not list((folder / c).glob("*.safetensors")):
            raise ModelLoadError(f"{folder} is incomplete: {c}/ has no .safetensors weights")
    return folder
