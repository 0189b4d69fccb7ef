"""Training data: the built-in Shapes World and users' own video and image folders."""

from .folders import ImageFolderDataset, JointDataset, VideoFolderDataset
from .shapes_world import (
    ALL_PAIRS,
    BACKGROUNDS,
    CLIP_FRAMES,
    COLOURS,
    FPS,
    HELD_OUT,
    MOTIONS,
    SHAPES,
    STYLES,
    TRAIN_PAIRS,
    Scene,
    ShapesWorld,
    caption,
    frames_to_tensor,
    parse_caption,
    render,
    sample_batch,
    sample_image,
    sample_image_scene,
    sample_story_clip,
    sample_video,
    sample_video_scene,
)

__all__ = [
    "ALL_PAIRS", "BACKGROUNDS", "CLIP_FRAMES", "COLOURS", "FPS", "HELD_OUT", "MOTIONS", "SHAPES", "STYLES",
    "TRAIN_PAIRS", "Scene", "ShapesWorld", "caption", "frames_to_tensor", "parse_caption", "render",
    "sample_batch", "sample_image", "sample_image_scene", "sample_story_clip", "sample_video",
    "sample_video_scene", "ImageFolderDataset", "JointDataset", "VideoFolderDataset",
]
