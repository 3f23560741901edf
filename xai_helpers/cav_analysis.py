"""Paper 3's experiment around CAV: VGG-16, the points (1)-(5), Grad-CAM, feature invalidation.

Kakishita, Hattori, "Classification Reasons Visualization of Deep Neural Network using Model
Inverse Analysis" (seed 003). The contribution ratios themselves are :mod:`xai_helpers.cav`
(Eq. 1-9); this module holds what notebook 04 needs around them:

* the model: torchvision's VGG-16 with ImageNet weights (:func:`load_vgg16_imagenet`) wrapped
  with a :class:`~xai_helpers.models.Normalize` first layer and the module names of the course's
  stand-in ``vgg_cifar10`` (``features.N``, ``avgpool``, ``flatten``, ``classifier.N``);
* the points (1)-(5) of the paper's Fig. 4: the outputs of the five max-pool stages, (1) the
  deepest (:func:`pool_points`), and the channel-summed ratio maps there (:func:`point_maps`,
  section 3.3) beside Grad-CAM at (1) (:func:`grad_cam`, Fig. 6);
* feature invalidation (section 5, Fig. 8, Table 1): masks from a ratio map
  (:func:`feature_masks`), features zeroed by a forward hook that is always removed
  (:func:`invalidate`), and the top-10 before and after (:func:`top_table`);
* images: the photo matplotlib ships (:func:`sample_photo`) and the reader's own
  (:func:`load_image`), as 1 x 3 x S x S tensors in [0, 1].
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import torch
import torchvision
from torch import nn

from . import cav, config, data
from .hooks import get_layer
from .models import Normalize

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "IMAGENET_CLASSES", "VGG16_FILE", "MASK_MODES",
           "wrap_vgg", "vgg16", "load_vgg16_imagenet", "pool_points", "point_maps", "grad_cam",
           "invalidate", "feature_masks", "top_rows", "rank_of", "top_table", "load_image",
           "sample_photo"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_WEIGHTS = torchvision.models.VGG16_Weights.IMAGENET1K_V1
IMAGENET_CLASSES: tuple[str, ...] = tuple(_WEIGHTS.meta["categories"])  # shipped, no download
VGG16_FILE = Path(_WEIGHTS.url).name  # "vgg16-397923af.pth", torchvision's own file name
MASK_MODES = ("spots", "object minus spots")  # paper 3, Fig. 8(b) and 8(a)


def wrap_vgg(vgg: torchvision.models.VGG, mean: Sequence[float] = IMAGENET_MEAN,
             std: Sequence[float] = IMAGENET_STD) -> nn.Sequential:
    """torchvision's VGG as ``normalize, features, avgpool, flatten, classifier``: takes images
    in [0, 1] (the normalisation is its first layer) and shares the stand-in's module names."""
    return nn.Sequential(OrderedDict([
        ("normalize", Normalize(tuple(mean), tuple(std))), ("features", vgg.features),
        ("avgpool", vgg.avgpool), ("flatten", nn.Flatten()), ("classifier", vgg.classifier)]))


def vgg16(state_dict: dict | None = None) -> nn.Sequential:
    """The wrapped VGG-16 (1000 classes), untrained unless ``state_dict`` (torchvision's keys)
    is given; never downloads anything. In eval mode."""
    vgg = torchvision.models.vgg16(weights=None)
    if state_dict is not None:
        vgg.load_state_dict(state_dict)
    return wrap_vgg(vgg).eval()


