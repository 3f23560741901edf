"""Greedy occlusion: the most-misleading regions of a class (paper 1, seeds 000/001, section 4).

Suzuki, Meng, Yamazaki (Ritsumeikan Univ.), "Toward Visualization of Inference Process in Deep
Learning" (深層学習における推論過程の可視化の検討); seeds 000/001, section 4, steps 1-6
(``papers/README.md``, "Paper 1"). The image is cut into ``grid x grid`` regions (the paper:
14 x 14 regions of 2 x 2 pixels); regions are deleted greedily, always the one that makes the
most images misclassified (the most-misleading region, 最誤領域), and the counts are summed with
the weight 1 / (number of deleted regions).

Two implementations give identical results. ``"brute"`` runs the whole model on every
(image, region) pair. ``"fast"`` uses the structure of paper 1's tiny CNN
(:func:`xai_helpers.models.tiny_cnn`): deleting a region changes only a small window of each
feature map (for 2 x 2 regions: 8 x 8 of conv1, 4 x 4 of pool1, 6 x 6 of conv2, 3 x 3 of
pool2, windows aligned to the pooling cells), so only that window is recomputed from cached
maps of the current images, and the logit change is the Affine weights times the changed pool2
features. Pairs whose region is already blank are not run (the image is unchanged).

Exactness: "misclassified" is decided in ``dtype`` (float32), but a near tie (a margin between
the target's logit and the best other logit below ``1e-3 * (1 + max |logit|)``) is decided
again by a float64 copy of the whole model. Float32 errors are ~1e-6 of ``1 + max |logit|``
(at most 9e-7 measured), a thousandth of that margin, so both methods take the float64
model's decisions and agree exactly although they sum in different orders (float32 alone
guarantees nothing for margins near 1e-6). On MNIST about 0.3% of the evaluations are
re-decided; float64 throughout is ~2x slower on the CPU.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .models import Normalize, SharedConv2d

__all__ = ["OcclusionResult", "greedy_occlusion", "single_pass_occlusion", "delete_regions"]

NEAR_TIE = 1e-3  # relative margin below which the float64 model decides


@dataclass(frozen=True)
class OcclusionResult:
    """Result of :func:`greedy_occlusion` (regions are numbered row-major, ``a * grid + b``)."""

    importance: torch.Tensor  # (grid, grid) float64: sum_t counts[t - 1] / t (step 6)
    order: list[int]  # the region deleted at each step (the most-misleading one)
    remaining: list[int]  # images still classified as target after each step
    counts: torch.Tensor  # (steps, grid * grid) int64: images misclassified per candidate
    complete: bool  # True when every image ended misclassified (step 5 reached)
    n_start: int  # images classified as target at the start (the ones used)
    n_dropped: int  # images dropped before step 1 (already misclassified)
    grid: int


def _region_size(shape: torch.Size, grid: int) -> tuple[int, int]:
    if len(shape) != 4:
        raise ValueError(f"inputs must be N x C x H x W, got shape {tuple(shape)}")
    h, w = shape[2], shape[3]
    if not isinstance(grid, int) or grid < 1 or h % grid or w % grid:
        valid = [g for g in range(1, min(h, w) + 1) if h % g == 0 and w % g == 0]
        raise ValueError(f"grid={grid!r} does not split {h} x {w} images into equal regions; "
                         f"use one of {valid}")
    return h // grid, w // grid


def _as_int(target) -> int:
    if isinstance(target, (bool, float)) or (isinstance(target, torch.Tensor)
                                              and target.is_floating_point()):
        raise ValueError(f"target must be a class index (int), got {target!r}")
    if isinstance(target, torch.Tensor):
        if target.numel() == 0 or not bool((target == target.flatten()[0]).all()):
            raise ValueError("greedy occlusion explains one class: give target as an int")
        target = target.flatten()[0].item()
    return int(target)


def _misclassified(scores, target, exact, *pairs):
    """``argmax(scores) != target``; near ties re-decided by ``exact`` (float64 scores) on
    those rows of ``pairs`` (the image and region index of every row)."""
    wrong = scores.argmax(1) != target
    others = scores.clone()
    others[:, target] = -torch.inf
    margin = scores[:, target] - others.amax(1)
    unsure = (margin.abs() <= NEAR_TIE * (1 + scores.abs().amax(1))).nonzero().flatten()
    if len(unsure):
        wrong[unsure] = exact(*(p[unsure] for p in pairs)).argmax(1) != target
    return wrong


def _pool(x):
    """2x2 max-pooling, equal to ``F.max_pool2d(x, 2)`` and ~10x faster on the CPU."""
    x = x[..., :x.shape[-2] // 2 * 2, :x.shape[-1] // 2 * 2]
    return torch.maximum(torch.maximum(x[..., ::2, ::2], x[..., 1::2, ::2]),
                         torch.maximum(x[..., ::2, 1::2], x[..., 1::2, 1::2]))


# --------------------------------------------------------------------------- fast (tiny CNN)

def _tiny_cnn_parts(net: nn.Module) -> list[nn.Module]:
    """The 9 layers of a :func:`~xai_helpers.models.tiny_cnn`; ValueError saying what differs."""
    kinds = (Normalize, nn.Conv2d, nn.ReLU, nn.MaxPool2d, (SharedConv2d, nn.Conv2d), nn.ReLU,
             nn.MaxPool2d, nn.Flatten, nn.Linear)
    layers = list(net.children()) if isinstance(net, nn.Sequential) else []
    if len(layers) != len(kinds) or not all(map(isinstance, layers, kinds)):
        raise ValueError("method='fast' needs the tiny CNN structure of paper 1 (normalize, "
                         "conv, relu, 2x2 max-pool, conv, relu, 2x2 max-pool, flatten, "
                         f"linear), got {[type(m).__name__ for m in layers] or type(net)}")
    for conv in (layers[1], layers[4]):
        if isinstance(conv, nn.Conv2d) and (
                conv.stride != (1, 1) or conv.dilation != (1, 1) or isinstance(conv.padding, str)
                or conv.padding_mode != "zeros" or (conv is layers[1] and conv.groups != 1)):
            raise ValueError(f"method='fast' needs stride-1 zero-padded convolutions: {conv}")
    for pool in (layers[3], layers[6]):
        if (pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode) not in (
                (2, 2, 0, 1, False), ((2, 2), (2, 2), 0, 1, False)):
            raise ValueError(f"method='fast' needs plain 2x2 max-pooling: {pool}")
    return layers


def _axis_plan(size: int, r: int, k1: int, p1: int, k2: int, p2: int) -> dict:
    """Along one axis, ``{level: (start of every region's window, length, map size)}``.

    Region ``a`` covers pixels ``r*a .. r*a+r-1``; its changed pixel window starts at
    ``s <= r*a`` with ``s = 4m + 2*d2 + d1`` (``d = k - 1 - p``), so that the changed conv1
    and conv2 windows start where 2x2 pooling cells start, and one length serves all regions.
    Levels: ``z`` (normalised image, changed window plus conv1's reach), ``pool1`` (changed
    cells), ``ctx`` (the pool1 context of conv2) and ``pool2`` (changed cells). Windows may
    reach outside the map: the caches are zero-padded like the convolutions.
    """
    d1, d2 = k1 - 1 - p1, k2 - 1 - p2
    starts = [r * a - (r * a - 2 * d2 - d1) % 4 for a in range(size // r)]
    length = max(r * a + r - s for a, s in enumerate(starts))
    while (length + k1 - 1) % 2 or ((length + k1 - 1) // 2 + k2 - 1) % 2:
        length += 1
    n_pool1 = (length + k1 - 1) // 2
    pool1 = [(s - d1) // 2 for s in starts]
    s2 = (size + 2 * p1 - k1 + 1) // 2
    return {"z": ([s - (k1 - 1) for s in starts], length + 2 * (k1 - 1), size),
            "pool1": (pool1, n_pool1, s2),
            "ctx": ([c - (k2 - 1) for c in pool1], n_pool1 + 2 * (k2 - 1), s2),
            "pool2": ([(c - d2) // 2 for c in pool1], (n_pool1 + k2 - 1) // 2,
                      (s2 + 2 * p2 - k2 + 1) // 2),
            "region": [r * a - s + k1 - 1 for a, s in enumerate(starts)]}


class _FastTinyCNN:
    """Windowed re-evaluation of a tiny CNN (module docstring); built once per call."""

    def __init__(self, net: nn.Module, shape: torch.Size, grid: int, fill: float):
        self.norm, conv1, _, _, conv2, _, _, _, self.fc = _tiny_cnn_parts(net)
        if isinstance(conv2, SharedConv2d):
            conv2 = conv2.as_conv2d().to(conv1.weight)
        self.conv1, self.conv2, self.fill = conv1, conv2, fill
        device = conv1.weight.device
        self.zfill = self.norm(torch.full((1, *shape[1:]), fill, dtype=conv1.weight.dtype,
                                          device=device))[:, :, :1, :1]
        self.grid_shape = (grid, shape[2] // grid, grid, shape[3] // grid)
        plans = [_axis_plan(shape[axis], shape[axis] // grid, conv1.kernel_size[i],
                            conv1.padding[i], conv2.kernel_size[i], conv2.padding[i])
                 for i, axis in enumerate((2, 3))]
        maps, classes = conv2.out_channels, self.fc.out_features
        if self.fc.in_features != maps * plans[0]["pool2"][2] * plans[1]["pool2"][2]:
            raise ValueError(f"{self.fc} does not fit {shape[2]} x {shape[3]} images")
        along = (torch.arange(grid * grid, device=device) // grid,
                 torch.arange(grid * grid, device=device) % grid)  # region -> row, column

        def positions(axis, starts, length):  # R x length: window positions of every region
            return (torch.tensor(starts, device=device)[along[axis], None]
                    + torch.arange(length, device=device))

        self.pads, self.take = {}, {}
        for level, channels in (("z", shape[1]), ("ctx", conv1.out_channels), ("pool2", maps)):
            (rs, rl, rn), (cs, cl, cn) = plans[0][level], plans[1][level]
            top, left = max(0, -min(rs)), max(0, -min(cs))
            bottom, right = max(0, max(rs) + rl - rn), max(0, max(cs) + cl - cn)
            self.pads[level] = (left, right, top, bottom)
            height, width = rn + top + bottom, cn + left + right
            rows, cols = positions(0, rs, rl) + top, positions(1, cs, cl) + left
            plane = torch.arange(channels, device=device)[:, None, None] * height * width
            index = plane + (rows[:, :, None] * width + cols[:, None, :])[:, None]
            self.take[level] = (index.flatten(1), channels * height * width, (channels, rl, cl))
        inside = [(p >= 0) & (p < plans[i]["pool1"][2]) for i, p in enumerate(
            positions(i, *plans[i]["pool1"][:2]) for i in (0, 1))]
        self.inside = (inside[0][:, :, None] & inside[1][:, None, :])[:, None]  # R x 1 x l x l
        region = [(p >= 0) & (p < self.grid_shape[2 * i + 1]) for i, p in enumerate(
            positions(i, [-o for o in plans[i]["region"]], plans[i]["z"][1]) for i in (0, 1))]
        self.region = (region[0][:, :, None] & region[1][:, None, :])[:, None]  # in z window
        self.offset = (conv2.kernel_size[0] - 1, conv2.kernel_size[1] - 1,
                       plans[0]["pool1"][1], plans[1]["pool1"][1])
        weight = F.pad(self.fc.weight.view(classes, maps, plans[0]["pool2"][2],
                                           plans[1]["pool2"][2]), self.pads["pool2"])
        index, _, _ = self.take["pool2"]
        self.fc_window = weight.flatten(1)[:, index].permute(1, 0, 2)  # R x K x (maps*l*l)

    def _gather(self, maps, level, im, rg):
        """(B, C, l, l): the ``level`` window of region ``rg[b]`` in image ``im[b]``."""
        index, per_image, window = self.take[level]
        return torch.take(maps, im[:, None] * per_image + index[rg]).view(len(im), *window)

    def flips(self, x, deleted, target, batch_size, exact):
        """(n, R) bool like :func:`_brute_flips`, recomputing only the changed windows."""
        z = self.norm(x)
        pool1 = F.relu(_pool(self.conv1(z)))
        pool2 = F.relu(_pool(self.conv2(pool1)))
        logits = self.fc(pool2.flatten(1))  # the caches of the current (partly deleted) images
        z, pool1, pool2 = (F.pad(t, self.pads[k]).contiguous() for t, k in
                           ((z, "z"), (pool1, "ctx"), (pool2, "pool2")))
        n, c = x.shape[:2]
        blank = (x == self.fill).view(n, c, *self.grid_shape).all(5).all(3).all(1).flatten(1)
        img, reg = (~blank & ~deleted).nonzero(as_tuple=True)  # blank region: image unchanged
        flips = torch.zeros(n, len(deleted), dtype=torch.bool, device=x.device)
        oh, ow, lh, lw = self.offset
        w1, b1, w2, b2 = self.conv1.weight, self.conv1.bias, self.conv2.weight, self.conv2.bias
        for i in range(0, len(img), batch_size):
            im, rg = img[i:i + batch_size], reg[i:i + batch_size]
            window = torch.where(self.region[rg], self.zfill, self._gather(z, "z", im, rg))
            new1 = F.relu(_pool(F.conv2d(window, w1, b1)))
            context = self._gather(pool1, "ctx", im, rg)  # conv2 pads with zeros: so do we
            context[:, :, oh:oh + lh, ow:ow + lw] = torch.where(self.inside[rg], new1, 0.0)
            new2 = F.relu(_pool(F.conv2d(context, w2, b2, groups=self.conv2.groups)))
            delta = (new2 - self._gather(pool2, "pool2", im, rg)).flatten(1)
            scores = logits[im] + (self.fc_window[rg] @ delta[:, :, None])[:, :, 0]
            flips[im, rg] = _misclassified(scores, target, exact, im, rg)
        return flips


def _brute_flips(net, x, deleted, target, batch_size, exact, masks, fill):
    """(n, R) bool: image i is misclassified once region j is deleted too (whole model)."""
    n, regions = len(x), (~deleted).nonzero().flatten()
    img = torch.arange(n, device=x.device).repeat(len(regions))
    reg = regions.repeat_interleave(n)
    flips = torch.zeros(n, len(deleted), dtype=torch.bool, device=x.device)
    for i in range(0, len(img), batch_size):
        im, rg = img[i:i + batch_size], reg[i:i + batch_size]
        scores = net(torch.where(masks[rg], fill, x[im]))
        flips[im, rg] = _misclassified(scores, target, exact, im, rg)
    return flips


# --------------------------------------------------------------------------- public functions

def greedy_occlusion(model: nn.Module, inputs: torch.Tensor, target, *, grid: int = 14,
                     fill: float = 0.0, method: str = "auto", batch_size: int = 4096,
                     dtype: torch.dtype = torch.float32) -> OcclusionResult:
    """Importance of every region for class ``target`` by greedy deletion of the
    most-misleading region (paper 1, seeds 000/001, section 4, steps 1-6).

    Step 0: only the images the model classifies as ``target`` are used (``n_dropped`` the
    others). Step t = 1, 2, ...: every region not yet deleted is deleted in turn (pixels set
    to ``fill``, on top of the regions deleted so far) in every image still classified as
    ``target``, and ``counts[t-1, j]`` records how many become misclassified (argmax !=
    target) (steps 2-3). The region with the largest count (ties: the lowest index) is the
    most-misleading region: it is deleted for good, and the images it misclassified are
    dropped (step 4); a step deletes a region even when every count is 0. Repeat until no
    image is left (``complete=True``) or no region is (``complete=False``: e.g. a class that
    the blank image still belongs to) (step 5). Step 6: ``importance = sum_t counts[t-1] /
    t``; "1 / (number of deleted regions)" is read as 1/t because every image evaluated at
    step t has t regions deleted (t - 1 earlier ones plus the candidate).

    Parameters
    ----------
    model : classifier (see the package docstring); not modified (copies run)
    inputs : (N, C, H, W) images of one class in [0, 1]
    target : int, the class of the images
    grid : regions per side; must divide H and W (paper: 14, i.e. 2 x 2 pixels on MNIST)
    fill : pixel value of a deleted region (0 = MNIST background)
    method : ``"brute"`` (the whole model on every pair), ``"fast"`` (paper 1's tiny CNN
        only: recompute the changed windows; ValueError for other models) or ``"auto"``
        (fast when the model allows it, else brute). Both give identical results.
    batch_size : (image, region) pairs per batched evaluation
    dtype : arithmetic of the evaluations; near ties are always decided in float64
        (module docstring)

    Returns
    -------
    OcclusionResult, with ``importance`` (grid, grid) and ``counts`` (steps, grid * grid)
    on the CPU.
    """
    rh, rw = _region_size(inputs.shape, grid)
    if method not in ("auto", "brute", "fast"):
        raise ValueError(f"method must be 'auto', 'brute' or 'fast', not {method!r}")
    target = _as_int(target)
    param = next(model.parameters(), None)
    device = param.device if param is not None else inputs.device
    net = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
    net64 = copy.deepcopy(model).to(device=device, dtype=torch.float64).eval()
    fast = None
    if method != "brute":
        try:
            fast = _FastTinyCNN(net, inputs.shape, grid, fill)
        except ValueError:
            if method == "fast":
                raise
    n_regions = grid * grid
    masks = torch.zeros(n_regions, 1, grid, rh, grid, rw, dtype=torch.bool, device=device)
    for j in range(n_regions):
        masks[j, :, j // grid, :, j % grid] = True
    masks = masks.view(n_regions, 1, *inputs.shape[2:])
    with torch.no_grad():
        x = inputs.to(device=device, dtype=dtype)

        def exact(im, rg):  # float64 scores of image im with region rg deleted too
            return net64(torch.where(masks[rg], fill, x[im]).double())

        scores = [net(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        if scores and not 0 <= target < scores[0].shape[1]:
            raise ValueError(f"target {target} is not a class of this "
                             f"{scores[0].shape[1]}-class model")
        if scores:
            x = x[~_misclassified(torch.cat(scores), target, lambda im: net64(x[im].double()),
                                  torch.arange(len(x), device=device))]
        n_start, deleted = len(x), torch.zeros(n_regions, dtype=torch.bool, device=device)
        order, remaining, counts = [], [], []
        while len(x) and not bool(deleted.all()):
            if fast is not None:
                flips = fast.flips(x, deleted, target, batch_size, exact)
            else:
                flips = _brute_flips(net, x, deleted, target, batch_size, exact, masks, fill)
            count = flips.sum(0)
            best = int(torch.where(deleted, -1, count).argmax())  # first maximum: lowest index
            x = torch.where(masks[best], fill, x[~flips[:, best]])
            deleted[best] = True
            order.append(best)
            remaining.append(len(x))
            counts.append(count.cpu())
    counts = torch.stack(counts) if counts else torch.zeros(0, n_regions, dtype=torch.int64)
    weights = torch.arange(1, len(counts) + 1, dtype=torch.float64)[:, None]
    importance = (counts.double() / weights).sum(0).view(grid, grid)
    return OcclusionResult(importance, order, remaining, counts, len(x) == 0, n_start,
                           len(inputs) - n_start, grid)


def single_pass_occlusion(model: nn.Module, inputs: torch.Tensor, target, *, grid: int = 14,
                          fill: float = 0.0) -> torch.Tensor:
    """(grid, grid) drop of the target's softmax probability when each region alone is
    deleted, averaged over all ``inputs``: the non-greedy baseline for paper 1 (seeds
    000/001, section 4, steps 1-6 without the greedy repetition), computed with captum's
    ``Occlusion`` (window = stride = one region, baseline ``fill``). Positive = deleting the
    region lowers the probability of ``target``.
    """
    from captum.attr import Occlusion

    rh, rw = _region_size(inputs.shape, grid)
    channels, param = inputs.shape[1], next(model.parameters(), None)
    inputs = inputs.to(param.device) if param is not None else inputs
    target = _as_int(target)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            k = model(inputs[:1]).shape[1]
            if not 0 <= target < k:
                raise ValueError(f"target {target} is out of range: the model has {k} classes "
                                 f"(0 to {k - 1})")
            attribution = Occlusion(lambda x: torch.softmax(model(x), dim=1)).attribute(
                inputs, sliding_window_shapes=(channels, rh, rw), strides=(channels, rh, rw),
                baselines=float(fill), target=target,
                perturbations_per_eval=max(1, 4096 // max(1, len(inputs))))
    finally:
        model.train(was_training)
    return attribution[:, 0, ::rh, ::rw].mean(0).detach().cpu()


def delete_regions(images: torch.Tensor, regions: list[int], grid: int,
                   fill: float = 0.0) -> torch.Tensor:
    """``images`` (..., H, W) with the given regions (row-major indices) set to ``fill``."""
    rh, rw = images.shape[-2] // grid, images.shape[-1] // grid
    mask = torch.zeros(grid * grid, dtype=torch.bool)
    mask[list(regions)] = True
    mask = mask.view(grid, grid).repeat_interleave(rh, 0).repeat_interleave(rw, 1)
    return torch.where(mask, torch.tensor(fill, dtype=images.dtype), images)
