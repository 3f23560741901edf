"""Measurements on GCM maps: parts, shares of mass, figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from xai_helpers import gcm_analysis as ga
from xai_helpers.gcm import GCM

CLASSES = tuple("abcdefghij")


def test_parts_split_the_map():
    ccm = torch.randn(2, 10, 3, 8, 8)
    pos, neg = ga.parts(ccm)
    assert pos.min() >= 0 and neg.min() >= 0
    assert torch.equal(pos - neg, ccm)


def test_nontarget_share_on_hand_made_maps():
    ccm = torch.zeros(2, 3, 1, 2, 2)
    ccm[0, 1] = 1.0  # image 0: only its true class (1) is positive
    ccm[1] = 1.0  # image 1: all three classes equally
    ccm[1, 2] -= 5.0  # ...except class 2, negative everywhere: not positive mass
    share = ga.nontarget_positive_share(ccm, torch.tensor([1, 0]))
    assert share.tolist() == pytest.approx([0.0, 0.5])


def test_mask_shares_count_mass_and_area():
    ccm = torch.zeros(1, 3, 4, 4)
    ccm[0, :, 0, 0] = 3.0  # all positive mass in one pixel
    ccm[0, :, 3, 3] = -9.0  # negative mass is ignored
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 0, :2] = True
    shares = ga.mask_shares(ccm, {"centre": mask})
    assert shares["centre"] == {"mass": 1.0, "area": 2 / 16}
    assert shares["elsewhere"] == {"mass": 0.0, "area": 14 / 16}


def test_bounding_boxes_fill_the_box_and_keep_empty_masks_empty():
    mask = torch.zeros(2, 6, 8, dtype=torch.bool)
    mask[0, 1, 2] = mask[0, 4, 5] = True  # two corners of the box rows 1-4, columns 2-5
    box = ga.bounding_boxes(mask)
    assert box[0].sum() == 4 * 4 and box[0, 1:5, 2:6].all()
    assert not box[1].any()


def test_lighter_than_background_tells_the_polarity():
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[:, 1:3, 1:3] = True
    images = torch.full((2, 3, 4, 4), 0.2)
    images[0][:, mask[0]] = 0.9   # light digit on a dark ground
    images[1] = 0.8
    images[1][:, mask[1]] = 0.1   # dark digit on a light ground
    assert ga.lighter_than_background(images, mask).tolist() == [True, False]


def test_side_by_side_and_half_shares():
    left, right = torch.zeros(3, 32, 32), torch.ones(3, 32, 32)
    two = ga.side_by_side(left, right)
    assert two.shape == (3, 32, 32)
    assert two[:, 8:24, :16].max() == 0 and two[:, 8:24, 16:].min() == 1
    assert two[:, :8].eq(0.5).all()  # grey above and below
    ccm = torch.zeros(1, 2, 3, 32, 32)
    ccm[0, 0, :, 8:24, :16] = 1.0  # class 0 lights the left object
    ccm[0, 1, :, 8:24, 16:] = 2.0  # class 1 the right one...
    ccm[0, 1, :, 0:8, :16] = -5.0  # ...and is negative on the left (not counted)
    assert ga.half_shares(ccm).tolist() == [[1.0, 0.0]]


def test_figures_frame_the_true_class_and_hide_numbers_on_request():
    model = GCM(10, 3).eval()
    x = torch.rand(1, 3, 32, 32)
    _, ccm, scores = ga.class_maps(model, x)
    fig = ga.ccm_figure(x[0], ccm[0], scores[0], CLASSES, label=4)
    axes = fig.axes
    assert len(axes) == 2 * 11
    assert axes[5].spines["top"].get_edgecolor()[:3] == (1.0, 0.0, 0.0)
    assert axes[11 + 5].get_xlabel() == f"{float(scores[0, 4]):+.3f}"
    plt.close(fig)
    fig = ga.ccm_figure(x[0], ccm[0], scores[0], CLASSES, show="positive", numbers=False)
    assert len(fig.axes) == 11 and all(ax.get_xlabel() == "" for ax in fig.axes)
    plt.close(fig)
    with pytest.raises(ValueError, match="show must be"):
        ga.ccm_figure(x[0], ccm[0], scores[0], CLASSES, show="all")
    fig = ga.difference_figure(x[0], ccm[0], scores[0], CLASSES, 1, 9)
    assert f"{float(scores[0, 1] - scores[0, 9]):+.3f}" in fig._suptitle.get_text()
    plt.close(fig)
    fig = ga.ccm_pairs_figure(x.expand(3, -1, -1, -1), ccm[0, :3], ["a", "b", "c"], ncols=2)
    assert len(fig.axes) == 8
    plt.close(fig)


def test_seconds_per_image_is_positive():
    assert 0 < ga.seconds_per_image(GCM(10, 3), torch.rand(20, 3, 32, 32), batch_size=10,
                                    repeats=1) < 1
