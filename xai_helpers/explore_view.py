"""Notebook 08's figure, export and widget view over :mod:`xai_helpers.explore`.

* :func:`explanation_figure`: one image, its top-5, every map side by side in one colour
  convention (summed over colour channels, divided by its largest absolute value, 'RdBu_r' on
  [-1, 1]: red for the class, blue against, white zero), and the faithfulness measures of each
  map beside a random order's.
* :func:`export`: that figure as PNG and the numbers as CSV into a folder the reader names.
* :class:`Explorer`: the state behind the widgets (models and maps computed once and kept),
  its :meth:`Explorer.render` the pure function the widgets call, :meth:`Explorer.view` the
  controls (model, image, upload, layer, CAV layer, class among the top-5, methods,
  randomisation check, export).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

import ipywidgets as ipw
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from . import data, explore, methods, widgets
from .figures import panel_grid, panel_grid_figsize

__all__ = ["explanation_figure", "export", "Explorer", "SLOW", "PREVIEW_SIZE"]

SLOW = ("integrated_gradients", "occlusion")  # many passes per map: left out of a first look
PREVIEW_SIZE = 128  # images at least this large get a first look before the complete figure


def _titles(result: explore.Explanation, i: int) -> list[str]:
    floor = result.measures.get("random", {})
    titles = []
    for name in result.maps:
        m = result.measures.get(name, {})
        line = methods.METHODS[name].title
        if "deletion" in m:
            line += f"\ndel {m['deletion'][i]:.2f} ins {m['insertion'][i]:.2f}"
        if "randomisation" in m:
            line += f"\nrand. rho {m['randomisation'][i]:.2f}"
        titles.append(line)
    if "deletion" in floor:
        titles.append(f"random order\ndel {floor['deletion'][i]:.2f} "
                      f"ins {floor['insertion'][i]:.2f}")
    return titles


def explanation_figure(image: torch.Tensor, result: explore.Explanation, i: int,
                       classes: Sequence[str], *, title: str = "") -> Figure:
    """Image ``i`` of ``result``: the image, then every map in one colour convention (module
    docstring), each titled with its deletion / insertion areas (and randomisation
    correlation) for this image, then the random order's areas (the floor); below, the top-5
    classes and a bar chart of the measures against the random order."""
    target = int(result.target[i])
    probs = torch.softmax(result.scores[i], 0)
    cells = [("image", image)] + [("signed", m[i].sum(0)) for m in result.maps.values()]
    col_titles = [f"image {i}\nclass: {classes[target]}"] + _titles(result, i)[:len(cells) - 1]
    width, height = panel_grid_figsize(1, len(cells), size=1.6)
    fig = plt.figure(layout="constrained", figsize=(max(width, 8.0), height + 2.2))
    top, bottom = fig.subfigures(2, 1, height_ratios=[height, 2.2])
    panel_grid([cells], col_titles=col_titles, size=1.6, fig=top,
               title=title or f"Every map of the series for '{classes[target]}' (red: for "
                              f"the class, blue: against)")
    ax_top, ax_bars = bottom.subplots(1, 2, width_ratios=[1, 2.2])
    top5 = result.top5[i].tolist()
    ax_top.barh(range(len(top5))[::-1], [float(probs[c]) for c in top5],
                color=["C3" if c == target else "C7" for c in top5])
    ax_top.set_yticks(range(len(top5))[::-1], [classes[c][:18] for c in top5])
    ax_top.set_xlabel("softmax probability")
    ax_top.set_title("top-5 (red: explained)")
    _measure_bars(ax_bars, result, i)
    if result.skipped:
        names = ", ".join(methods.METHODS[n].title for n in sorted(result.skipped))
        bottom.supxlabel(f"Not applicable to this model: {names} (the reasons: "
                         f"explanation.skipped)", fontsize=8)
    return fig


def _measure_bars(ax, result: explore.Explanation, i: int) -> None:
    names = list(result.maps)
    floor = result.measures.get("random", {})
    if not names or "deletion" not in floor:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no measures (curves=False)", ha="center", va="center")
        return
    x = np.arange(len(names))
    for offset, measure, colour in ((-0.2, "deletion", "C0"), (0.2, "insertion", "C1")):
        values = [float(result.measures[n][measure][i]) for n in names]
        ax.bar(x + offset, values, 0.4, color=colour,
               label=f"{measure} ({'lower' if measure == 'deletion' else 'higher'} = better)")
        ax.axhline(float(floor[measure][i]), color=colour, ls="--", lw=1,
                   label=f"random order's {measure}")
    ax.set_xticks(x, [methods.METHODS[n].title for n in names], rotation=30, ha="right")
    ax.set_ylabel("area under the curve")
    ax.set_ylim(0, 1)
    ax.set_title("this image: each map's curves against a random order")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def export(fig: Figure, result: explore.Explanation, classes: Sequence[str],
           folder: str | Path, stem: str = "explanation", *,
           overwrite: bool = False) -> list[Path]:
    """Write ``fig`` as ``folder/stem.png`` and the numbers (:func:`explore.measure_rows`) as
    ``folder/stem.csv``; existing files are kept (a ``FileExistsError``) unless
    ``overwrite``."""
    folder = Path(folder).expanduser()
    png, csv = folder / f"{stem}.png", folder / f"{stem}.csv"
    for path in (png, csv):
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists: name another folder or stem, or pass "
                                  f"overwrite=True")
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, bbox_inches="tight")
    explore.write_csv(result, classes, csv, overwrite=overwrite)
    return [png, csv]


def _resized(image: torch.Tensor, size: int) -> torch.Tensor:
    if image.shape[-1] == size and image.shape[-2] == size:
        return image
    return F.interpolate(image[None], size=(size, size), mode="bicubic",
                         align_corners=False).clamp(0, 1)[0]


class Explorer:
    """The state behind notebook 08's widgets: the images (tensors in [0, 1] of any size, or
    files / bytes read at each model's size), the models loaded so far, and every map and
    measure computed so far (kept per model, image, class, method and settings, so that a
    redraw computes only what changed). :meth:`render` is what a redraw runs."""

    def __init__(self, images: dict[str, object], models: Sequence[str] | None = None,
                 steps: int = 8):
        if not images:
            raise ValueError("Explorer needs at least one image")
        self.images = dict(images)
        self.model_names = list(models or explore.model_choices())
        self.steps = steps
        self._models: dict[str, explore.LoadedModel] = {}
        self._cache: dict[tuple, explore.Explanation] = {}
        self.notes: dict[str, list[str]] = {}  # image -> what reading it changed
        self.last: explore.Explanation | None = None
        self.last_figure: Figure | None = None
        self.seconds = 0.0  # the last render's time

    def model(self, name: str) -> explore.LoadedModel:
        """The loaded model ``name`` (loaded once)."""
        if name not in self._models:
            self._models[name] = explore.load_model(name)
        return self._models[name]

    def add_image(self, label: str, source) -> None:
        """Add an image (file path, bytes, or a 3 x H x W tensor in [0, 1])."""
        if not isinstance(source, torch.Tensor):
            notes: list[str] = []
            data.read_image(source, 8, label, notes)  # refuse what is not an image now
            self.notes[label] = notes
        self.images[label] = source

    def image(self, label: str, size: int) -> torch.Tensor:
        """Image ``label`` as 1 x 3 x size x size."""
        source = self.images[label]
        if isinstance(source, torch.Tensor):
            return _resized(source, size)[None]
        return data.read_image(source, size, label)[None]

    def _target(self, model: str, label: str, rank: int) -> int:
        loaded = self.model(model)
        with torch.no_grad():
            scores = loaded.model(self.image(label, loaded.size))
        return int(scores.topk(rank + 1, dim=1).indices[0, rank])

    def _keys(self, model, label, rank, which, layer, cav_layer, randomisation):
        """``(target, which, {method: cache key})`` for these choices."""
        loaded = self.model(model)
        which = list(which) or methods.applicable(loaded.model)
        layer = layer or explore.gradcam_layer(loaded.model, loaded.size)
        target = self._target(model, label, rank)
        keys = {name: (model, label, target, name, tuple(sorted(explore.settings(
            name, loaded.size, layer, cav_layer).items())), randomisation) for name in which}
        return target, which, keys

    def pending(self, model: str, label: str, rank: int = 0, which: Sequence[str] = (),
                layer: str | None = None, cav_layer: str = "input",
                randomisation: bool = False) -> list[str]:
        """The methods whose maps and measures :meth:`explain` would have to compute."""
        return [n for n, k in self._keys(model, label, rank, which, layer, cav_layer,
                                         randomisation)[2].items() if (*k, True) not in self._cache]

    def explain(self, model: str, label: str, rank: int = 0, which: Sequence[str] = (),
                layer: str | None = None, cav_layer: str = "input",
                randomisation: bool = False, curves: bool = True) -> explore.Explanation:
        """The maps and measures of ``which`` (default: all that apply) for the class ranked
        ``rank`` (0: the top class) on image ``label``, computing only those not computed
        before (``curves=False``: the maps alone, a quick first look)."""
        loaded = self.model(model)
        x = self.image(label, loaded.size)
        target, which, keys = self._keys(model, label, rank, which, layer, cav_layer,
                                         randomisation)
        floor_key = (model, label, target, "random")
        if curves and floor_key not in self._cache:
            self._cache[floor_key] = explore.explain(loaded.model, x, target, which=[],
                                                     steps=self.steps)
        parts = {}
        for name, key in keys.items():
            if (*key, True) in self._cache:
                parts[name] = self._cache[(*key, True)]
                continue
            if (*key, curves) not in self._cache:
                self._cache[(*key, curves)] = explore.explain(
                    loaded.model, x, target, which=[name], knobs={name: dict(key[4])},
                    steps=self.steps, randomisation=randomisation and curves, curves=curves,
                    floor=False)
            parts[name] = self._cache[(*key, curves)]
        base = self._cache.get(floor_key) or explore.explain(loaded.model, x, target, which=[],
                                                             curves=False)
        skipped = {n: p.skipped[n] for n, p in parts.items() if n in p.skipped}
        for name in set(methods.METHODS) - set(methods.applicable(loaded.model)) - set(which):
            try:
                methods.METHODS[name].needs(loaded.model)
            except ValueError as err:
                skipped[name] = str(err)
        measures = {n: p.measures[n] for n, p in parts.items() if n in p.measures}
        if curves:
            measures["random"] = base.measures["random"]
        return explore.Explanation(
            base.target, base.scores,
            {n: p.maps[n] for n, p in parts.items() if n in p.maps}, skipped, measures,
            {n: p.settings[n] for n, p in parts.items() if n in p.settings},
            {n: p.seconds[n] for n, p in parts.items() if n in p.seconds})

    def render(self, model: str, image: str, rank: int = 0, which: Sequence[str] = (),
               layer: str | None = None, cav_layer: str = "input",
               randomisation: bool = False, curves: bool = True) -> Figure:
        """The figure of :func:`explanation_figure` for these choices; its time in
        :attr:`seconds` (computing what is new, and drawing)."""
        start = time.perf_counter()
        loaded = self.model(model)
        result = self.explain(model, image, rank, which, layer, cav_layer, randomisation,
                              curves)
        x = self.image(image, loaded.size)
        fig = explanation_figure(x[0], result, 0, loaded.classes,
                                 title=f"{loaded.label}; {image}")
        self.last, self.last_figure = result, fig
        self.seconds = time.perf_counter() - start
        return fig

    def view(self, model: str | None = None) -> ipw.VBox:
        """The widgets: choosing a model refreshes the layer lists and the top-5; every change
        redraws (only new maps are computed); the status line gives the redraw's time."""
        return _view(self, model or self.model_names[0])


