"""Model: similarity matrix, weight sharing, preset shapes, KAIR weight mapping, metrics."""
import numpy as np
import pytest
import torch
from torch import nn

from training.checkpoint import NotACheckpoint
from training.metrics import group_bootstrap_ci, roc_auc, roc_curve, video_auc, within_group_auc
from training.model import SiameseNoiseNet, column_similarity, noise_statistics
from training.noise_nets import DnCNN
from training.presets import PRESETS, preset
from training.weights import load_extractor_weights


def test_similarity_matches_direct_numpy():
    rng = np.random.default_rng(0)
    f, b = rng.normal(size=(2, 3, 5, 7)), rng.normal(size=(2, 3, 5, 7))
    f[0, 1, :, 2] = 0.0  # a flat column must stay finite
    got = column_similarity(torch.tensor(f), torch.tensor(b)).numpy()
    assert got.shape == (2, 3, 7, 7)
    want = np.zeros((2, 3, 7, 7))
    for n in range(2):
        for c in range(3):
            for i in range(7):
                for j in range(7):
                    fi, bj = f[n, c, :, i], b[n, c, :, j]
                    want[n, c, i, j] = fi @ bj / (max(np.linalg.norm(fi), 1e-8) * max(np.linalg.norm(bj), 1e-8))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert np.all(np.isfinite(got)) and np.all(got[0, 1, 2] == 0)


def test_noise_statistics_see_the_level_the_cosine_cannot():
    torch.manual_seed(0)
    f, b = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    assert torch.allclose(column_similarity(2 * f, b), column_similarity(f, b), atol=1e-6)  # blind to level
    stats = noise_statistics(2 * f, b) - noise_statistics(f, b)
    assert stats.shape == (4, 9)
    np.testing.assert_allclose(stats[:, 0:3].numpy(), np.log(2), rtol=1e-4)  # face level
    np.testing.assert_allclose(stats[:, 3:6].numpy(), 0, atol=1e-6)  # background level unchanged
    np.testing.assert_allclose(stats[:, 6:9].numpy(), np.log(2), rtol=1e-4)  # their difference
    plain, with_stats = SiameseNoiseNet(preset("tiny", input_size=32)), SiameseNoiseNet(preset("tiny", input_size=32, noise_stats=True))
    assert set(plain.state_dict()) == set(with_stats.state_dict())  # same keys: only the first FC layer widens
    assert with_stats(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)).shape == (2, 2)


def test_both_branches_use_the_one_extractor():
    torch.manual_seed(0)
    model = SiameseNoiseNet(preset("tiny", input_size=32)).eval()
    assert sum(isinstance(m, DnCNN) for m in model.modules()) == 1
    f, b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        direct = model.head(column_similarity(model.extractor(f), model.extractor(b)))
        np.testing.assert_allclose(model(f, b).numpy(), direct.numpy(), rtol=1e-5, atol=1e-6)
    model.train()
    model(f, b).sum().backward()
    # Gradients from both inputs land in the same parameters: changing the background
    # alone changes the extractor's gradient.
    g1 = model.extractor.layers[0].weight.grad.clone()
    model.zero_grad()
    model(f, torch.rand(2, 3, 32, 32)).sum().backward()
    assert not torch.allclose(g1, model.extractor.layers[0].weight.grad)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_output_shapes_per_preset(name):
    cfg = PRESETS[name]
    model = SiameseNoiseNet(cfg).eval()
    x = torch.rand(2, 3, cfg.input_size, cfg.input_size)
    with torch.no_grad():
        assert model.noise(x).shape == x.shape
        assert model(x, x).shape == (2, 2)
    convs = [m for m in model.extractor.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.extractor.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == cfg.depth and len(bns) == cfg.depth - 2
    assert convs[0].out_channels == cfg.features
    if name == "paper":
        assert (cfg.depth, cfg.features, cfg.input_size) == (20, 64, 64)


def _kair_reference(depth: int, features: int) -> nn.Sequential:
    """KAIR's DnCNN with act_mode 'R': conv(bias)+ReLU ..., conv; keys model.0, model.2, ..."""
    layers: list[nn.Module] = [nn.Conv2d(3, features, 3, padding=1), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [nn.Conv2d(features, features, 3, padding=1), nn.ReLU()]
    layers.append(nn.Conv2d(features, 3, 3, padding=1))
    return nn.Sequential(*layers)


@pytest.mark.parametrize("depth,features", [(5, 8), (20, 64)])
def test_kair_weights_give_kair_noise(tmp_path, depth, features):
    torch.manual_seed(1)
    ref = _kair_reference(depth, features)
    path = tmp_path / "dncnn_color_blind.pth"
    torch.save({f"model.{k}": v for k, v in ref.state_dict().items()}, path)
    ours = DnCNN(depth, features)
    assert load_extractor_weights(ours, str(path)) == "kair"
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        np.testing.assert_allclose(ours.eval()(x).numpy(), ref(x).numpy(), rtol=1e-4, atol=1e-5)


def test_kair_depth_mismatch_and_junk_are_refused(tmp_path):
    ref = _kair_reference(5, 8)
    path = tmp_path / "k.pth"
    torch.save({f"model.{k}": v for k, v in ref.state_dict().items()}, path)
    with pytest.raises(ValueError, match="conv layers"):
        load_extractor_weights(DnCNN(4, 8), str(path))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip")
    with pytest.raises(NotACheckpoint):
        load_extractor_weights(DnCNN(4, 8), str(junk))
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(NotACheckpoint, match="neither"):
        load_extractor_weights(DnCNN(4, 8), str(tmp_path / "other.pt"))


def _auc_pairwise(labels, scores):
    pos, neg = scores[labels == 1], scores[labels == 0]
    return np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])


