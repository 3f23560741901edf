"""Render executed notebooks as a static HTML site: an index in course order, one page each.

    make site              (execute the series in full mode into build/notebooks/, render those)
    make site EXECUTE=0    (render the committed notebooks as they are: seconds)
    python tools/make_site.py [--out build/site] NOTEBOOK.ipynb ...

The index lists number, title (the notebook's first markdown heading), one line on what you
learn (the README's table row for that number, else the notebook's first paragraph) and a link.
Each page is nbconvert's HTML (lab template) with every figure embedded as a data URI, so the
folder can be copied anywhere; links between notebooks point at the rendered pages. The site
reads fully offline: MathJax comes from the folder itself (``mathjax/``, the files of the
``jupyter-server-mathjax`` package), and each widget, which needs a running kernel, is
replaced by a note pointing at the figure its drawing function made just above it.
"""

from __future__ import annotations

import argparse
import datetime
import html
import re
import shutil
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
line-height:1.45}table{border-collapse:collapse}td,th{padding:.45rem .7rem;vertical-align:top;
border-bottom:1px solid #ddd;text-align:left}code{background:#f3f3f3;padding:0 .2em}"""
NAV = ('<nav style="padding:.5rem 1rem;font-family:sans-serif">'
       '<a href="index.html">&larr; course index</a></nav>')


def _inline(markdown: str) -> str:
    """One line of README markdown as HTML: escaped, with `code` and *emphasis*."""
    text = html.escape(markdown.strip())
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)


def readme_lines(readme: Path) -> dict[str, str]:
    """Number -> the "what you learn" cell of the README's notebook table."""
    rows = re.findall(r"^\| (\d\d) \|[^|]*\|([^|]*)\|", readme.read_text(), re.MULTILINE)
    return {number: cell.strip() for number, cell in rows}


def title_and_paragraph(nb) -> tuple[str, str]:
    """The first markdown heading (without its "NN · ") and the first paragraph after it."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"):
            heading, _, rest = cell.source.strip().partition("\n")
            title = re.sub(r"^#+\s*(\d\d\s*·\s*)?", "", heading).strip()
            paragraphs = [p for p in re.split(r"\n\s*\n", rest.strip()) if p.strip()]
            return title, " ".join(paragraphs[0].split()) if paragraphs else ""
    return "", ""


WIDGET = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = ("<p><em>Interactive in Jupyter or Colab: the sliders redraw the figure above, "
               "which shows one of their settings.</em></p>")
MATHJAX = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"  # the package's config


def offline(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with every widget output replaced by :data:`WIDGET_NOTE` (a widget needs a
    kernel, and its JavaScript would come from the network) and the widget state dropped."""
    for cell in nb.cells:
        if cell.cell_type == "code" and any(WIDGET in o.get("data", {}) for o in cell.outputs):
            cell.outputs = [nbformat.v4.new_output("display_data",
                                                   data={"text/html": WIDGET_NOTE})]
    nb.metadata.pop("widgets", None)
    return nb


def copy_mathjax(out: Path) -> None:
    """MathJax's files into ``out/mathjax`` (once), so the equations render offline."""
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (out / "mathjax" / "MathJax.js").exists():
        shutil.copytree(source, out / "mathjax", dirs_exist_ok=True)


def render(paths: list[Path], out: Path, note: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.html"):  # pages of an earlier render, e.g. of other notebooks
        stale.unlink()
    copy_mathjax(out)
    exporter = HTMLExporter(template_name="lab", embed_images=True, mathjax_url=MATHJAX)
    learn = readme_lines(ROOT / "README.md")
    pages = {p.name: p.with_suffix(".html").name for p in paths}
    rows = []
    for path in sorted(paths, key=lambda p: p.name):
        nb = offline(nbformat.read(path, as_version=4))
        number = path.name[:2]
        title, paragraph = title_and_paragraph(nb)
        title = title or path.stem
        body, _ = exporter.from_notebook_node(
            nb, resources={"metadata": {"name": f"{number} · {title.replace('*', '')}",
                                        "path": str(path.parent)}})
        body = re.sub(r'<script[^>]*src="https?://[^"]*require[^"]*"[^>]*>\s*</script>', "", body)
        for name, page in pages.items():  # links to other notebooks -> their pages
            body = body.replace(f'href="{name}', f'href="{page}')
        body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + NAV, body, count=1)
        (out / pages[path.name]).write_text(body, encoding="utf-8")
        about = _inline(learn[number]) if number in learn else html.escape(paragraph)
        rows.append(f'<tr><td>{number}</td><td><a href="{pages[path.name]}">'
                    f"{_inline(title)}</a></td><td>{about}</td></tr>")
        print(f"{path} -> {out / pages[path.name]}")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    (out / "index.html").write_text(
        f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Seeing why a CNN decides</title><style>{STYLE}</style></head><body>\n"
        "<h1>Seeing why a CNN decides</h1>\n<p>A hands-on course in explainable AI for image "
        "classifiers: the notebooks of the series, in order.</p>\n<table>\n"
        "<tr><th>#</th><th>notebook</th><th>what you learn</th></tr>\n" + "\n".join(rows)
        + f"\n</table>\n<p><small>{html.escape(note)}; rendered {stamp}.</small></p>\n"
        "</body></html>\n", encoding="utf-8")
    print(f"{len(rows)} notebooks -> {out / 'index.html'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site")
    parser.add_argument("--note", default="Executed in full mode",
                        help="where the outputs come from, shown under the index")
    args = parser.parse_args()
    render(args.notebooks, args.out, args.note)


if __name__ == "__main__":
    main()
