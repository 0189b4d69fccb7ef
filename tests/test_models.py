"""C-ViViT, the per-frame baseline, FSQ and the MaskGIT transformer."""
import pytest
import torch

from phenaki_core import FSQ, CViViT, MaskGitTransformer


@pytest.fixture(scope="module")
def cvivit():
    torch.manual_seed(0)
    return CViViT(image_size=32, width=32, heads=2, spatial_depth=1, temporal_depth=2, head_channels=8).eval()


def video(frames, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, frames, size, size, generator=g) * 2 - 1


def test_encoder_is_causal_bit_for_bit(cvivit):
    v = video(11)
    changed = v.clone()
    changed[:, :, 9:] = -v[:, :, 9:]  # only the last tubelet's frames differ
    with torch.no_grad():
        a, b = cvivit.tokenize(v), cvivit.tokenize(changed)
    assert torch.equal(a[:, :5], b[:, :5])
    assert not torch.equal(a[:, 5], b[:, 5])  # the changed frames do change their own tokens


@pytest.mark.parametrize("model", ["cvivit", "moving"])  # with and without the motion head
def test_decoder_is_causal_bit_for_bit(model, request):
    cvivit = request.getfixturevalue(model)
    with torch.no_grad():
        tokens = cvivit.tokenize(video(11))
        other = tokens.clone()
        other[:, 4:] = (other[:, 4:] + 7) % cvivit.codebook_size
        a, b = cvivit.detokenize(tokens), cvivit.detokenize(other)
    assert torch.equal(a[:, :, :7], b[:, :, :7])  # frames 0..6 come from latent frames 0..3
    assert not torch.equal(a[:, :, 7:], b[:, :, 7:])


def test_prefix_encodes_the_same_alone_or_inside_a_longer_clip(cvivit):
    v = video(11)
    with torch.no_grad():
        assert torch.equal(cvivit.tokenize(v[:, :, :5]), cvivit.tokenize(v)[:, :3])


def test_token_counts_match_the_paper():
    cvivit = CViViT(image_size=128, width=32, heads=2, spatial_depth=1, temporal_depth=1, head_channels=0)
    baseline = CViViT.per_frame_baseline(image_size=128, width=32, heads=2, spatial_depth=1, head_channels=0)
    with torch.no_grad():
        assert cvivit.tokenize(torch.zeros(1, 3, 11, 128, 128)).numel() == 1536
        assert baseline.tokenize(torch.zeros(1, 3, 10, 128, 128)).numel() == 2560
    assert baseline.config.temporal_depth == 0 and baseline.config.temporal_patch_size == 1


def test_one_frame_tubelets_code_and_draw_every_frame_as_an_image():
    torch.manual_seed(0)
    model = CViViT.per_frame_baseline(image_size=32, width=32, heads=2, spatial_depth=1, head_channels=8).eval()
    assert not any("tubelet" in name for name in model.state_dict())  # one set of patch weights
    v = video(5)
    with torch.no_grad():
        tokens = model.tokenize(v)
        alone = torch.cat([model.tokenize(v[:, :, t:t + 1]) for t in range(5)], dim=1)
        assert torch.equal(tokens, alone)  # frame 3 gets the tokens it would get as an image
        drawn = model.detokenize(tokens)
        assert torch.allclose(drawn[:, :, 3:4], model.detokenize(tokens[:, 3:4]), atol=1e-5)


@pytest.mark.parametrize("frames", [1, 3, 11, 21])
def test_any_length_encodes_and_decodes(cvivit, frames):
    with torch.no_grad():
        tokens = cvivit.tokenize(video(frames))
        assert tokens.shape == (1, 1 + (frames - 1) // 2, 4, 4)
        out = cvivit.detokenize(tokens)
    assert out.shape == (1, 3, frames, 32, 32)
    assert out.min() >= -1 and out.max() <= 1


def test_lengths_that_do_not_tile_are_refused(cvivit):
    with pytest.raises(ValueError, match="1 \\+ k\\*2"):
        cvivit.tokenize(video(10))
    with pytest.raises(ValueError, match="32px"):
        cvivit.tokenize(torch.zeros(1, 3, 3, 64, 64))


def test_fsq_round_trips_indices_and_reports_usage():
    fsq = FSQ([8, 5, 5, 5])
    z = torch.randn(4096, 4) * 3
    codes, idx = fsq(z)
    assert idx.min() >= 0 and idx.max() < 1000
    assert torch.allclose(fsq.indices_to_codes(idx), codes)
    usage = fsq.usage(idx)
    assert 1 < usage["perplexity"] <= 1000 and 0 <= usage["dead_fraction"] < 1
    assert fsq.usage(torch.zeros(10, dtype=torch.long))["dead_fraction"] == pytest.approx(999 / 1000)


def test_fsq_passes_gradients_straight_through():
    z = torch.randn(8, 4, requires_grad=True)
    FSQ([8, 8, 4, 4])(z)[0].sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_transformer_predicts_the_codebook_never_the_mask_id():
    tr = MaskGitTransformer(codebook_size=64, latent_frames=3, grid=4, width=32, depth=1, heads=2, text_dim=8)
    tokens = torch.full((2, 3, 4, 4), tr.mask_token_id)
    logits = tr(tokens, torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool))
    assert logits.shape == (2, 3, 4, 4, 64)


def test_null_text_ignores_the_prompt():
    torch.manual_seed(0)
    tr = MaskGitTransformer(codebook_size=64, latent_frames=3, grid=4, width=32, depth=1, heads=2, text_dim=8).eval()
    tokens = torch.randint(0, 64, (2, 3, 4, 4))
    drop = torch.tensor([True, True])
    mask = torch.ones(2, 5, dtype=torch.bool)
    a = tr(tokens, torch.randn(2, 5, 8), mask, drop)
    b = tr(tokens, torch.randn(2, 5, 8), mask, drop)
    c = tr(tokens, torch.randn(2, 5, 8), mask)
    assert torch.allclose(a, b) and not torch.allclose(a, c)


