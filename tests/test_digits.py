"""House-number-like digits from MNIST: label = centre digit, masks, determinism."""

from __future__ import annotations

import pytest
import torch

from xai_helpers import data, digits


@pytest.fixture(scope="module")
def built():
    mnist = data.load("mnist", "test", n=1_200, verbose=False)
    return mnist, *digits.house_digits(mnist)


def test_images_labels_and_masks(built):
    mnist, images, centre, neighbours = built
    assert images.images.shape == (1_200, 3, 32, 32)
    assert images.images.min() >= 0 and images.images.max() <= 1
    assert torch.equal(images.labels, mnist.labels)  # the label is the centre digit's
    assert centre.shape == neighbours.shape == (1_200, 32, 32)
    assert not (centre & neighbours).any()
    # the centre digit sits in the middle: its mask's centroid is within 3 px of (16, 16)
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    area = centre.float().sum((1, 2))
    assert (area > 10).all()
    cy = (centre * ys).sum((1, 2)) / area
    cx = (centre * xs).sum((1, 2)) / area
    assert ((cy - 15.5).abs() < 3.5).float().mean() > 0.95
    assert ((cx - 15.5).abs() < 3.5).float().mean() > 0.95
    # neighbours lie beside it, never over the middle columns
    assert not neighbours[:, :, 13:19].any()
    assert neighbours.any(dim=(1, 2)).float().mean() > 0.8  # most images have a distractor


def test_the_digit_is_drawn_where_its_mask_is(built):
    _, images, centre, _ = built
    x = images.images
    # pixels under the centre mask differ from the background far more than the noise does
    background = x[:, :, 0:3, 14:18].mean((2, 3))  # above the digit, between its neighbours
    inside = (x * centre[:, None]).sum((2, 3)) / centre[:, None].sum((2, 3))
    assert (inside - background).abs().sum(1).median() > 0.3


def test_subsets_are_prefixes_of_the_whole(built):
    mnist, images, centre, _ = built
    small, small_centre, _ = digits.house_digits(mnist.subset(1_000))
    assert torch.equal(small.images, images.images[:1_000])
    assert torch.equal(small_centre, centre[:1_000])


def test_loader_builds_it_and_rejects_other_inputs():
    loaded = data.load("house_digits", "test", n=50, verbose=False)
    assert loaded.name == "house_digits" and loaded.images.shape == (50, 3, 32, 32)
    assert data.source_name("house_digits") == "mnist"
    assert all(s.startswith("built from") for s in data.find_sources("house_digits"))
    cifar = data.load("cifar10", "test", n=5, verbose=False)
    with pytest.raises(ValueError, match="MNIST images N x 1 x 28 x 28"):
        digits.house_digits(cifar)
