from .cvivit import CViViT
from .discriminator import Discriminator
from .quantizer import FSQ
from .transformer import MaskGitTransformer

__all__ = ["CViViT", "Discriminator", "FSQ", "MaskGitTransformer"]
