"""Tests of greedy occlusion (paper 1, seeds 000/001, section 4) and its fast path."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xai_helpers import config, data, models, occlusion
from xai_helpers.models import Normalize, SharedConv2d
from xai_helpers.occlusion import greedy_occlusion, single_pass_occlusion

CHECKPOINT = config.CHECKPOINT_DIR / "tiny_cnn_mnist.pt"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mnist():
    return data.load("mnist", "test", verbose=False)


def region_model(weights: list[float], threshold: float, size: int = 4, grid: int = 2):
    """Linear 2-class model: logit 1 = sum_j weights[j] * (pixel sum of region j) - threshold,
    logit 0 = 0 (regions row-major on a size x size grey image)."""
    r = size // grid
    w = torch.tensor(weights, dtype=torch.float32).view(grid, 1, grid, 1)
    w = w.expand(grid, r, grid, r).reshape(1, size * size)
    linear = nn.Linear(size * size, 2)
    with torch.no_grad():
        linear.weight.copy_(torch.cat([torch.zeros_like(w), w]))
        linear.bias.copy_(torch.tensor([0.0, -threshold]))
    return nn.Sequential(nn.Flatten(), linear)


def region_images(sums: list[list[float]], size: int = 4, grid: int = 2) -> torch.Tensor:
    """Images whose region j has pixel sum sums[i][j] (uniform pixels)."""
    r = size // grid
    x = torch.tensor(sums).view(-1, 1, grid, 1, grid, 1) / (r * r)
    return x.expand(-1, 1, grid, r, grid, r).reshape(-1, 1, size, size).contiguous()


def slow_greedy(model, images, target, grid, fill=0.0):
    """Paper 1, section 4, steps 1-6 as a plain loop: one image at a time, float64."""
    model = copy.deepcopy(model).double().eval()
    r = images.shape[-1] // grid

    def wrong(image):
        return int(model(image[None].double()).argmax()) != target

    def delete(image, j):
        image = image.clone()
        image[:, j // grid * r:(j // grid + 1) * r, j % grid * r:(j % grid + 1) * r] = fill
        return image

    kept = [image for image in images if not wrong(image)]
    order, importance, counts = [], [0.0] * grid * grid, []
    with torch.no_grad():
        while kept and len(order) < grid * grid:
            t = len(order) + 1
            count = [0 if j in order else sum(wrong(delete(im, j)) for im in kept)
                     for j in range(grid * grid)]
            best = max((j for j in range(grid * grid) if j not in order),
                       key=lambda j: (count[j], -j))
            for j in range(grid * grid):
                importance[j] += count[j] / t
            kept = [delete(im, best) for im in kept if not wrong(delete(im, best))]
            order.append(best)
            counts.append(count)
    return order, counts, importance


def assert_same(a, b):
    assert a.order == b.order
    assert torch.equal(a.counts, b.counts)
    assert torch.equal(a.importance, b.importance)
    assert (a.remaining, a.complete, a.n_start, a.n_dropped) == (
        b.remaining, b.complete, b.n_start, b.n_dropped)


def test_planted_region_is_deleted_first():
    """The region that alone carries the class is the first most-misleading region."""
    weights = [0.0] * 16
    weights[6] = 1.0
    model = region_model(weights, threshold=2.5, size=8, grid=4)
    x = 0.3 * torch.rand(12, 1, 8, 8)
    x[:, :, 2:4, 4:6] = 1.0  # region 6 = row 1, column 2
    result = greedy_occlusion(model, x, 1, grid=4)
    assert result.order == [6] and result.complete and result.remaining == [0]
    expected = torch.zeros(4, 4, dtype=torch.float64)
    expected[1, 2] = 12
    assert torch.equal(result.importance, expected)


def test_hand_computed_counts_and_one_over_t_weights():
    """counts, order and importance = sum_t counts[t] / t match a case worked out by hand."""
    model = region_model([3.0, 2.0, 1.0, 0.0], threshold=2.5)
    x = region_images([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 1, 1, 1]])
    for method in ("auto", "brute"):
        result = greedy_occlusion(model, x, 1, grid=2, method=method)
        assert (result.n_start, result.n_dropped) == (4, 1)  # image 4 is class 0 at the start
        assert torch.equal(result.counts, torch.tensor([[2, 1, 1, 0], [0, 2, 2, 0]]))
        assert result.order == [0, 1]  # step 2: regions 1 and 2 tie, the lower index wins
        assert result.remaining == [2, 0] and result.complete
        assert torch.equal(result.importance,
                           torch.tensor([[2 + 0 / 2, 1 + 2 / 2], [1 + 2 / 2, 0.0]]).double())


def test_ties_go_to_the_lowest_region():
    """Two regions that each flip every image: the lower index is deleted."""
    weights = [0.0] * 16
    weights[5] = weights[9] = 1.0
    model = region_model(weights, threshold=6.0, size=8, grid=4)
    x = 0.05 * torch.rand(5, 1, 8, 8)
    x[:, :, 2:4, 2:4] = x[:, :, 4:6, 2:4] = 1.0  # regions 5 and 9
    result = greedy_occlusion(model, x, 1, grid=4)
    assert result.order == [5] and result.counts[0, 5] == result.counts[0, 9] == 5


def test_matches_an_independent_slow_loop(mnist):
    """Order, counts and importance equal a one-image-at-a-time float64 loop (grid 7)."""
    model = models.tiny_cnn(3)
    x = mnist.images[mnist.labels == 6][:12]
    target = int(model(x).argmax(1).mode().values)
    order, counts, importance = slow_greedy(model, x, target, grid=7)
    assert len(order) > 3 and sum(map(sum, counts)) > 10  # a case with something to check
    for method in ("fast", "brute"):
        result = greedy_occlusion(model, x, target, grid=7, method=method)
        assert result.order == order
        assert result.counts.tolist() == counts
        assert torch.allclose(result.importance.flatten(),
                              torch.tensor(importance, dtype=torch.float64), rtol=1e-12, atol=0)
        steps = torch.arange(1, len(result.counts) + 1, dtype=torch.float64)[:, None]
        assert torch.allclose(result.importance.flatten(),
                              (result.counts / steps).sum(0), rtol=1e-12, atol=0)


@pytest.mark.parametrize("method", ["fast", "brute"])
def test_stops_incomplete_when_the_blank_image_keeps_the_class(mnist, method):
    """A class that even the blank image belongs to: every region is deleted, complete=False."""
    model = models.tiny_cnn(1)
    with torch.no_grad():
        model.fc.bias[4] += 100.0
    result = greedy_occlusion(model, mnist.images[:6], 4, grid=4, method=method)
    assert not result.complete and result.n_start == 6
    assert result.order == list(range(16))  # all counts 0: always the lowest remaining index
    assert result.remaining == [6] * 16 and int(result.counts.sum()) == 0


@pytest.mark.parametrize("grid", [14, 7, 4, 28])
def test_fast_equals_brute_on_a_random_tiny_cnn(mnist, grid):
    """The windowed fast path gives the brute-force result exactly, for every region size."""
    model = models.tiny_cnn(3)
    x = mnist.images[mnist.labels == 6][:20 if grid != 28 else 3]
    target = int(model(x).argmax(1).mode().values)
    fast = greedy_occlusion(model, x, target, grid=grid, method="fast")
    assert len(fast.order) > 1 and fast.n_start > 0
    assert_same(fast, greedy_occlusion(model, x, target, grid=grid, method="brute"))
    if grid == 7:  # float32 screening + float64 near ties == float64 throughout
        assert_same(fast, greedy_occlusion(model, x, target, grid=grid, method="fast",
                                           dtype=torch.float64))


@pytest.mark.parametrize("k1, p1, k2, p2, shared, channels, size, grid", [
    (3, 1, 5, 2, True, 1, 28, 7), (5, 0, 3, 0, False, 1, 28, 4), (4, 1, 2, 0, True, 1, 28, 7),
    (5, 2, 3, 1, True, 3, 32, 8), (5, 2, 3, 1, False, 1, 30, 6)])
def test_fast_equals_brute_on_other_tiny_cnn_geometries(mnist, k1, p1, k2, p2, shared,
                                                        channels, size, grid):
    """Other kernels, paddings (odd map sizes included), channels and region sizes."""
    s2 = ((size + 2 * p1 - k1 + 1) // 2 + 2 * p2 - k2 + 1) // 2
    conv2 = SharedConv2d(3, 2, k2, padding=p2) if shared else nn.Conv2d(3, 6, k2, padding=p2)
    model = nn.Sequential(Normalize((0.2,) * channels, (0.3,) * channels),
                          nn.Conv2d(channels, 3, k1, padding=p1), nn.ReLU(), nn.MaxPool2d(2),
                          conv2, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(6 * s2 * s2, 10))
    x = F.interpolate(mnist.images[:20], size=size).repeat(1, channels, 1, 1)
    target = int(model(x).argmax(1).mode().values)
    fast = greedy_occlusion(model, x, target, grid=grid, method="fast")
    assert_same(fast, greedy_occlusion(model, x, target, grid=grid, method="brute"))


@pytest.mark.skipif(not CHECKPOINT.exists(), reason=f"{CHECKPOINT} is missing (it is written "
                    "by `python -m xai_helpers.train tiny_cnn_mnist`)")
@pytest.mark.parametrize("grid", [14, 7])
def test_fast_equals_brute_on_the_pretrained_model(mnist, grid):
    """Identical results on the committed paper-1 model and real digits of one class."""
    model = models.load_pretrained("tiny_cnn_mnist")
    x = mnist.images[mnist.labels == 2][:20]
    fast = greedy_occlusion(model, x, 2, grid=grid, method="fast")
    assert fast.n_start >= 18 and fast.order
    assert_same(fast, greedy_occlusion(model, x, 2, grid=grid, method="brute"))


def test_near_ties_are_decided_in_float64():
    """A float32 margin below the tolerance is decided by the exact (float64) scores."""
    scores = torch.tensor([[1.0, 1.0 + 1e-5, -3.0], [1.0, 2.0, 0.0]])
    wrong = occlusion._misclassified(scores, 0, lambda rows: torch.tensor([[1.0, 0.5, 0.0]]),
                                     torch.arange(2))
    assert wrong.tolist() == [False, True]


def test_auto_uses_the_fast_path_for_the_tiny_cnn(mnist, monkeypatch):
    """method='auto' never calls the brute-force evaluation on a tiny CNN."""
    def no_brute(*args, **kwargs):
        raise AssertionError("brute force was used")

    monkeypatch.setattr(occlusion, "_brute_flips", no_brute)
    result = greedy_occlusion(models.tiny_cnn(2), mnist.images[:5], 0, grid=7)
    assert result.grid == 7 and result.importance.shape == (7, 7)


def test_bad_arguments_raise_clear_errors(mnist):
    """Grids that do not divide the image, unknown methods, non-tiny models for 'fast'."""
    model, x = models.tiny_cnn(1), mnist.images[:2]
    for grid in (5, 0, 3):
        with pytest.raises(ValueError, match="does not split 28 x 28"):
            greedy_occlusion(model, x, 0, grid=grid)
    with pytest.raises(ValueError, match="method must be"):
        greedy_occlusion(model, x, 0, method="quick")
    with pytest.raises(ValueError, match="tiny CNN structure"):
        greedy_occlusion(region_model([1.0] * 4, 0.5), torch.rand(2, 1, 4, 4), 1, grid=2,
                         method="fast")
    with pytest.raises(ValueError, match="not a class"):
        greedy_occlusion(model, x, 10, grid=7)
    with pytest.raises(ValueError, match="N x C x H x W"):
        greedy_occlusion(model, x[0], 0)


def test_no_side_effects_on_model_and_inputs(mnist):
    """The caller's model keeps its mode and dtype; the inputs are not modified."""
    model = models.tiny_cnn(1).train()
    x = mnist.images[:4].clone()
    greedy_occlusion(model, x, 1, grid=4)
    single_pass_occlusion(model, x, 1, grid=4)
    assert model.training and model.fc.weight.dtype == torch.float32
    assert torch.equal(x, mnist.images[:4])


