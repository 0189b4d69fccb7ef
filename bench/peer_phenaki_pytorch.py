"""The peer, lucidrains' phenaki-pytorch 0.5.0, timed at the benchmark configuration.

Runs inside the peer's own virtual environment (bench/bench_vs_peer.py starts it) and
prints one JSON line of timings. torchvision is stubbed: its CUDA wheel does not import
here, and the peer needs it only for the VGG loss and its trainers, which are not timed.
T5 is replaced by fixed 384-d text states (the same width as our MiniLM), so both sides
are timed without text encoding.
"""
import json
import sys
import types
from pathlib import Path


class _Stub(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Stub(f"{self.__name__}.{name}")

    def __call__(self, *a, **k):
        return self


# transformers probes for torchvision when first imported: let it see the truth (absent) first.
from transformers import T5Config, T5EncoderModel, T5Tokenizer  # noqa: E402,F401

for name in ("torchvision", "torchvision.transforms", "torchvision.utils", "torchvision.datasets", "torchvision.models"):
    sys.modules[name] = _Stub(name)

import phenaki_pytorch.phenaki_pytorch as pp  # noqa: E402
import torch  # noqa: E402

pp.get_encoded_dim = lambda name: 384

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speed import timed  # noqa: E402  (one timer for both sides)


def main():
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    torch.set_num_threads(2)
    torch.manual_seed(0)
    cvivit = pp.CViViT(dim=128, codebook_size=1024, image_size=64, patch_size=8, temporal_patch_size=2,
                       spatial_depth=2, temporal_depth=2, dim_head=32, heads=4, use_vgg_and_gan=False)
    maskgit = pp.MaskGit(num_tokens=1024, max_seq_len=384, dim=256, dim_context=384, depth=4, heads=4, dim_head=64)
    phenaki = pp.Phenaki(cvivit=cvivit, maskgit=maskgit, steps=12, text_embed_dim=384)
    text = torch.randn(1, 12, 384)
    phenaki.encode_texts = lambda texts, output_device=None: text.expand(len(texts), -1, -1).to(output_device)
    out = {}
    with torch.no_grad():
        out["clip_s"] = timed(lambda: phenaki.sample(texts=["a red circle moves left"], num_frames=11, cond_scale=3.0), repeat)
        prime = torch.rand(1, 3, 5, 64, 64)
        out["continuation_s"] = timed(lambda: phenaki.sample(texts=["a red circle moves up"], num_frames=6,
                                                             prime_frames=prime, cond_scale=3.0), repeat)
    # Training steps at the default model's batches (tokenizer: 16 videos; transformer: 32 videos).
    videos = torch.rand(16, 3, 11, 64, 64) * 2 - 1
    opt = torch.optim.AdamW(cvivit.parameters())

    def tok_step():
        loss = cvivit(videos)  # L2 only: use_vgg_and_gan=False
        opt.zero_grad(); loss.backward(); opt.step()

    out["tokenizer_step_s"] = timed(tok_step, repeat)
    videos = torch.rand(32, 3, 11, 64, 64) * 2 - 1
    mopt = torch.optim.AdamW(maskgit.parameters())

    def mg_step():
        loss = phenaki(videos, text_embeds=text.expand(32, -1, -1))
        mopt.zero_grad(); loss.backward(); mopt.step()

    out["transformer_step_s"] = timed(mg_step, repeat)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