def _view(ex: Explorer, first: str) -> ipw.VBox:
    model = widgets.dropdown(ex.model_names, first, "model")
    image = widgets.dropdown(list(ex.images), description="image")
    upload = widgets.upload_button("add an image")
    layer = widgets.dropdown(["-"], description="Grad-CAM layer")
    cav_layer = widgets.dropdown(["input"], description="CAV layer")
    rank = ipw.Dropdown(options=[("top 1", 0)], value=0, description="class")
    which = ipw.SelectMultiple(options=[], description="methods", rows=4)
    rand = widgets.checkbox("randomisation check (slow on large models)")
    folder = ipw.Text(value="my_explanations", description="export to")
    save = ipw.Button(description="export PNG + CSV")
    status, out = ipw.Label(), ipw.Output()
    busy = [False]

    def refresh_model():
        loaded = ex.model(model.value)
        layers = explore.conv_layers(loaded.model)
        layer.options = layers or ["-"]
        layer.value = explore.gradcam_layer(loaded.model, loaded.size) or "-"
        cav_layer.options = ["input", *layers]
        cav_layer.value = "input"
        fits = methods.applicable(loaded.model)
        which.options = [(methods.METHODS[n].title, n) for n in fits]
        which.value = tuple(fits)
        refresh_classes()

    def refresh_classes():
        loaded = ex.model(model.value)
        with torch.no_grad():
            p = torch.softmax(loaded.model(ex.image(image.value, loaded.size)), 1)[0]
        top = p.topk(min(5, len(p)))
        rank.options = [(f"{r + 1}. {loaded.classes[c][:20]} ({v:.0%})", r)
                        for r, (v, c) in enumerate(zip(top.values.tolist(),
                                                       top.indices.tolist(), strict=True))]
        rank.value = 0

    def draw(change=None):
        if busy[0]:
            return
        choice = (model.value, image.value, rank.value, which.value,
                  None if layer.value == "-" else layer.value, cav_layer.value, rand.value)
        pending = ex.pending(*choice)
        fast = [m for m in (which.value or pending) if m not in SLOW]
        preview = ex.model(model.value).size >= PREVIEW_SIZE and pending and fast
        if preview:  # a first look: the fast maps without their measures
            widgets.show_in(out, lambda: ex.render(*choice[:3], fast, *choice[4:], False))
            status.value = (f"first look in {ex.seconds:.1f} s (maps only, without "
                            f"{', '.join(methods.METHODS[m].title for m in SLOW)}); "
                            f"computing the rest...")
            first = ex.seconds
        widgets.show_in(out, lambda: ex.render(*choice))
        timing = (f"first look {first:.1f} s, complete {first + ex.seconds:.1f} s" if preview
                  else f"drawn in {ex.seconds:.1f} s")
        status.value = "; ".join([ex.model(model.value).weights, timing,
                                  *ex.notes.get(image.value, [])])

    def on(change, refresh):
        busy[0] = True
        try:
            refresh()
        finally:
            busy[0] = False
        draw()

    def uploaded(change):
        content = widgets.uploaded_file(upload.value)
        if content is None:
            return
        try:
            ex.add_image(f"upload {len(ex.images)}", content)
        except ValueError as err:
            status.value = str(err)
            return
        busy[0] = True
        image.options = list(ex.images)
        busy[0] = False
        image.value = image.options[-1]

    def exported(button):
        try:
            paths = export(ex.last_figure, ex.last, ex.model(model.value).classes, folder.value,
                           re.sub(r"[^A-Za-z0-9_-]+", "_", f"{model.value}_{image.value}"))
            status.value = "wrote " + ", ".join(str(p) for p in paths)
        except (OSError, ValueError) as err:
            status.value = str(err)

    model.observe(lambda c: on(c, refresh_model), names="value")
    image.observe(lambda c: on(c, refresh_classes), names="value")
    for control in (layer, cav_layer, rank, which, rand):
        control.observe(draw, names="value")
    upload.observe(uploaded, names="value")
    save.on_click(exported)
    on(None, refresh_model)
    rows = [ipw.HBox([model, image, upload]), ipw.HBox([layer, cav_layer, rank]),
            ipw.HBox([which, ipw.VBox([rand, folder, save])]), status, out]
    return ipw.VBox(rows)
