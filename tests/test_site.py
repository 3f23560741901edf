"""The static site reads offline: no script, style or image from the network, MathJax from the
site's own folder (equations rendered in a headless browser with every network request
refused), and widgets replaced by a note."""

from __future__ import annotations

import importlib.util
import re

import pytest

from xai_helpers import config

NOTEBOOKS = [config.ROOT / "notebooks" / n for n in ("00_introduction.ipynb",
                                                       "06_methods_compared.ipynb")]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("make_site",
                                                  config.ROOT / "tools" / "make_site.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path_factory.mktemp("site")
    tool.render(NOTEBOOKS, out, "test")
    return out


def test_pages_load_nothing_from_the_network(site):
    for page in site.glob("*.html"):
        text = page.read_text()
        external = re.findall(r'<(?:script|link|img|iframe)[^>]*(?:src|href)="(https?://[^"]*)"',
                              text)
        assert not external, (page.name, external)
    assert (site / "mathjax" / "MathJax.js").exists()
    assert 'src="mathjax/MathJax.js' in (site / "00_introduction.html").read_text()


def test_widgets_become_a_note(site):
    text = (site / "00_introduction.html").read_text()
    assert "Interactive in Jupyter or Colab" in text
    assert "application/vnd.jupyter.widget-view+json" not in text


def test_equations_render_without_network(site, chromium):
    page = chromium.new_page()
    try:
        page.route("**/*", lambda route: route.abort() if route.request.url.startswith("http")
                   else route.continue_())
        page.goto((site / "00_introduction.html").as_uri())
        page.wait_for_function("window.MathJax && document.querySelectorAll('.MathJax').length > 0",
                               timeout=60_000)
        page.wait_for_timeout(1_000)  # the rest of the queue
        rendered = page.evaluate("document.querySelectorAll('.MathJax').length")
        text = page.evaluate("document.body.innerText")
    finally:
        page.close()
    assert rendered > 0
    assert "\\partial f_c" not in text and "Math Processing Error" not in text
