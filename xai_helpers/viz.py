"""Everything the notebooks draw with, in one namespace: the plotting primitives of
:mod:`xai_helpers.plots` (images, signed heat maps, grids of numbers) and the multi-panel
figures of the papers in :mod:`xai_helpers.figures` (``viz.panel_grid``,
``viz.contribution_figure``).

Conventions (both modules): every function returns the ``Figure`` it made, or draws into a
given ``ax``; images may be tensors or arrays, C x H x W, H x W or H x W x C in [0, 1]; signed
maps use a diverging colour map centred at zero; every figure has a title and every colour bar
a label.
"""

from __future__ import annotations

from .figures import *  # noqa: F403
from .figures import __all__ as _figures
from .plots import *  # noqa: F403
from .plots import __all__ as _plots

__all__ = [*_plots, *_figures]
