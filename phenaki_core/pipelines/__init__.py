"""The clip pipeline. It knows nothing of stories: phenaki_core.story sits above it.

Names load on first use (PEP 562), so `phenaki_core.pipelines.defaults` stays light."""
import importlib
from pathlib import Path

# DiffusionPipeline.from_pretrained(folder, custom_pipeline=DIFFUSERS_ENTRY, trust_remote_code=True)
# loads a PhenakiPipeline (diffusers_entry.py says why this is the way).
DIFFUSERS_ENTRY = str(Path(__file__).with_name("diffusers_entry.py"))

_EXPORTS = {
    "DEFAULT_CONTEXT_FRAMES": ".defaults", "DEFAULT_GUIDANCE": ".defaults", "DEFAULT_STEPS": ".defaults",
    "DEFAULT_MODEL": "..model_folder", "DEFAULT_MODEL_NAME": "..model_folder", "ModelLoadError": "..model_folder",
    "load_pipeline": ".default",
    "GenerationInterrupted": ".pipeline_phenaki", "PhenakiPipeline": ".pipeline_phenaki",
    "PhenakiPipelineOutput": ".pipeline_phenaki",
}
__all__ = [*sorted(_EXPORTS), "DIFFUSERS_ENTRY"]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


def __dir__():
    return __all__
