"""What the upsampler's trainer crops from: the frozen trunk's features of paired renders,
computed once (feature_bank.FeatureBank), and the head that draws from them (DrawHead)."""
import torch
from torch import nn

from .losses import object_region
from .train_upsampler import paired_batches


class DrawHead(nn.Module):
    """The upsampler's per-frame drawing as a module of its own: what accelerate prepares
    (and DDP synchronises), since training calls `draw` on banked features, not `forward`."""

    def __init__(self, upsampler):
        super().__init__()
        self.upsampler = upsampler

    def forward(self, features):
        return self.upsampler.draw(features)


class FeatureBank:
    """The frozen trunk's per-frame features of paired renders, with the large targets and
    the object region (found on the small render): what every step crops from."""

    def __init__(self, features, large, region):
        self.features, self.large, self.region = features, large, region  # fp16, uint8, bool
        boxes = []
        for r in region:  # each frame's object box, to centre crops on it
            ys, xs = r.nonzero(as_tuple=True)
            boxes.append([ys.min(), ys.max(), xs.min(), xs.max()] if len(ys) else [-1, -1, -1, -1])
        self.boxes = torch.tensor(boxes)

    def __len__(self):
        return len(self.features)

    def to(self, device):
        self.features, self.large, self.region = (t.to(device) for t in (self.features, self.large, self.region))
        return self

    @classmethod
    @torch.no_grad()
    def build(cls, tokenizer, upsampler, args, seed: int, frames: int = 11, per_batch: int = 10):
        size = tokenizer.config.image_size
        n_images = round(per_batch * args.bank_images / args.bank_clips)
        batches = paired_batches(seed, per_batch, n_images, size, args.scale, frames)
        feats, large, region = [], [], []

        def add(small, big):  # (B, 3, T, h, w), (B, 3, T, H, W) uint8
            small_f = small.float() / 127.5 - 1
            feats.append(upsampler.features(tokenizer.tokenize(small_f)).flatten(0, 1).half())
            large.append(big.transpose(1, 2).flatten(0, 1))
            region.append(object_region(small_f).transpose(1, 2).flatten(0, 1)[:, 0] > 0)

        clips = 0
        while clips < args.bank_clips:
            v_small, v_large, i_small, i_large = next(batches)
            n_still = int(len(i_small) * args.still_fraction)  # still clips: the tubelet path on images
            add(torch.cat([v_small, i_small[:n_still].expand(-1, -1, frames, -1, -1)]),
                torch.cat([v_large, i_large[:n_still].expand(-1, -1, frames, -1, -1)]))
            if len(i_small):
                add(i_small, i_large)
            clips += len(v_small)
        return cls(torch.cat(feats), torch.cat(large), torch.cat(region))

    def crops(self, n: int, crop: int, scale: int):
        """n random crops (features (n, C, crop, crop) float, targets (n, 3, s*crop, s*crop) in
        [-1, 1], regions (n, 1, crop, crop)); every other one centred inside the object's box."""
        h = self.features.shape[-1]
        idx = torch.randint(len(self), (n,))
        y, x = torch.randint(h, (n,)), torch.randint(h, (n,))
        box = self.boxes[idx]
        centred = (torch.arange(n) % 2 == 0) & (box[:, 0] >= 0)
        u, v = torch.rand(n), torch.rand(n)
        y = torch.where(centred, (box[:, 0] + u * (box[:, 1] - box[:, 0] + 1)).long(), y)
        x = torch.where(centred, (box[:, 2] + v * (box[:, 3] - box[:, 2] + 1)).long(), x)
        y0 = (y - crop // 2).clamp(0, h - crop).tolist()
        x0 = (x - crop // 2).clamp(0, h - crop).tolist()
        c, s = crop, scale
        f = torch.stack([self.features[i, :, a:a + c, b:b + c] for i, a, b in zip(idx.tolist(), y0, x0)]).float()
        t = torch.stack([self.large[i, :, s * a:s * (a + c), s * b:s * (b + c)]
                         for i, a, b in zip(idx.tolist(), y0, x0)]).float() / 127.5 - 1
        r = torch.stack([self.region[i, a:a + c, b:b + c] for i, a, b in zip(idx.tolist(), y0, x0)])[:, None]
        return f, t, r.float()
