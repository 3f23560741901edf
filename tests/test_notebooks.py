"""The committed notebooks as students meet them: executed in full mode, light, Colab-ready.

(Executing them is nbval's job: `make test` runs every notebook in quick mode.)
"""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from xai_helpers import config

NOTEBOOKS = sorted((config.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
README = (config.ROOT / "README.md").read_text()
REPO = re.search(r"github\.com/([\w.-]+/[\w.-]+)",
                 tomllib.loads((config.ROOT / "pyproject.toml").read_text())
                 ["project"]["urls"]["Source"]).group(1)


def _cells(path):
    return json.loads(path.read_text())["cells"]


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_introduction.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_readme_has_a_colab_badge_for_the_notebook(path):
    url = f"https://colab.research.google.com/github/{REPO}/blob/main/notebooks/{path.name}"
    assert url in README


def test_every_readme_badge_points_at_a_notebook():
    """Each Colab badge opens notebooks/NN_*.ipynb of this repository's main branch, and that
    notebook exists; the badge sits in the table row of the same number."""
    badge = re.compile(r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/"
                       r"colab-badge\.svg\)\]\(https://colab\.research\.google\.com/github/"
                       r"([\w.-]+/[\w.-]+)/blob/([\w.-]+)/notebooks/([^)]+)\)")
    lines = [line for line in README.splitlines() if "colab-badge.svg" in line]
    assert lines, "no Colab badge in the README"
    for line in lines:
        found = badge.findall(line)
        assert len(found) == 1, f"not one well-formed badge: {line}"
        repo, branch, name = found[0]
        assert (repo, branch) == (REPO, "main"), name
        assert re.fullmatch(r"\d\d_\w+\.ipynb", name), name
        assert (config.ROOT / "notebooks" / name).exists(), name
        assert line.startswith(f"| {name[:2]} |"), f"badge of {name} in another row: {line}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_executed_in_full_mode_without_errors(path):
    cells = [c for c in _cells(path) if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in cells), "not executed top to bottom"
    outputs = [o for c in cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "FULL mode" in text and "QUICK mode" not in text
    assert path.stat().st_size < 3_000_000


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_installs_the_course_in_colab(path):
    first = next(c for c in _cells(path) if c["cell_type"] == "code")
    source = "".join(first["source"])
    assert '"google.colab" in sys.modules' in source
    assert f"github.com/{REPO}" in source and "pip install" in source
    assert "output.enable_custom_widget_manager()" in source  # the sliders' figures in Colab


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_widget_cells_are_tagged_to_ignore_output(path):
    for cell in _cells(path):
        if cell["cell_type"] == "code" and "interact_view(" in "".join(cell["source"]):
            assert "nbval-ignore-output" in cell["metadata"].get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_code_cells_stay_short(path):
    """At least 85% of a notebook's code cells have at most 15 lines: each shows the idea of
    its section; tables and figures are assembled by named helpers (d2l's habit)."""
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    lengths = [len("".join(c["source"]).rstrip("\n").split("\n")) for c in cells]
    short = sum(n <= 15 for n in lengths)
    assert short >= 0.85 * len(cells), (f"{path.name}: {short} of {len(cells)} code cells within "
                                        f"15 lines; longest {sorted(lengths)[-3:]}")
