"""Reading a model's intermediate layers safely: hooks that are always removed.

Every explanation method that needs a layer's activations or gradients goes through
:func:`capture`, a context manager that registers forward hooks on the named layers, yields
what they record, and removes every handle in ``finally`` (also when the forward pass raises),
so calling a method in a loop never leaves hooks behind. Gradients come from a tensor hook on
the layer's output (STYLE.md, habit 4).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["get_layer", "capture"]


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` in ``model.named_modules()``, with a clear error."""
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        names = [n for n in modules if n]
        raise ValueError(f"model {type(model).__name__} has no layer {name!r}; its layers are: "
                         f"{', '.join(names)}")
    return modules[name]


@contextmanager
def capture(model: nn.Module, layers: Sequence[str]) -> Iterator[dict[str, dict]]:
    """Record the output (``"act"``) and, after ``backward``, its gradient (``"grad"``) of each
    named layer during the forward passes run inside the ``with`` block.

    >>> with capture(model, ["conv2"]) as store:
    ...     model(x)[:, 3].sum().backward()
    >>> store["conv2"]["act"].shape, store["conv2"]["grad"].shape
    """
    store: dict[str, dict] = {name: {} for name in layers}
    handles = []

    def hook_for(name: str):
        def keep(module, args, out):
            store[name]["act"] = out
            if isinstance(out, torch.Tensor) and out.requires_grad:
                out.register_hook(lambda grad: store[name].__setitem__("grad", grad))
        return keep

    try:
        for name in layers:
            handles.append(get_layer(model, name).register_forward_hook(hook_for(name)))
        yield store
    finally:
        for handle in handles:
            handle.remove()
