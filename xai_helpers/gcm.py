"""Generative Contribution Mappings (GCM), paper 2 (seed 002), and its plain-CNN baseline.

A GCM classifier does not end in a fully connected layer. An encoder-decoder turns the image
``I`` (R x C x D) into one Class Weight Map per class, and the class score is read off the
product of that map with the image:

* Eq. 1  ``CWM_j = Decoder_j(Encoder(I))``                    (R x C, signed)
* Eq. 2  ``W_j = Tile(CWM_j)``                                 (copied to D channels)
* Eq. 3  ``CCM_j = W_j * I``                                  (element-wise: the map shown)
* Eq. 4  ``score_j = mean over rows, columns, channels of CCM_j``
* Eq. 5  ``prediction = argmax_j score_j``
* Eq. 6-7 ``score_j = <W_j, I> / (R C D)``: a network whose weights ``W_j`` are generated
  for each image.

The paper's Table 3 (the layers) is lost; :data:`GCM_LAYERS` is ours, with the paper's
constraints: layers 1-10 encoder, 11-14 shared decoder, 15 one 3x3 filter per class, BN + ReLU
after every layer but the last, "3x3, c16, s1" notation, about 162,000 parameters.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .checks import Normalize, check_images

__all__ = ["GCM", "GCM_LAYERS", "GCM_SKIPS", "plain_cnn", "layer_table", "CIFAR10_MEAN"]

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)

# (name, kind, kernel, out channels, stride): "conv" = Conv2d + BN + ReLU,
# "deconv" = ConvTranspose2d (2x2, stride 2: doubles the size) + BN + ReLU.
GCM_LAYERS: tuple[tuple[str, str, int, int, int], ...] = (
    ("layer1", "conv", 3, 16, 1), ("layer2", "conv", 3, 16, 1),      # 32 x 32
    ("layer3", "conv", 3, 32, 2), ("layer4", "conv", 3, 32, 1),      # 16 x 16
    ("layer5", "conv", 3, 32, 1),
    ("layer6", "conv", 3, 60, 2), ("layer7", "conv", 3, 60, 1),      # 8 x 8
    ("layer8", "conv", 3, 60, 1), ("layer9", "conv", 3, 60, 1),
    ("layer10", "conv", 1, 60, 1),
    ("layer11", "deconv", 2, 32, 2), ("layer12", "conv", 3, 32, 1),  # shared decoder, 16 x 16
    ("layer13", "deconv", 2, 16, 2), ("layer14", "conv", 3, 16, 1),  # 32 x 32
)
N_ENCODER = 10
# GCM(mirror/shifts) in eval mode: up to this many images x views go through the network as one
# batch, more one view at a time. benchmarks/bench_gcm.py, ten views, 2-core CPU, ms per image:
# 1 image 3.8 (one batch) against 11.1 (one view at a time), 16 images 2.2 / 2.8, 32 images
# 2.4 / 2.5, 100 images 4.9 / 2.3
VIEW_BATCH = 200
# Skip connections (ours, not in the paper; no parameters): the output of a decoder layer is
# added to the encoder output of the same size, as in a U-Net, so the class maps can use the
# 32 x 32 and 16 x 16 features. Decoder layer -> encoder layer added to its output.
GCM_SKIPS: dict[str, str] = {"layer11": "layer5", "layer13": "layer2"}


def _layer_number(name: str) -> int:
    return int(name.removeprefix("layer"))


def _block(kind: str, c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    if kind == "conv":
        conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False)
    else:
        conv = nn.ConvTranspose2d(c_in, c_out, kernel, stride, bias=False)
    return nn.Sequential(OrderedDict([("conv", conv), ("bn", nn.BatchNorm2d(c_out)),
                                      ("relu", nn.ReLU())]))


def _stack(layers, c_in: int) -> tuple[nn.Sequential, int]:
    blocks = OrderedDict()
    for name, kind, kernel, c_out, stride in layers:
        blocks[name] = _block(kind, c_in, c_out, kernel, stride)
        c_in = c_out
    return nn.Sequential(blocks), c_in


class GCM(nn.Module):
    """A Generative Contribution Mappings classifier (paper 2, Fig. 3 and 5, shared decoder).

    ``model(x)`` returns the class scores (N x K); ``model.maps(x)`` returns ``(cwm, ccm,
    scores)`` with CWM N x K x H x W (Eq. 1), CCM N x K x D x H x W (Eq. 3) and the scores
    computed from the CCM (Eq. 4). ``forward`` is ``maps(x)[2]``, so the score a user reads
    off a map is exactly the one the classifier used.

    The input is the image in [0, 1] as is, not centred: the CCM is the CWM times the pixels,
    so a black pixel contributes nothing and the CCM looks like the image lit by a spotlight.
    Centring would make dark pixels negative and flip the sign of their contribution.

    ``clip_negative=True`` adds a ReLU after layer 15 (section 4.3): every CWM, and so every
    CCM, is >= 0. ``skips`` maps a decoder layer to the encoder layer whose output is added to
    its own (:data:`GCM_SKIPS`; ``{}`` gives the plain encoder-decoder of the paper's Fig. 3).
    ``residual=True`` adds a layer's input to its output where the shapes agree (ResNet-style).
    ``mirror=True`` (ours): in eval mode the CWM is the mean of the image's CWM and of its
    mirror image's CWM mirrored back, so a left-right flip of the image flips the maps and keeps
    the scores. No parameters; Eq. 2-7 unchanged (the score is still the mean of the CCM); twice
    the inference time. Training (train mode) sees one view, with random flips.
    ``shifts=s`` (ours): the views also include the image moved by ``s`` pixels up, down, left
    and right (zero fill, as the training crops), each view's CWM moved back and each pixel
    averaged over the views that saw it (:meth:`views`); five times the views.

    Memory: with autograd on, a forward pass of ``gcm_cifar10`` keeps about 1.4 MiB per 32 x 32
    image for the backward pass (364 MiB for 256 images, measured on a CPU), against nothing
    under ``torch.no_grad()``. Evaluate without gradients (as :func:`xai_helpers.scoring.predict`
    does) and compute maps in batches of a few hundred images (``methods.attribute``'s
    ``batch_size``).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3,
                 clip_negative: bool = False,
                 layers: tuple[tuple[str, str, int, int, int], ...] = GCM_LAYERS,
                 skips: dict[str, str] | None = None, residual: bool = False,
                 mirror: bool = False, shifts: int = 0):
        super().__init__()
        if not isinstance(shifts, int) or shifts < 0:
            raise ValueError(f"shifts is a number of pixels >= 0 (0: none), got {shifts!r}")
        self.num_classes, self.in_channels = num_classes, in_channels
        self.clip_negative, self.mirror, self.shifts = clip_negative, mirror, shifts
        self.skips = dict(GCM_SKIPS if skips is None else skips)
        self.encoder, c = _stack(layers[:N_ENCODER], in_channels)
        self.decoder, c = _stack(layers[N_ENCODER:], c)
        # layer 15: one 3x3 filter per class (a Conv2d with K outputs is K separate filters)
        self.layer15 = nn.Conv2d(c, num_classes, 3, padding=1)
        self.clip = nn.ReLU() if clip_negative else nn.Identity()
        # residual=True: a layer whose input and output have the same shape (3x3 or 1x1, stride
        # 1, same channels) adds its input to its output, as in a ResNet (no parameters)
        c_in = {layer[0]: in_channels if i == 0 else layers[i - 1][3]
                for i, layer in enumerate(layers)}
        self.residual = {name for name, kind, _, c_out, stride in layers
                         if residual and kind == "conv" and stride == 1 and c_in[name] == c_out}

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, clip_negative={self.clip_negative}, "
                f"skips={self.skips}, residual={sorted(self.residual, key=_layer_number)}, "
                f"mirror={self.mirror}" + (f", shifts={self.shifts}" if self.shifts else ""))

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` checked and converted as every course model's first layer does
        (:func:`xai_helpers.checks.check_images`), and of a size the two stages divide."""
        x = check_images(x, self.in_channels, dtype=next(self.parameters()).dtype)
        if x.shape[-2] % 4 or x.shape[-1] % 4:
            raise ValueError(f"GCM needs a height and width divisible by 4 (two stride-2 "
                             f"stages), got {tuple(x.shape[-2:])}")
        return x

    def cwm(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 1: the Class Weight Maps, N x K x H x W."""
        x = self._check(x)
        views = self.views()
        if len(views) == 1 or self.training:
            return self._cwm(x)
        total = count = 0
        seen = torch.ones(1, 1, *x.shape[-2:], dtype=x.dtype, device=x.device)
        inputs = (_move(x.flip(3) if flip else x, dy, dx) for flip, dy, dx in views)
        if len(x) * len(views) <= VIEW_BATCH:  # a few images: all views in one batch
            maps = self._cwm(torch.cat(list(inputs))).split(len(x))
        else:  # one view at a time (100 images on a CPU: 2.2x faster than one batch)
            maps = map(self._cwm, inputs)
        for (flip, dy, dx), m in zip(views, maps, strict=True):
            m = _move(m, -dy, -dx)  # moved back
            v = _move(_move(seen, dy, dx), -dy, -dx)  # the pixels this view saw
            total, count = total + (m.flip(3) if flip else m), count + (v.flip(3) if flip else v)
        return total / count

    def views(self) -> list[tuple[bool, int, int]]:
        """The views averaged in eval mode: ``(mirrored, rows down, columns right)``."""
        s = self.shifts
        moves = [(0, 0)] + ([(s, 0), (-s, 0), (0, s), (0, -s)] if s else [])
        return [(flip, dy, dx) for flip in ((False, True) if self.mirror else (False,))
                for dy, dx in moves]

    def _cwm(self, x: torch.Tensor) -> torch.Tensor:
        features, h = {}, x
        for name, block in self.encoder.named_children():
            h = features[name] = block(h) + h if name in self.residual else block(h)
        for name, block in self.decoder.named_children():
            h = block(h) + h if name in self.residual else block(h)
            if name in self.skips:
                h = h + features[self.skips[name]]
        return self.clip(self.layer15(h))

    def maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(cwm, ccm, scores)``: Eq. 1, Eq. 2-3 (tile and multiply), Eq. 4 (global mean)."""
        x = self._check(x)
        cwm = self.cwm(x)
        ccm = cwm.unsqueeze(2) * x.unsqueeze(1)  # Eq. 2-3: N x K x D x H x W
        scores = ccm.mean(dim=(2, 3, 4))  # Eq. 4
        return cwm, ccm, scores

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maps(x)[2]


def _move(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``x`` moved ``dy`` rows down and ``dx`` columns right, zero fill (same size)."""
    if dy == dx == 0:
        return x
    h, w = x.shape[-2:]
    p = max(abs(dy), abs(dx))
    return F.pad(x, (p, p, p, p))[..., p - dy:p - dy + h, p - dx:p - dx + w]


def plain_cnn(num_classes: int = 10, in_channels: int = 3,
              mean: tuple[float, ...] = CIFAR10_MEAN, width: int = 64) -> nn.Sequential:
    """The plain CNN of section 4.4 (Table 6 is lost; ours): GCM's encoder layout (layers 1-10)
    with ``width`` channels in the 8x8 stage, then global average pooling and one linear layer,
    so that CAM applies. The input is centred (the mean pixel subtracted, no scaling) by its
    first layer, as the paper did for the CNN alone.
    """

    layers = tuple((n, k, ks, width if c == GCM_LAYERS[5][3] else c, s)
                   for n, k, ks, c, s in GCM_LAYERS[:N_ENCODER])
    features, c = _stack(layers, in_channels)
    return nn.Sequential(OrderedDict([
        ("centre", Normalize(mean[:in_channels], (1.0,) * in_channels)),
        ("features", features),
        ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
        ("fc", nn.Linear(c, num_classes)),
    ]))


def layer_table(model: nn.Module, size: int = 32) -> list[dict]:
    """One row per conv layer: the paper's notation ("3x3, c16, s1"), output size, parameters
    (the layer's own, BN included). Our version of the lost Table 3 (GCM) / Table 6 (CNN)."""
    rows = []
    x = torch.zeros(1, getattr(model, "in_channels", 3), size, size)
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape)))
             for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d,
                                                                 nn.Linear))]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    for name, module in model.named_modules():
        if name not in shapes:
            continue
        parent = name.rsplit(".", 1)[0] if "." in name else name
        block = model.get_submodule(parent) if "." in name else module
        n_params = sum(p.numel() for p in block.parameters())
        if isinstance(module, nn.Linear):
            notation, extra = f"fully connected, c{module.out_features}", ""
        else:
            k, s = module.kernel_size[0], module.stride[0]
            kind = "deconv " if isinstance(module, nn.ConvTranspose2d) else ""
            notation = f"{kind}{k}x{k}, c{module.out_channels}, s{s}"
            extra = ", BN, ReLU" if "bn" in dict(block.named_children()) else ""
        rows.append({"layer": parent, "parameters (notation)": notation + extra,
                     "output": "x".join(map(str, shapes[name][1:])), "n_params": n_params})
    return rows