def load_vgg16_imagenet(path: str | Path | None = None, *,
                        verbose: bool = True) -> nn.Sequential | None:
    """VGG-16 with torchvision's ``IMAGENET1K_V1`` weights (the paper's model), or ``None``.

    Looks, in order, at ``path`` (default ``data/vgg16-397923af.pth``, torchvision's file
    name), at torchvision's cache (``torch.hub.get_dir()/checkpoints``), then downloads into
    that cache unless downloads are off (``XAI_DOWNLOAD=0``, :func:`config.download_allowed`).
    When none works it prints why (unless ``verbose=False``) and returns ``None``.
    """
    local = Path(path) if path is not None else config.DATA_ROOT / VGG16_FILE
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    tried = []
    for file in dict.fromkeys([local, cached]):
        if file.exists():
            try:
                state = torch.load(file, map_location="cpu", weights_only=True)
                model = vgg16(state)
            except Exception as err:  # a truncated or foreign file: say so, try the next one
                tried.append(f"{config.show_path(file)}: unreadable ({type(err).__name__}: "
                             f"{err})"[:300])
                continue
            if verbose:
                print(f"VGG-16 with ImageNet weights (IMAGENET1K_V1) from {config.show_path(file)}")
            return model
        tried.append(f"{config.show_path(file)}: not there")
    if config.download_allowed():
        try:
            model = vgg16(_WEIGHTS.get_state_dict(progress=not config.QUIET))
            if verbose:
                print(f"VGG-16 with ImageNet weights downloaded into "
                      f"{config.show_path(cached.parent)}")
            return model
        except Exception as err:  # no network, server down: not available here
            tried.append(f"download from {_WEIGHTS.url} failed ({type(err).__name__})")
    else:
        tried.append("download: off (XAI_DOWNLOAD=0)")
    if verbose:
        print("VGG-16's ImageNet weights are not available here. Tried:\n  "
              + "\n  ".join(tried) + f"\nTo use them, put {VGG16_FILE} ({_WEIGHTS.url}) "
              f"into {config.show_path(config.DATA_ROOT)}, or run where the download works "
              f"(XAI_DOWNLOAD unset).")
    return None


def pool_points(model: nn.Module) -> list[str]:
    """The names of the model's max-pool layers, deepest first: the paper's points (1), (2), ...
    (Fig. 4; their outputs are where the ratios are shown). VGG-16: ``features.30, .23, .16,
    .9, .4``."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.MaxPool2d)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.MaxPool2d layer: no pooling stages")
    return names[::-1]


def point_maps(model: nn.Module, x: torch.Tensor, target: int,
               points: Sequence[str], method: str = "fast") -> dict[str, torch.Tensor]:
    """``{point: h x w map}`` for one image ``x`` (1 x C x H x W): the contribution ratios of
    the point's output summed over channels (paper 3, section 3.3), for class ``target``."""
    if x.ndim != 4 or len(x) != 1:
        raise ValueError(f"point_maps explains one image, 1 x C x H x W; got {tuple(x.shape)}")
    ratios = cav.explain(model, x, target, list(points), method=method)
    return {p: cav.channel_map(ratios[p])[0] for p in points}


def grad_cam(model: nn.Module, x: torch.Tensor, layer: str, target: int) -> torch.Tensor:
    """Grad-CAM (captum's ``LayerGradCam``, ReLU applied) of class ``target`` at ``layer``'s
    output for one image: an h x w map at the layer's resolution (paper 3, Fig. 6(a)/(c))."""
    from captum.attr import LayerGradCam

    was_training = model.training
    model.eval()
    try:
        cam = LayerGradCam(model, get_layer(model, layer)).attribute(
            x, target=int(target), relu_attributions=True)
    finally:
        model.train(was_training)
    return cam.detach()[0, 0].cpu()


def _check_mask(mask: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    if mask.ndim == 2:  # H x W: every image and channel
        mask = mask[None, None]
    elif mask.ndim == 3:  # N x H x W: every channel
        mask = mask[:, None]
    try:
        torch.broadcast_shapes(mask.shape, out.shape)
    except RuntimeError:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not fit the layer's output "
                         f"{tuple(out.shape)}; give H x W, N x H x W or N x C x H x W") from None
    return mask.to(out.device)


