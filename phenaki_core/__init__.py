"""Phenaki: text to video of any length (Villegas et al., 2022), packaged diffusers-style.

Names load on first use (PEP 562): `import phenaki_core` and the CLI's `--help` stay fast,
and importing the clip pipeline never pulls in the story engine above it.
"""
import importlib

_EXPORTS = {
    "CViViT": ".models", "Discriminator": ".models", "FSQ": ".models", "MaskGitTransformer": ".models",
    "MaskGitScheduler": ".schedulers", "TextEncoder": ".text",
    "PhenakiPipeline": ".pipelines", "PhenakiPipelineOutput": ".pipelines", "load_pipeline": ".pipelines",
    "PhenakiStoryPipeline": ".story", "PhenakiStoryOutput": ".story", "Segment": ".story", "Story": ".story",
    "StoryError": ".story", "StoryRenderer": ".story",
}
__all__ = [*sorted(_EXPORTS)]


def __getattr__(name):
    if name == "__version__":  # one owner: pyproject.toml's version, as installed (read when asked: 0.1 s)
        from importlib import metadata

        try:
            return metadata.version("phenaki-studio")
        except metadata.PackageNotFoundError:  # a source tree that was never installed
            return "unknown"
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


def __dir__():
    return __all__ + ["__version__"]