# Either side of each switch between the plain path and the fused kernel on CPU.
@pytest.mark.parametrize("length, dtype", [(6, torch.float32), (128, torch.float32), (129, torch.float32),
                                           (384, torch.bfloat16), (513, torch.bfloat16)])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_the_textbook_formula_on_either_kernel(length, dtype, causal):
    from phenaki_core.models.blocks import Attention

    torch.manual_seed(0)
    attn, x = Attention(32, 4), torch.randn(3, length, 32)
    keep = torch.rand(3, length) > 0.2
    keep[:, 0] = True
    mask = None if causal else keep
    q = attn.to_q(x).view(3, length, 4, 8).transpose(1, 2)
    k, v = attn.to_kv(x).view(3, length, 2, 4, 8).permute(2, 0, 3, 1, 4)
    scores = q @ k.transpose(-1, -2) / 8**0.5
    allowed = torch.ones(length, length, dtype=torch.bool).tril() if causal else keep[:, None, None, :]
    expected = attn.to_out((scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v).transpose(1, 2).reshape(3, length, 32))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        out = attn(x, mask=mask, causal=causal).float()
    tolerance = 1e-5 if dtype == torch.float32 else 3e-2
    assert torch.allclose(out, expected, atol=tolerance)


@pytest.fixture(scope="module")
def moving():
    torch.manual_seed(0)
    return CViViT(image_size=32, width=32, heads=2, spatial_depth=1, temporal_depth=2, head_channels=8,
                  motion_head=True).eval()


@pytest.mark.parametrize("by", ["token flow", "affine motion"])
def test_motion_head_moves_the_first_frame_by_its_flow(moving, by):
    """A motion of (dx, dy) px, given by every token's flow or by the frame's affine motion,
    with all weight on the moved first frame, redraws every later frame as the first frame
    shifted by (dx, dy): what keeps an outlined ring a ring."""
    p = moving.config.patch_size
    token_bias = torch.tensor([2.0 / p, -1.0 / p, 30.0] if by == "token flow" else [0.0, 0.0, 30.0]).repeat(2)
    affine_bias = torch.tensor([0.0] * 4 + ([-2.0 / p, 1.0 / p] if by == "affine motion" else [0.0, 0.0]))
    with torch.no_grad():
        moving.motion.bias.copy_(token_bias)
        moving.motion_affine.bias.copy_(affine_bias)  # the source pixel: x + b, so b = -(dx, dy)
        try:
            out, _, motion = moving(video(5))
        finally:
            moving.motion.bias.zero_()
            moving.motion_affine.bias.zero_()
    first = out[:, :, 0]
    shifted = torch.roll(first, shifts=(-1, 2), dims=(-2, -1))  # content moves 2 px right, 1 px up
    for t in range(1, 5):
        assert torch.allclose(out[:, :, t, 2:-2, 3:-3], shifted[..., 2:-2, 3:-3], atol=1e-4)
    assert motion.weight.min() > 0.999 and motion.moved.shape == (1, 3, 4, 32, 32)


def test_affine_motion_zooms_about_the_frame_centre(moving):
    with torch.no_grad():
        moving.motion.bias.copy_(torch.tensor([0.0, 0.0, 30.0]).repeat(2))
        moving.motion_affine.bias.copy_(torch.tensor([-0.5, 0.0, 0.0, -0.5, 0.0, 0.0]))  # source = x / 2
        try:
            out = moving(video(3))[0]
        finally:
            moving.motion.bias.zero_()
            moving.motion_affine.bias.zero_()
    first = out[0, :, 0]
    # Pixel (i, j) from the centre shows the first frame at (i/2, j/2): even offsets land on pixel centres.
    c = 15.5
    for i, j in [(1.5, 1.5), (-2.5, 5.5), (7.5, -6.5)]:
        y, x = int(c + i), int(c + j)
        sy, sx = c + i / 2, c + j / 2
        y0, x0, fy, fx = int(sy), int(sx), sy - int(sy), sx - int(sx)
        expected = ((1 - fy) * (1 - fx) * first[:, y0, x0] + (1 - fy) * fx * first[:, y0, x0 + 1]
                    + fy * (1 - fx) * first[:, y0 + 1, x0] + fy * fx * first[:, y0 + 1, x0 + 1])
        assert torch.allclose(out[0, :, 1, y, x], expected, atol=1e-4)


def test_moving_the_first_frame_does_not_train_its_drawing(moving):
    moving.zero_grad()
    out, _, motion = moving(video(5))
    (motion.moved.sum() + out[:, :, 1:].sum()).backward()
    assert moving.unembed_image.weight.grad is None or not moving.unembed_image.weight.grad.any()
    assert moving.motion_affine.weight.grad.any() and moving.unembed_tubelet.weight.grad.any()
    moving.zero_grad()


def test_a_story_context_decodes_the_same_alone_with_a_motion_head(moving):
    with torch.no_grad():
        tokens = moving.tokenize(video(11))
        assert torch.allclose(moving.detokenize(tokens[:, :3]), moving.detokenize(tokens)[:, :, :5], atol=1e-5)


def test_motion_head_leaves_images_to_the_image_path(moving):
    plain = CViViT(**{**moving.config, "motion_head": False}).eval()
    plain.load_state_dict(moving.state_dict(), strict=False)
    with torch.no_grad():
        image = video(1)
        assert torch.equal(moving.detokenize(moving.tokenize(image)), plain.detokenize(plain.tokenize(image)))
        assert moving(image)[2] is None
