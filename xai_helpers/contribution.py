"""Filter contribution through the last Affine layer (paper 1, seeds 000/001, section 3).

Suzuki, Meng, Yamazaki (Ritsumeikan Univ.), "Toward Visualization of Inference Process in Deep
Learning" (深層学習における推論過程の可視化の検討). The Affine layer multiplies every value of every
final feature map by its class weight and sums per class, plus the class bias. Split that sum
by feature map: the *filter contribution* (貢献度) of map k to class c for image x is

    contribution_k(x, c) = sum over positions p of W[c, k, p] * a_k(x)[p]        (section 3)

so that ``sum_k contribution_k(x, c) + b_c = logit_c(x)`` exactly. With paper 1's network the
9 final maps are indexed (conv1 filter i, conv2 filter j), map ``k = 3 i + j``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .checks import class_indices
from .hooks import capture, get_layer

__all__ = ["ContributionResult", "filter_contribution", "Tally", "rank_tally",
           "synthesize_inputs"]


@dataclass(frozen=True)
class ContributionResult:
    """Filter contributions of a batch (all tensors on the CPU).

    contributions : N x K, the contribution of each final map to the ``target`` logit
    all_classes : N x classes x K, the same for every class
    bias : (N,), the Affine bias of the target class
    logits : N x classes, the model's scores
    target : (N,), the explained class of each image
    maps : N x K x h x w, the final feature maps (the Affine layer's input)
    """

    contributions: torch.Tensor
    all_classes: torch.Tensor
    bias: torch.Tensor
    logits: torch.Tensor
    target: torch.Tensor
    maps: torch.Tensor


def _targets(target, n: int, logits: torch.Tensor) -> torch.Tensor:
    if target is None:
        return logits.argmax(1)
    return class_indices(target, n, logits.shape[1]).to(logits.device)


@torch.no_grad()
def filter_contribution(model: nn.Module, inputs: torch.Tensor,
                        target: int | torch.Tensor | None = None, *,
                        layer: str = "pool2", fc: str = "fc") -> ContributionResult:
    """Contribution of each final feature map to a class score (paper 1, section 3).

    Parameters
    ----------
    model : a network whose ``fc`` (an ``nn.Linear``) reads the flattened output of ``layer``
    inputs : N x C x H x W images in [0, 1]
    target : the class to explain (int or (N,)); ``None``: the predicted class, as the paper
    layer, fc : module names of the last feature maps and of the Affine layer
    """
    affine = get_layer(model, fc)
    if not isinstance(affine, nn.Linear):
        raise ValueError(f"layer {fc!r} is a {type(affine).__name__}, not the Affine (Linear) "
                         f"layer filter contribution splits")
    was_training = model.training
    model.eval()
    try:
        with capture(model, [layer]) as store:
            logits = model(inputs)
    finally:
        model.train(was_training)
    maps = store[layer]["act"]
    n, k = maps.shape[:2]
    if maps[0].numel() != affine.in_features:
        raise ValueError(f"{layer!r} gives {maps[0].numel()} values per image but {fc!r} reads "
                         f"{affine.in_features}; is {layer!r} the layer just before {fc!r}?")
    weight = affine.weight.view(affine.out_features, k, *maps.shape[2:])
    all_classes = torch.einsum("ckhw,nkhw->nck", weight, maps)
    target = _targets(target, n, logits).to(maps.device)
    rows = torch.arange(n, device=maps.device)
    bias = affine.bias[target] if affine.bias is not None else torch.zeros(n)
    return ContributionResult(all_classes[rows, target].cpu(), all_classes.cpu(), bias.cpu(),
                              logits.cpu(), target.cpu(), maps.cpu())


@dataclass(frozen=True)
class Tally:
    """Rank counts of the maps per class (paper 1, section 3, the tally behind Fig. 4).

    rank1, rank2 : classes x K, how often each map ranked 1st / 2nd by contribution
    mean : classes x K, mean contribution of each map over the class's images
    n_images : (classes,), images tallied per class
    first : per class, the map ranked 1st most often (framed red in Fig. 4)
    second : per class, the map ranked 2nd most often among the others (framed blue)
    dominant : per class, True when ``first`` is so dominant that the blue frame is omitted:
        its mean contribution is at least ``dominance`` times that of ``second``
    """

    rank1: torch.Tensor
    rank2: torch.Tensor
    mean: torch.Tensor
    n_images: torch.Tensor
    first: list[int]
    second: list[int]
    dominant: list[bool]
    dominance: float


def rank_tally(contributions: torch.Tensor, labels: torch.Tensor, num_classes: int = 10, *,
               dominance: float = 2.0) -> Tally:
    """Rank the K maps of every image by contribution and count ranks 1 and 2 per class.

    ``contributions`` is N x K (each image's contributions to its own class); ``labels`` (N,)
    groups the images. Ties in rank go to the lower map index.
    """
    k = contributions.shape[1]
    order = torch.sort(contributions, dim=1, descending=True, stable=True).indices
    rank1 = torch.zeros(num_classes, k, dtype=torch.long)
    rank2 = torch.zeros(num_classes, k, dtype=torch.long)
    rank1.index_put_((labels, order[:, 0]), torch.ones(len(labels), dtype=torch.long),
                     accumulate=True)
    rank2.index_put_((labels, order[:, 1]), torch.ones(len(labels), dtype=torch.long),
                     accumulate=True)
    n_images = torch.bincount(labels, minlength=num_classes)
    mean = torch.zeros(num_classes, k).index_add_(0, labels, contributions.float())
    mean /= n_images.clamp(min=1).unsqueeze(1)
    first = rank1.argmax(1).tolist()
    masked = rank2.clone()
    masked[torch.arange(num_classes), first] = -1
    second = masked.argmax(1).tolist()
    dominant = [bool(mean[c, first[c]] >= dominance * mean[c, second[c]].clamp(min=1e-12))
                for c in range(num_classes)]
    return Tally(rank1, rank2, mean, n_images, first, second, dominant, dominance)


def synthesize_inputs(model: nn.Module, target: int, *, steps: int = 400, lr: float = 0.05,
                      l2: float = 0.05, tv: float = 0.2, layer: str = "pool2",
                      fc: str = "fc", shape: tuple[int, ...] = (1, 28, 28),
                      start: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """For each final map k, an input that maximises its contribution to class ``target``.

    Paper 1's future work (section 5) asks which input each filter pair expresses best. Here:
    gradient ascent on the input x (pixels parametrised as x = sigmoid(z), so x stays in
    [0, 1]) of the regularised objective, for all K maps at once as a batch of K images,

        contribution_k(x, target) - l2 * sum_p x_p^2 - tv * sum_p |x_p - x_neighbour(p)|

    The L2 term keeps pixels off unless they pay for themselves; total variation (tv) favours
    strokes over speckle. ``start`` (C x H x W in [0, 1], e.g. the class's mean image) is the
    starting point; without it, a dark image with a little noise, from which maps that are
    zero (ReLU off) may never wake up. Returns K x C x H x W in [0, 1].
    """
    affine = get_layer(model, fc)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad(), capture(model, [layer]) as store:
        model(torch.zeros(1, *shape))
    k = store[layer]["act"].shape[1]
    if start is None:
        z = 0.1 * torch.randn(k, *shape, generator=generator) - 2.0
    else:
        z = torch.logit(start.clamp(0.02, 0.98)).expand(k, *shape).clone()
    z.requires_grad_()
    optimizer = torch.optim.Adam([z], lr=lr)
    flags = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    model.eval().requires_grad_(False)
    diagonal = torch.arange(k)
    try:
        for _ in range(steps):
            x = torch.sigmoid(z)
            with capture(model, [layer]) as store:
                model(x)
            maps = store[layer]["act"]  # k images x k maps x h x w
            weight = affine.weight[target].view(k, *maps.shape[2:])
            own = (weight * maps[diagonal, diagonal]).sum((1, 2))  # map k of image k
            variation = ((x[..., 1:, :] - x[..., :-1, :]).abs().sum((1, 2, 3))
                         + (x[..., :, 1:] - x[..., :, :-1]).abs().sum((1, 2, 3)))
            objective = own - l2 * x.pow(2).sum((1, 2, 3)) - tv * variation
            optimizer.zero_grad()
            (-objective.sum()).backward()
            optimizer.step()
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
        model.train(was_training)
    return torch.sigmoid(z).detach()
