"""Self-blended fakes: changes only inside the mask, deterministic, a real change inside."""
import importlib.util
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from training.selfblend import bank_blend, bank_key, patch_region, patch_regions, self_blend, soft_ellipse_masks


def _faces(batch: int, height: int, width: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _blend_and_mask(faces: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The blend and the mask it used: `self_blend` draws its mask first."""
    b, _, h, w = faces.shape
    mask = soft_ellipse_masks(b, h, w, torch.Generator().manual_seed(seed), faces.device)
    return self_blend(faces, torch.Generator().manual_seed(seed)), mask.expand_as(faces)


def _astronaut_faces(size: int = 64) -> torch.Tensor:
    """Real face squares: the astronaut's face, shifted a little, as uint8 (B, 3, H, W)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None:
        pytest.skip("scikit-image not installed")
    image = Image.open(os.path.join(spec.submodule_search_locations[0], "data", "astronaut.png")).convert("RGB")
    crops = [np.asarray(image.crop((160 + d, 65 + d, 285 + d, 190 + d)).resize((size, size))) for d in (-6, 0, 6)]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()


def test_blend_changes_only_inside_the_mask_and_changes_it():
    faces = _astronaut_faces()
    out, mask = _blend_and_mask(faces, seed=3)
    assert out.dtype == torch.uint8 and out.shape == faces.shape
    assert torch.equal(out[mask == 0], faces[mask == 0])
    changed = (out != faces) & (mask > 0)
    assert changed.flatten(1).any(1).all()  # every face is altered inside its mask
    assert (out.float() - faces.float()).abs()[mask == 1].mean() > 1.0


@settings(max_examples=30, deadline=None)
@given(
    batch=st.integers(1, 4),
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    seed=st.integers(0, 2**31 - 1),
)
def test_outside_the_mask_is_bit_identical_for_any_shape(batch, height, width, seed):
    faces = _faces(batch, height, width, seed)
    out, mask = _blend_and_mask(faces, seed)
    assert out.shape == faces.shape and out.dtype == torch.uint8
    assert torch.equal(out[mask == 0], faces[mask == 0])


def test_deterministic_for_a_seed_and_different_across_seeds():
    faces = _faces(8, 64, 64, 0)
    a = self_blend(faces, torch.Generator().manual_seed(11))
    b = self_blend(faces, torch.Generator().manual_seed(11))
    c = self_blend(faces, torch.Generator().manual_seed(12))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_masks_are_soft_ellipses_in_the_middle():
    mask = soft_ellipse_masks(16, 64, 64, torch.Generator().manual_seed(0))
    assert mask.shape == (16, 1, 64, 64)
    assert mask.min() == 0 and mask.max() == 1
    assert (mask[:, 0, 31:33, 31:33] == 1).all()  # the centre is fully pasted
    assert (mask[:, 0, [0, 0, -1, -1], [0, -1, 0, -1]] == 0).all()  # corners keep the original
    soft = (mask > 0) & (mask < 1)
    assert soft.flatten(1).sum(1).min() > 50  # a feathered edge, not a hard cut


def test_the_pasted_face_has_a_different_noise():
    """On flat grey faces with camera-like noise, every blend alters the noise itself, not
    only the colour: inside the mask, out is no per-channel affine function of in (a colour
    jitter alone would be one, slope 0.9-1.1): the fit is poor (noise added) or its slope is
    far from 1 (noise smoothed away)."""
    gen = torch.Generator().manual_seed(5)
    faces = (128 + 6 * torch.randn(32, 3, 64, 64, generator=gen)).round().clamp(0, 255).to(torch.uint8)
    out, mask = _blend_and_mask(faces, seed=9)
    inside = mask[:, 0] == 1
    for i in range(len(faces)):
        x = faces[i][:, inside[i]].double()
        y = out[i][:, inside[i]].double()
        assert x.shape[1] > 100
        for c in range(3):
            design = torch.stack([x[c], torch.ones_like(x[c])], 1)
            fit = torch.linalg.lstsq(design, y[c, :, None]).solution
            residual = (y[c] - (design @ fit)[:, 0]).std()
            assert residual > 1.0 or abs(fit[0, 0] - 1) > 0.3


def test_empty_batch_and_bad_input():
    assert self_blend(_faces(0, 8, 8, 0), torch.Generator()).shape == (0, 3, 8, 8)
    with pytest.raises(ValueError):
        self_blend(torch.zeros(2, 3, 8, 8), torch.Generator())
    with pytest.raises(ValueError):
        self_blend(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.Generator())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_the_gpu_with_a_cpu_generator():
    faces = _faces(4, 64, 64, 1).cuda()
    out, mask = _blend_and_mask(faces, seed=2)
    assert out.is_cuda and torch.equal(out[mask == 0], faces[mask == 0])


def test_a_window_is_blended_in_its_face_squares_geometry():
    """The mask of a native window is the face square's mask read where the window lies: a
    64 px window in the middle of a 128 px square gets exactly the middle of that square's
    128 px mask, so it is blended almost all over, as a swap pastes the whole middle of a face."""
    whole = soft_ellipse_masks(6, 128, 128, torch.Generator().manual_seed(5))
    window = soft_ellipse_masks(6, 64, 64, torch.Generator().manual_seed(5), regions=torch.tensor([[0.25, 0.25, 0.5]] * 6))
    assert torch.allclose(window, whole[..., 32:96, 32:96], atol=1e-5)
    as_if_whole = soft_ellipse_masks(6, 64, 64, torch.Generator().manual_seed(5))
    assert window.mean() > 0.7 > 0.4 > as_if_whole.mean()


def test_whole_squares_blend_bit_for_bit_as_before():
    """Area-resized squares are their whole face square: region (0, 0, 1) or none, the same blend."""
    faces = _faces(5, 64, 64, 1)
    before = self_blend(faces, torch.Generator().manual_seed(9))
    assert torch.equal(self_blend(faces, torch.Generator().manual_seed(9), torch.tensor([[0.0, 0.0, 1.0]] * 5)), before)
    assert torch.equal(bank_blend(faces[0], 8, 3), bank_blend(faces[0], 8, 3, (0.0, 0.0, 1.0)))
    assert bank_key("d", 8, 3) == "d-blend8x3" == bank_key("d", 8, 3, (0.0, 0.0, 1.0))


def test_regions_come_from_the_pairs_boxes():
    native = {"face_box": [1203, 291, 113], "face_patch": [1227, 315, 64]}  # a real pair's boxes (dfd)
    area = {"face_box": [1203, 291, 113]}
    assert patch_region(native) == pytest.approx((24 / 113, 24 / 113, 64 / 113))
    assert patch_region(area) == (0.0, 0.0, 1.0)
    regions = patch_regions([native, area])
    assert regions.shape == (2, 3) and regions[1].tolist() == [0.0, 0.0, 1.0]
    assert patch_regions([native, area], "patch") is None and patch_regions([area, area]) is None
    with pytest.raises(ValueError, match="self-blend mask"):
        patch_regions([native], "ellipse")
    faces = _faces(1, 64, 64, 2)
    region = patch_region(native)
    assert torch.equal(bank_blend(faces[0], 8, 1, region), bank_blend(faces[0], 8, 1, region))
    assert not torch.equal(bank_blend(faces[0], 8, 1, region), bank_blend(faces[0], 8, 1))
    assert bank_key("d", 8, 1, region) != bank_key("d", 8, 1)

