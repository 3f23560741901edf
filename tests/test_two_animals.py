"""Paper 3's two-animal experiment: the canvas, Table 1's masks and the score readout."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from xai_helpers import two_animals as ta
from xai_helpers.gcm import CIFAR10_MEAN


def tiles():
    torch.manual_seed(0)
    return torch.rand(3, 32, 32), torch.rand(3, 32, 32)


def test_canvas_puts_the_dog_above_the_cat_on_a_plain_background():
    dog, cat = tiles()
    image, dog_region, cat_region = ta.canvas(dog, cat)
    assert image.shape == (3, 64, 64) and dog_region.shape == (64, 64)
    assert torch.equal(image[:, 0:32, 16:48], dog) and torch.equal(image[:, 32:64, 16:48], cat)
    assert dog_region.sum() == cat_region.sum() == 32 * 32
    assert not (dog_region & cat_region).any()
    assert dog_region[:32, 16:48].all() and cat_region[32:, 16:48].all()
    background = ~(dog_region | cat_region)
    assert torch.allclose(image[:, background], torch.tensor(CIFAR10_MEAN)[:, None].expand(
        3, int(background.sum())))
    bigger, d2, _ = ta.canvas(dog, cat, size=96)
    assert torch.equal(bigger[:, 8:40, 32:64], dog) and d2.sum() == 1024
    with pytest.raises(ValueError, match="cannot hold two 32 x 32 tiles"):
        ta.canvas(dog, cat, size=48)
    with pytest.raises(ValueError, match="0-255"):
        ta.canvas(dog * 255, cat)


def test_region_cells_follow_the_tile_at_every_point():
    _, dog_region, _ = ta.canvas(*tiles())
    for side, rows, cols in ((16, (0, 8), (4, 12)), (4, (0, 2), (1, 3)), (2, (0, 1), (0, 2))):
        cells = ta.region_cells(dog_region, (side, side))
        expected = torch.zeros(side, side, dtype=torch.bool)
        expected[rows[0]:rows[1], cols[0]:cols[1]] = True
        assert torch.equal(cells, expected), side


def test_table1_masks_split_the_region_by_the_spots():
    """Spots: positive, >= threshold x the largest ratio *inside* the region; a larger ratio
    outside the region does not count; (a) and (b) partition the region."""
    ratio = torch.zeros(4, 4)
    region = torch.zeros(4, 4, dtype=torch.bool)
    region[:2] = True
    ratio[0, 0], ratio[0, 1], ratio[1, 2], ratio[1, 3] = 1.0, 0.5, 0.2, -3.0
    ratio[3, 3] = 100.0  # outside the region
    masks = ta.table1_masks(ratio, region, threshold=0.3)
    assert masks["(b) spots"].nonzero().tolist() == [[0, 0], [0, 1]]
    assert torch.equal(masks["(a) region minus spots"] | masks["(b) spots"], region)
    assert not (masks["(a) region minus spots"] & masks["(b) spots"]).any()
    none = ta.table1_masks(-ratio.abs(), region)  # nothing positive: no spots
    assert not none["(b) spots"].any() and torch.equal(none["(a) region minus spots"], region)
    with pytest.raises(ValueError, match="0..1"):
        ta.table1_masks(ratio, region, threshold=1.5)


def test_random_and_gradcam_masks_have_the_same_area_inside_the_region():
    region = torch.zeros(8, 8, dtype=torch.bool)
    region[:4, 2:6] = True
    drawn = ta.random_masks(region, 5, draws=7, generator=torch.Generator().manual_seed(0))
    assert drawn.shape == (7, 8, 8) and (drawn.flatten(1).sum(1) == 5).all()
    assert not (drawn & ~region).any()
    assert len({tuple(m.flatten().tolist()) for m in drawn}) > 1  # really random
    with pytest.raises(ValueError, match="between 0 and the region's 16 cells"):
        ta.random_masks(region, 17, 1, torch.Generator())
    net = small_net()
    image, dog_region, _ = ta.canvas(*tiles())
    cells = ta.region_cells(dog_region, (16, 16))
    gc = ta.gradcam_masks(net, image, "pool2", ta.CAT, cells, 10)
    assert int(gc["(b) spots"].sum()) == 10 and not (gc["(b) spots"] & ~cells).any()
    assert torch.equal(gc["(a) region minus spots"] | gc["(b) spots"], cells)


def small_net() -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 4, 3, padding=1)), ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(4, 6, 3, padding=1)), ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)),
        ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(6, 10)),
    ])).eval()


def test_scores_after_zero_exactly_the_masked_features():
    """An empty mask changes nothing; zeroing every cell leaves the classifier's bias (the
    features after the pooling are all 0); masks are read one per batch row."""
    net = small_net()
    image, _, _ = ta.canvas(*tiles())
    with torch.no_grad():
        plain = net(image[None])[0]
    masks = torch.stack([torch.zeros(32, 32, dtype=torch.bool),
                         torch.ones(32, 32, dtype=torch.bool)])
    scores = ta.scores_after(net, image, "pool1", masks)
    torch.testing.assert_close(scores[0], plain)
    # conv2 of an all-zero input gives its bias; relu, pool, average: relu(bias2) into fc
    expected = net.fc(torch.relu(net.conv2.bias))
    torch.testing.assert_close(scores[1], expected.detach())
    assert not any(m._forward_hooks for m in net.modules())


def test_run_table1_reads_the_cat_score_for_every_mask():
    net = small_net()
    pairs = [ta.Pair(0, 1, *ta.canvas(*tiles())), ta.Pair(2, 3, *ta.canvas(*reversed(tiles())))]
    result = ta.run_table1(net, pairs, "pool1", "pool2", draws=3)
    assert result.before.shape == (2,) and result.region == 16 * 16  # pool1: 32 x 32 cells
    with torch.no_grad():
        assert result.before[0] == pytest.approx(net(pairs[0].image[None])[0, ta.CAT].item(),
                                                 abs=1e-5)
    assert set(result.after) == {"CAV (a)", "CAV (b)", "Grad-CAM (a)", "Grad-CAM (b)",
                                 "random (a)", "random (b)"}
    assert result.paper_direction("CAV (a)").dtype == torch.bool
    torch.testing.assert_close(result.change("CAV (b)"), result.after["CAV (b)"] - result.before)
