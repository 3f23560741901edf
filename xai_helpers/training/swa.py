"""Stochastic weight averaging (Izmailov, Podoprikhin, Garipov, Vetrov and Wilson 2018), ours,
not in the papers: a way to get more out of a fixed parameter budget.

A trained network is trained on at a constant learning rate; the weights at the end of each
epoch wander around a wide, flat region of the loss, and their average lies nearer its centre
than any one of them (Izmailov et al., Eq. 1: ``w_SWA = (w_SWA * n + w) / (n + 1)``). Batch
normalisation's running statistics belong to no one set of weights, so they are re-estimated
by one pass over the training images with the averaged weights (their section 3.2). The
averaged network has the same layers and parameters as the original: a GCM stays a GCM.

*Cyclic* SWA (their section 3.2 with a cyclical learning rate) averages the weights at the ends
of learning-rate cycles instead of epochs: a recipe with ``average=(A, B, ...)`` enters the
committed checkpoints A, B, ... (each the end of one cosine cycle, the next started from the
last) into the average before its own epochs; with ``epochs=0`` the model is their mean.

Thin wrappers over :mod:`torch.optim.swa_utils`; :func:`train.fit` calls them when a recipe
has ``swa=True`` (and usually ``init=`` a trained checkpoint, ``schedule="none"``) or
``average=``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim import swa_utils

__all__ = ["averaged", "finish"]


def averaged(model: nn.Module) -> swa_utils.AveragedModel:
    """An equal-weight running average of ``model``'s parameters (Izmailov et al., Eq. 1);
    call ``update_parameters(model)`` at the end of every epoch."""
    return swa_utils.AveragedModel(model)


@torch.no_grad()
def finish(model: nn.Module, average: swa_utils.AveragedModel,
           batches: Iterable[torch.Tensor]) -> nn.Module:
    """Copy the averaged parameters into ``model`` and re-estimate its BN statistics on
    ``batches`` (training images as the model saw them in training); returns ``model``."""
    if int(average.n_averaged) == 0:
        raise ValueError("no weights were averaged: train at least one epoch first")
    model.load_state_dict(average.module.state_dict())  # BN statistics: reset and re-estimated
    swa_utils.update_bn(batches, model)
    return model