def test_roc_auc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(20):
        labels = rng.integers(0, 2, 40)
        scores = np.round(rng.random(40), 1)  # many ties
        if labels.min() == labels.max():
            continue
        assert roc_auc(labels, scores) == pytest.approx(_auc_pairwise(labels, scores))
    fpr, tpr, _ = roc_curve(np.array([0, 1]), np.array([0.2, 0.9]))
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.1, 0.2])))


def test_within_group_auc_compares_only_reals_and_fakes_of_one_group():
    groups = ["a", "a", "a", "b", "b", "c"]
    labels = np.array([0, 1, 1, 0, 1, 1])
    scores = np.array([0.5, 0.9, 0.5, 0.8, 0.1, 0.0])  # c holds a fake only: compared with nothing
    auc, pairs = within_group_auc(groups, labels, scores)
    assert pairs == 3 and auc == pytest.approx((1 + 0.5 + 0) / 3)  # a: a win and a tie; b: a loss
    assert np.isnan(within_group_auc(["a", "b"], np.array([0, 1]), np.array([0.1, 0.9]))[0])


def test_group_bootstrap_interval_resamples_whole_groups():
    rng = np.random.default_rng(0)
    groups = [f"g{i // 4}" for i in range(80)]  # 20 groups of 4 videos
    labels = np.array([i % 2 for i in range(80)])
    perfect = labels + 0.01 * rng.random(80)
    assert group_bootstrap_ci(video_auc, groups, labels, perfect) == pytest.approx((1.0, 1.0))
    noise = rng.random(80)
    lo, hi = group_bootstrap_ci(video_auc, groups, labels, noise)
    assert lo < roc_auc(labels, noise) < hi and lo < 0.5 < hi and hi - lo > 0.1
    assert group_bootstrap_ci(video_auc, groups, labels, noise) == (lo, hi)  # seeded
    # one class and (nearly) one score per group, as when a model scores sources: 80 videos
    # but only 20 independent draws, so the groups' interval is the wider one
    source = np.array([i // 4 % 2 for i in range(80)])
    per_group = np.repeat(rng.random(20), 4) + 0.01 * rng.random(80)
    lo_g, hi_g = group_bootstrap_ci(video_auc, groups, source, per_group)
    lo_v, hi_v = group_bootstrap_ci(video_auc, [str(i) for i in range(80)], source, per_group)
    assert hi_g - lo_g > hi_v - lo_v
    assert all(np.isnan(group_bootstrap_ci(video_auc, ["a", "b"], np.array([1, 1]), np.array([0.1, 0.2]))))


def test_weight_decay_shrinks_conv_and_linear_weights_only():
    """--weight-decay: with no gradient, AdamW's step shrinks every conv and linear weight
    by lr x decay and leaves biases and BatchNorm as they were; without it, one group."""
    from training.train import param_groups

    model = SiameseNoiseNet(preset("tiny"))
    params = list(model.parameters())
    assert len(param_groups(params, 0.0)) == 1
    opt = torch.optim.AdamW(param_groups(params, 0.5), lr=0.1, weight_decay=0.0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, p in model.named_parameters():
        want = before[name] * (1 - 0.1 * 0.5) if p.ndim > 1 else before[name]
        assert torch.allclose(p.detach(), want), name
