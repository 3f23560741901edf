"""Sliders and drop-downs wired to a plain ``render(**values) -> Figure`` function.

The notebooks keep every figure in a pure function (usually built from ``viz``) and only wire
core ipywidgets controls to it here: ``IntSlider``, ``SelectionSlider``, ``Dropdown``,
``Checkbox``, ``Output``,
``HBox`` and ``VBox``. This works with ipywidgets 7 (Colab) and 8, needs no ipympl, and shows
inline (static) matplotlib figures.

Testing: widget callbacks never fire under nbval (nobody moves a slider), so the render
function is what the tests and the notebooks' ``assert`` cells call, for several values.
Cells that create a widget view carry the ``nbval-ignore-output`` tag (widget state and
figure bytes differ from run to run).

Display: in a kernel (Jupyter, Colab, VS Code) the figure goes into the ``Output`` with
``with out: clear_output(wait=True); display(fig)``. Outside a kernel (plain Python, pytest)
``with out:`` captures nothing, so the view sets ``out.outputs`` to the one figure instead;
either way the ``Output`` holds exactly one figure and nothing piles up.

Errors: ``render`` runs inside ``with out:``. In a kernel ipywidgets prints the traceback into
the view's ``Output`` in place of the figure (visible, not swallowed in a log); in plain Python
the exception propagates, from ``interact_view`` or from the assignment to a control's
``.value``.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import clear_output, display
from matplotlib.figure import Figure

_STYLE = {"description_width": "initial"}


def class_slider(classes: Sequence[str], value: int = 0,
                 description: str = "class") -> widgets.SelectionSlider:
    """A slider over class indices whose readout shows ``"i: name"``; ``.value`` is ``i``."""
    options = [(f"{i}: {name}", i) for i, name in enumerate(classes)]
    return widgets.SelectionSlider(options=options, value=value, description=description,
                                   continuous_update=False, style=_STYLE)


def index_slider(n: int, value: int = 0, description: str = "image") -> widgets.IntSlider:
    """An integer slider over ``0 .. n-1`` (e.g. which test image)."""
    if n < 1:
        raise ValueError(f"index_slider needs n >= 1, got {n}")
    return widgets.IntSlider(value=value, min=0, max=n - 1, step=1, description=description,
                             continuous_update=False, style=_STYLE)


def dropdown(options: Sequence, value=None, description: str = "") -> widgets.Dropdown:
    """A drop-down of ``options`` (e.g. dataset or model names); default the first."""
    options = list(options)
    if not options:
        raise ValueError("dropdown needs at least one option")
    return widgets.Dropdown(options=options, value=options[0] if value is None else value,
                            description=description, style=_STYLE)


def layer_dropdown(names: Sequence[str], value: str | None = None,
                   description: str = "layer") -> widgets.Dropdown:
    """A drop-down of layer names (``model.named_modules()`` names); default the first."""
    return dropdown(names, value, description)


def checkbox(description: str, value: bool = False) -> widgets.Checkbox:
    """A tick box (e.g. "reveal the answer")."""
    return widgets.Checkbox(value=value, description=description, indent=False, style=_STYLE)


def choice_slider(options: Sequence[tuple[str, object]], value=None,
                  description: str = "") -> widgets.SelectionSlider:
    """A slider over ``(label, value)`` pairs (e.g. the points "(1) features.30" ... or a class
    list led by a special entry); ``.value`` is the chosen value, default the first."""
    options = list(options)
    if not options:
        raise ValueError("choice_slider needs at least one option")
    return widgets.SelectionSlider(options=options,
                                   value=options[0][1] if value is None else value,
                                   description=description, continuous_update=False,
                                   style=_STYLE)


def upload_button(description: str = "your image") -> widgets.FileUpload:
    """A button to upload one image file; pass it to :func:`interact_view` like any control
    (``render`` then gets the upload's value: read it with :func:`uploaded_file`)."""
    return widgets.FileUpload(accept="image/*", multiple=False, description=description)


def uploaded_file(value) -> bytes | None:
    """The content of the last uploaded file in a ``FileUpload``'s ``value``, or ``None``
    before any upload. ipywidgets 8: a tuple of dicts with ``"content"``; 7: a dict
    ``{file name: {"content": ..., "metadata": ...}}``."""
    if not value:
        return None
    files = list(value.values()) if isinstance(value, dict) else list(value)
    return bytes(files[-1]["content"])


def _figure_output(fig: Figure) -> dict:
    """``fig`` as one ``display_data`` output (PNG and text), as the inline backend sends it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": png, "text/plain": repr(fig)}}


def show_in(out: widgets.Output, make: Callable[[], Figure]) -> None:
    """Replace what ``out`` shows by the figure ``make()`` draws, then close that figure (the
    module docstring says how this works in a kernel, in plain Python, and on errors)."""
    with out:
        capturing = bool(out.msg_id)  # a kernel routes displays into the Output
        if capturing:
            clear_output(wait=True)  # happens when the new figure (or a traceback) arrives
        fig = make()
        try:
            if capturing:
                display(fig)
            else:  # plain Python (tests): nothing is captured, so set the outputs
                out.outputs = (_figure_output(fig),)
        finally:
            plt.close(fig)


def interact_view(render: Callable[..., Figure], **controls: widgets.ValueWidget) -> widgets.VBox:
    """The controls in a row above an ``Output`` that shows ``render(**values)``.

    Parameters
    ----------
    render
        Pure function returning a matplotlib ``Figure`` for the current control values, called
        with one keyword per control (``render(layer=..., target=...)``).
    **controls
        The widgets, keyed by ``render``'s argument names.

    Returns
    -------
    ``VBox([HBox(controls), Output])``. It draws once at creation and again on every value
    change; each figure replaces the previous one and is closed after display (so it does not
    show twice or pile up). See the module docstring for how errors in ``render`` show.
    """
    if not controls:
        raise ValueError("interact_view needs at least one control")
    out = widgets.Output()

    def draw(change: object = None) -> None:
        values = {name: control.value for name, control in controls.items()}
        show_in(out, lambda: render(**values))

    for control in controls.values():
        control.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox(list(controls.values())), out])