@contextmanager
def invalidate(model: nn.Module, layer: str, mask: torch.Tensor) -> Iterator[None]:
    """Zero ``layer``'s output where ``mask`` is True during the forward passes inside the
    ``with`` block (paper 3, section 5: "forcibly invalidate the features"). ``mask``: H x W
    (all images and channels), N x H x W or N x C x H x W, broadcast to the output. The hook
    is removed on exit, also when the forward pass raises."""
    mask = torch.as_tensor(mask, dtype=torch.bool)

    def zero(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        return out.masked_fill(_check_mask(mask, out), 0.0)

    handle = get_layer(model, layer).register_forward_hook(zero)
    try:
        yield
    finally:
        handle.remove()


def feature_masks(ratio_map: torch.Tensor, threshold: float, mode: str = "spots",
                  region: torch.Tensor | None = None) -> torch.Tensor:
    """An H x W bool mask from a ratio map (paper 3, Fig. 8).

    *Spots* are the cells whose ratio is positive and at least ``threshold`` (0..1) times the
    map's largest ratio. ``mode="spots"``: the spots inside ``region`` (Fig. 8(b), "the
    high-positive spots in the dog"); ``"object minus spots"``: ``region`` without them
    (Fig. 8(a)). ``region`` (H x W bool, the object) defaults to the whole map.
    """
    if mode not in MASK_MODES:
        raise ValueError(f"mode must be one of {MASK_MODES}, got {mode!r}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a fraction of the largest ratio, 0..1; got {threshold}")
    if ratio_map.ndim != 2:
        raise ValueError(f"feature_masks needs an H x W map, got {tuple(ratio_map.shape)}")
    region = torch.ones_like(ratio_map, dtype=torch.bool) if region is None else region.bool()
    top = ratio_map.max()
    spots = (ratio_map > 0) & (ratio_map >= threshold * top) if top > 0 else \
        torch.zeros_like(region)
    return spots & region if mode == "spots" else region & ~spots


def top_rows(scores: torch.Tensor, k: int = 5) -> list[tuple[int, int, float]]:
    """``[(rank, class, score), ...]`` of the ``k`` highest scores of one image (K,)."""
    values, index = scores.detach().flatten().topk(k)
    return [(r + 1, int(c), float(v)) for r, (v, c) in enumerate(zip(values, index, strict=True))]


def rank_of(scores: torch.Tensor, cls: int) -> int:
    """The rank (1 = highest) of class ``cls`` among one image's scores (K,)."""
    scores = scores.detach().flatten()
    return int((scores > scores[cls]).sum()) + 1


def top_table(before: torch.Tensor, after: torch.Tensor, classes: Sequence[str], k: int = 10,
              track: Sequence[int] = ()) -> str:
    """The top ``k`` classes before and after an invalidation side by side, with their
    pre-softmax scores (paper 3, Table 1); each class in ``track`` that falls out of a top
    ``k`` gets a row with its rank below a "..." (the paper's "20 tiger")."""
    before, after = before.detach().flatten(), after.detach().flatten()

    def cell(rank: int, c: int, s: float) -> str:
        return f"{rank:>4}  {c:>5}  {classes[c][:24]:<24}{s:>8.2f}"

    head = f"{'rank':>4}  {'class':>5}  {'item':<24}{'score':>8}"
    blank = " " * len(head)
    lines = [f"{'before':^{len(head)}} | {'after':^{len(head)}}", f"{head} | {head}"]
    lines += [f"{cell(*a)} | {cell(*b)}"
              for a, b in zip(top_rows(before, k), top_rows(after, k), strict=True)]
    extra = []
    for c in dict.fromkeys(int(c) for c in track):
        r0, r1 = rank_of(before, c), rank_of(after, c)
        if r0 > k or r1 > k:
            extra.append(f"{cell(r0, c, float(before[c])) if r0 > k else blank} | "
                         f"{cell(r1, c, float(after[c])) if r1 > k else blank}")
    if extra:
        lines += [f"{'...':>4}{blank[4:]} | {'...':>4}", *extra]
    return "\n".join(lines)


def load_image(source: str | Path | bytes | BinaryIO, size: int) -> torch.Tensor:
    """An image file (path, bytes or open file) as a 1 x 3 x size x size tensor in [0, 1]: its
    central square, resized with Pillow (bicubic; the paper resized its photo to 224 x 224);
    :func:`xai_helpers.data.read_image`."""
    return data.read_image(source, size)[None]


def sample_photo(size: int) -> torch.Tensor:
    """The portrait of Grace Hopper that matplotlib ships (``grace_hopper.jpg``), 1 x 3 x size
    x size in [0, 1]: a photo every installation has, without a download."""
    from matplotlib.cbook import get_sample_data

    with get_sample_data("grace_hopper.jpg") as file:
        return load_image(file, size)
