"""The two kernel choices in phenaki_core/models/blocks.py, side by side in one run.

    python bench/bench_kernels.py [--out docs/bench_kernels.md]

- GELU: exact (erf) against the tanh approximation, forward and backward, bf16 and fp32,
  on the tokenizer's feed-forward activations (16 clips: 6,144 tokens x 512).
- Attention on CPU: blocks.py's three plain ops against PyTorch's unfused SDPA path and
  its fused kernel, on the tokenizer's 64 spatial and 6 causal temporal tokens and the
  transformer's 384 (training: bf16, forward and backward; sampling: fp32, forward). In
  fp32 blocks.py takes the plain path up to 128 tokens only.
"""
import argparse
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speed import timed  # noqa: E402

from phenaki_core.models.blocks import plain_attention  # noqa: E402
from phenaki_core.runtime import keep_freed_memory  # noqa: E402


def forward_backward(fn, *inputs):
    inputs = [x.detach().requires_grad_() for x in inputs]

    def run():
        out = fn(*inputs)
        out.backward(torch.ones_like(out))

    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/bench_kernels.md")
    args = ap.parse_args()
    keep_freed_memory()
    torch.set_num_threads(2)
    rows = []

    for dtype in (torch.bfloat16, torch.float32):
        x = torch.randn(6144, 512, dtype=dtype)
        exact = timed(forward_backward(F.gelu, x), repeat=20)
        approx = timed(forward_backward(lambda t: F.gelu(t, approximate="tanh"), x), repeat=20)
        rows.append((f"GELU forward + backward, 6144 x 512, {str(dtype)[6:]}", f"{exact * 1e3:.2f} ms",
                     f"{approx * 1e3:.2f} ms", f"{approx / exact:.1f}x"))

    cases = (("tokenizer spatial: 96 x 4 heads x 64 tokens, bf16, forward + backward", 96, 64, False, True),
             ("tokenizer temporal, causal: 1024 x 4 heads x 6 tokens, bf16, forward + backward", 1024, 6, True, True),
             ("transformer: 40 x 4 heads x 384 tokens, bf16, forward + backward", 40, 384, False, True),
             ("tokenizer spatial in sampling: 12 x 4 heads x 64 tokens, fp32, forward", 12, 64, False, False),
             ("transformer sampling: 2 x 4 heads x 384 tokens, fp32, forward (blocks.py: fused)", 2, 384, False, False))
    for name, batch, n, causal, train in cases:
        dtype = torch.bfloat16 if train else torch.float32
        q, k, v = (torch.randn(batch, 4, n, 32 if n <= 64 else 64, dtype=dtype) for _ in range(3))
        measure = forward_backward if train else lambda fn, *xs: lambda: fn(*xs)
        plain = timed(measure(lambda a, b, c: plain_attention(a, b, c, None, causal), q, k, v), repeat=10)
        for backend in (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION):
            def sdpa(a, b, c, backend=backend):
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(a, b, c, is_causal=causal)
            t = timed(measure(sdpa, q, k, v), repeat=10)
            label = "unfused SDPA" if backend == SDPBackend.MATH else "fused SDPA"
            rows.append((f"attention, {name}: plain ops vs {label}", f"{plain * 1e3:.2f} ms",
                         f"{t * 1e3:.2f} ms", f"{t / plain:.1f}x"))

    lines = [f"# Kernel choices (bench/bench_kernels.py, 2 threads, {os.cpu_count()} cores visible)", "",
             "| measure | ours | the alternative | speed-up |", "|---|---|---|---|",
             *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
