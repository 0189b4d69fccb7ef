"""Process-wide settings: where to run (device, dtype) and what makes PyTorch faster on CPU.
Entry points (the CLI, the studio, benchmarks) call these once. Light to import: torch
loads only when a function needs it, so argument parsers can name the choices.

glibc serves each allocation above its mmap threshold (at most 32 MiB) with fresh pages
from the kernel and returns them when the block is freed. A training step allocates and
frees dozens of tensors that size, so each is page-faulted in and zeroed again: 55,000
faults and 12-19% of the tokenizer's training step on these machines
(bench/bench_allocator.py). Raising the thresholds lets freed blocks be reused instead.
"""
import ctypes
import platform

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
KEEP_BYTES = 256 << 20


def keep_freed_memory() -> bool:
    """Let glibc keep and reuse freed blocks of up to 256 MiB. True when it took effect
    (Linux with glibc only; elsewhere the allocator is left as it is)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES))


DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_device(name: str | None = "auto") -> str:
    """"auto": a CUDA GPU when one is there, else the CPU; "cpu"; "cuda" or "cuda:N".
    Raises ValueError with one clear line when the device is not there."""
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no CUDA device is available (torch {torch.__version__}"
                             f"{', a CPU-only build' if torch.version.cuda is None else ''}); use --device cpu or auto")
        index = name.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ValueError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices (cuda:0 on)")
        return name
    raise ValueError(f"unknown device {name!r}: use one of {', '.join(DEVICES)} (or cuda:N)")


def resolve_dtype(name: str | None, device: str):
    """The weights' dtype for `device`: "auto" keeps float32 on the CPU (bf16 gave only
    1.1-1.25x there, compute notes) and takes bfloat16 on a GPU that supports it."""
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}: use one of {', '.join(DTYPES)}")
    return getattr(torch, name)