def test_single_pass_occlusion_is_the_mean_probability_drop():
    """captum's Occlusion per region = mean drop of p(target) when that region alone is 0."""
    weights = [0.0] * 16
    weights[6], weights[1] = 1.0, 0.3
    model = region_model(weights, threshold=2.0, size=8, grid=4)
    x = torch.rand(7, 1, 8, 8)
    drop = single_pass_occlusion(model, x, 1, grid=4)
    before = torch.softmax(model(x), 1)[:, 1]
    expected = torch.zeros(16)
    for j in range(16):
        deleted = x.clone()
        deleted[:, :, j // 4 * 2:j // 4 * 2 + 2, j % 4 * 2:j % 4 * 2 + 2] = 0
        expected[j] = (before - torch.softmax(model(deleted), 1)[:, 1]).mean()
    assert drop.shape == (4, 4) and int(drop.argmax()) == 6
    assert torch.allclose(drop.flatten(), expected.detach(), atol=1e-6)


def test_delete_regions_blanks_exactly_the_listed_regions():
    from xai_helpers.occlusion import delete_regions

    image = torch.ones(1, 8, 8)
    out = delete_regions(image, [0, 5], grid=4)  # 2x2 regions: (0, 0) and (1, 1)
    assert out.sum() == 64 - 8
    assert (out[0, :2, :2] == 0).all() and (out[0, 2:4, 2:4] == 0).all()
    assert (out[0, :2, 2:] == 1).all() and image.sum() == 64
