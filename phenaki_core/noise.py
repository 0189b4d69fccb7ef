"""Random numbers for sampling and training, drawn the way diffusers draws them.

diffusers' `randn_tensor` draws on the generator's device and then moves the numbers to
where they are used. Doing the same here means a CPU `torch.Generator` (what the story
engine and sidecars seed) drives a pipeline on CUDA, and a seed gives the same numbers on
either device, so a story rendered on a GPU continues the way it did on the CPU (up to the
arithmetic of the model itself). Everything in the library that draws random numbers at
sampling or training time goes through `rand_tensor`; every generator it makes comes from
`cpu_generator`.
"""
from __future__ import annotations

import torch


def cpu_generator(seed: int) -> torch.Generator:
    """A generator seeded on the CPU: the same numbers whatever device the model is on."""
    return torch.Generator("cpu").manual_seed(int(seed))


def _draw_device(generator, device: torch.device) -> torch.device:
    gen = generator[0] if isinstance(generator, list) else generator
    if gen is None:
        return device
    if gen.device.type != device.type and gen.device.type != "cpu":
        raise ValueError(f"cannot draw numbers for {device} from a generator on {gen.device}; "
                         "seed a CPU generator (phenaki_core.noise.cpu_generator) instead")
    return gen.device


def rand_tensor(shape, generator=None, device=None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Uniform numbers in [0, 1) of `shape` on `device`, drawn on the generator's device.

    `generator`: None (the global RNG of `device`), one generator, or a list of one per
    row of `shape[0]` (each row then depends on its own generator alone, as in diffusers).
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if isinstance(generator, list) and len(generator) == 1:
        generator = generator[0]
    if isinstance(generator, list):
        if len(generator) != shape[0]:
            raise ValueError(f"got {len(generator)} generators for {shape[0]} rows")
        rows = [torch.rand((1, *shape[1:]), generator=g, device=_draw_device(g, device), dtype=dtype)
                for g in generator]
        return torch.cat([r.to(device) for r in rows]) if rows else torch.empty(shape, device=device, dtype=dtype)
    return torch.rand(shape, generator=generator, device=_draw_device(generator, device), dtype=dtype).to(device)


def gumbel_tensor(shape, generator=None, device=None) -> torch.Tensor:
    """Gumbel(0, 1) noise, -log(-log(u)), with u kept away from 0 and 1 so it stays finite."""
    u = rand_tensor(shape, generator, device).clamp_(1e-20, 1 - 1e-7)
    return -torch.log(-torch.log(u))
