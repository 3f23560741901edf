"""Tests of xai_helpers.widgets: control values, redraw on change, one figure, errors."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from xai_helpers import widgets as xw  # noqa: E402


def test_class_slider_value_is_index_and_label_shows_name():
    slider = xw.class_slider(["zero", "one", "two"], value=1)
    assert isinstance(slider, widgets.SelectionSlider)
    assert slider.value == 1
    assert slider.label == "1: one"
    assert list(slider.options) == [("0: zero", 0), ("1: one", 1), ("2: two", 2)]
    slider.value = 2
    assert slider.label == "2: two"


def test_index_slider_bounds():
    slider = xw.index_slider(5, value=3)
    assert (slider.min, slider.max, slider.value) == (0, 4, 3)
    with pytest.raises(ValueError):
        xw.index_slider(0)


def test_layer_dropdown_defaults_to_first_name():
    dropdown = xw.layer_dropdown(["features.0", "features.3"])
    assert dropdown.value == "features.0"
    assert xw.layer_dropdown(["a", "b"], value="b").value == "b"


def _recording_render(calls):
    def render(**values):
        calls.append(values)
        fig, ax = plt.subplots()
        ax.set_title(str(values))
        return fig
    return render


def test_interact_view_draws_at_creation_and_on_change():
    calls = []
    image, target = xw.index_slider(4), xw.class_slider(["a", "b", "c"], value=2)
    view = xw.interact_view(_recording_render(calls), image=image, target=target)
    assert calls == [{"image": 0, "target": 2}]
    controls, out = view.children
    assert list(controls.children) == [image, target]
    assert isinstance(out, widgets.Output)
    assert len(out.outputs) == 1

    image.value = 3
    target.value = 0
    assert calls[1:] == [{"image": 3, "target": 2}, {"image": 3, "target": 0}]
    assert len(out.outputs) == 1  # replaced, not accumulated
    assert out.outputs[0]["output_type"] == "display_data"
    assert "image/png" in out.outputs[0]["data"]
    assert plt.get_fignums() == []  # every figure closed after display


def test_interact_view_error_in_render_propagates_outside_a_kernel():
    def render(image):
        if image == 2:
            raise ValueError("bad image")
        return plt.figure()

    slider = xw.index_slider(3)
    view = xw.interact_view(render, image=slider)
    with pytest.raises(ValueError, match="bad image"):
        slider.value = 2
    slider.value = 1  # the view keeps working after the error
    assert len(view.children[1].outputs) == 1


def test_interact_view_needs_a_control():
    with pytest.raises(ValueError):
        xw.interact_view(lambda: plt.figure())


def test_dropdown_and_checkbox():
    box = xw.dropdown(["CIFAR-10", "house digits"], description="dataset")
    assert box.value == "CIFAR-10" and box.description == "dataset"
    assert xw.dropdown([7, 14], value=14).value == 14
    with pytest.raises(ValueError, match="at least one option"):
        xw.dropdown([])
    tick = xw.checkbox("reveal")
    assert isinstance(tick, widgets.Checkbox) and tick.value is False
    seen = []
    view = xw.interact_view(lambda reveal: seen.append(reveal) or plt.figure(), reveal=tick)
    tick.value = True
    assert seen == [False, True] and len(view.children[1].outputs) == 1
