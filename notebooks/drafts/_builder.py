"""Shared pieces of the notebook builders (build_NN.py): cells, the Colab cell, writing.

    from _builder import code, colab_cell, md, write
"""
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = "xai-course/xai-cnn-course"
cells = []


def md(s):
    cells.append(new_markdown_cell(s.strip("\n")))


def code(s, tags=None):
    c = new_code_cell(s.strip("\n"))
    if tags:
        c.metadata["tags"] = tags
    cells.append(c)


def colab_cell():
    """Every notebook's first code cell: in Colab, fetch the course and enable widgets."""
    code(f"""
# Colab only: fetch the course, install its helpers, enable widgets. Harmless elsewhere.
import sys
if "google.colab" in sys.modules:
    !git clone --quiet --depth 1 https://github.com/{REPO} /content/xai-cnn-course
    %pip install --quiet -e /content/xai-cnn-course
    sys.path.insert(0, "/content/xai-cnn-course")
    %cd /content/xai-cnn-course/notebooks
    from google.colab import output
    output.enable_custom_widget_manager()
""")


def write(path):
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                       "name": "python3"},
        "language_info": {"name": "python"}})
    nbformat.write(nb, path)
    print(f"wrote {path} ({len(cells)} cells)")
