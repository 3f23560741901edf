"""The widgets as a student meets them: JupyterLab in headless Chromium, sliders moved by keyboard.

nbval runs every notebook but never moves a slider. Here, for each notebook, a JupyterLab
server (on a temporary copy of notebooks/, so the repository is untouched) opens it in Chromium,
runs all cells in quick mode, moves a class slider and a layer / point / image slider of one
widget view one step each (ArrowRight; ArrowLeft at the end) and checks that the figure under
the sliders is redrawn with other bytes each time. Any cell error, traceback in a widget output,
or JavaScript error on the page fails the test. A screenshot of the widget's cell lands in
build/screenshots/NN.png.

Needs Chromium: Debian's `chromium` on PATH (`make browser` installs it) or $CHROMIUM; the test
skips, saying so, where there is none. Playwright's own browser downloads are not used.
For a local check of other notebooks: XAI_BROWSER_NOTEBOOKS="00 02 05" pytest tests/test_browser.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from xai_helpers import config

NUMBERS = tuple(os.environ.get("XAI_BROWSER_NOTEBOOKS", "01 03 04").replace(",", " ").split())
SCREENSHOTS = config.ROOT / "build" / "screenshots"
NOTEBOOK_TIMEOUT_S = 300  # opening and running all cells, quick mode (01: about 60 s, busy CPU)
REDRAW_TIMEOUT_S = 120  # one slider step until the new figure shows
# Slider descriptions (ipywidgets labels) to move, in order of preference: a class slider, then a
# layer / point / image slider of the same view (01: "class", "image"; 03: "guess", "image";
# 04: "any class", "point"). A notebook with no such view: the first two sliders of its first.
CLASS_LABELS = ("class", "any class", "guess")
OTHER_LABELS = ("layer", "point", "image")
# JavaScript console errors that do not fail the test. None so far: JupyterLab 4.6, ipywidgets
# 8.1 and Chromium 150 log no error for notebooks 00-05 (news and update checks are switched off
# below, so no request leaves the machine). Add a regex here with the reason, if ever needed.
IGNORED_JS_ERRORS: tuple[str, ...] = ()
STDERR = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'
ERROR_TEXT = re.compile(r"Traceback|^\w*(Error|Exception)\b", re.MULTILINE)

# A view made by widgets.interact_view: VBox([HBox(controls), Output]).
VIEW = ".widget-vbox:has(> .widget-hbox > .widget-slider):has(> .widget-output)"
KERNEL_IDLE = """() => {
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = w && w.sessionContext && w.sessionContext.session
        && w.sessionContext.session.kernel;
    return Boolean(w && w.context && w.context.isReady && kernel && kernel.status === "idle");
}"""
WIDGETS_RENDERED = """() => {
    const cells = window.jupyterapp.shell.currentWidget.content.model.toJSON().cells;
    const views = cells.flatMap((c) => c.outputs || [])
        .filter((o) => o.data && o.data["application/vnd.jupyter.widget-view+json"]).length;
    const shown = [...document.querySelectorAll(".jp-OutputArea-output > .jupyter-widgets")]
        .filter((e) => !e.parentElement.closest(".widget-output")).length;
    return views > 0 && shown >= views;
}"""
CELL_PROBLEMS = """() => {
    const cells = window.jupyterapp.shell.currentWidget.content.model.toJSON().cells;
    const text = (t) => Array.isArray(t) ? t.join("") : (t || "");
    const problems = [], skipped = [];
    cells.forEach((cell, i) => {
        if (cell.cell_type !== "code") return;
        if (cell.execution_count === null) skipped.push(i);
        for (const o of cell.outputs) {
            if (o.output_type === "error") problems.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
            if (o.output_type === "stream" && o.name === "stderr" && /Traceback/.test(text(o.text)))
                problems.push(`cell ${i}: ${text(o.text).slice(-500)}`);
        }
    });
    if (skipped.length)
        problems.push(`${skipped.length} code cells not run (from cell ${skipped[0]})`);
    return problems;
}"""


def _notebook(number: str) -> Path | None:
    found = sorted((config.ROOT / "notebooks").glob(f"{number}_*.ipynb"))
    return found[0] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except (OSError, urllib.error.URLError):
        return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of notebooks/, in quick mode; shut down whatever happens."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    shutil.copytree(config.ROOT / "notebooks", root,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "drafts"))
    # every cell in the DOM (no virtual scrolling), so every output can be read and checked; no
    # news toast over the screenshots, no request to the internet
    for name, values in {"notebook-extension/tracker": {"windowingMode": "none"},
                         "apputils-extension/notification": {"fetchNews": "false",
                                                             "checkForUpdates": False}}.items():
        file = tmp / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(values))
    env = dict(os.environ, XAI_QUICK="1", XAI_DOWNLOAD="0", XAI_QUIET="1",
               JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
    env.pop("MPLBACKEND", None)  # `make test` sets Agg; the kernel must draw inline as for students
    env.setdefault("OMP_NUM_THREADS", "1")  # see README, Troubleshooting: a busy 2-core machine
    port, token = _free_port(), secrets.token_hex(16)
    command = [str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser",
               f"--port={port}", "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    base = f"http://127.0.0.1:{port}"
    log = (tmp / "server.log").open("w")
    server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while _status(f"{base}/api/status?token={token}") != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (tmp / "server.log").read_text()[-3000:]
                pytest.fail(f"JupyterLab did not start (exit code {server.poll()}):\n{tail}")
            time.sleep(0.5)
        yield {"base": base, "token": token}
    finally:
        # the kernels run in sessions of their own: ask the server to stop them, then stop it
        try:
            request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(request, timeout=10).close()
            server.wait(timeout=30)
        except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if server.poll() is not None:
                break
            try:
                os.killpg(server.pid, sig)
                server.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        log.close()


def _pick_sliders(page) -> tuple[object, list[tuple[str, object]]]:
    """The widget view to explore and its (label, slider) pairs to move."""
    views = page.locator(VIEW)
    candidates = []
    for i in range(views.count()):
        view = views.nth(i)
        sliders = view.locator(":scope > .widget-hbox > .widget-slider")
        labels = [s.locator("label.widget-label").inner_text().strip() for s in sliders.all()]
        named = dict(zip(labels, sliders.all(), strict=True))
        cls = next((x for x in CLASS_LABELS if x in named), None)
        other = next((x for x in OTHER_LABELS if x in named), None)
        if cls and other:
            return view, [(cls, named[cls]), (other, named[other])]
        candidates.append((view, list(named.items())[:2]))
    assert candidates, "no widget view with a slider rendered"
    return candidates[0]


def _figure(view) -> str | None:
    """The base64 PNG the view's Output shows now (None between clear and redraw)."""
    images = view.locator(":scope > .widget-output img")
    if not images.count():
        return None
    src = images.first.get_attribute("src") or ""
    return src.partition("base64,")[2] or None


def _describe(png_b64: str) -> str:
    data = base64.b64decode(png_b64)
    return f"{len(data):,} bytes, sha1 {hashlib.sha1(data).hexdigest()[:10]}"


@pytest.mark.parametrize("number", NUMBERS)
def test_widgets_redraw_when_sliders_move(number, request):
    path = _notebook(number)
    if path is None:
        pytest.skip(f"notebook {number} not committed yet")
    browser = request.getfixturevalue("chromium")
    lab = request.getfixturevalue("lab")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{number}.png"
    js_errors: list[str] = []
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)  # clicks, key presses, screenshots on a busy machine
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and js_errors.append(
        f"console: {m.text} ({m.location.get('url', '')}:{m.location.get('lineNumber', '')})"))
    page.on("pageerror", lambda e: js_errors.append(f"pageerror: {e}"))
    started = time.monotonic()
    try:
        # a workspace per notebook, so JupyterLab restores nothing from an earlier test
        page.goto(f"{lab['base']}/lab/workspaces/test{number}/tree/{path.name}"
                  f"?reset&token={lab['token']}", timeout=120_000)
        page.wait_for_function(KERNEL_IDLE, timeout=NOTEBOOK_TIMEOUT_S * 1000, polling=500)
        # the command's promise resolves when the last cell has run (or one failed)
        page.evaluate("""() => { window.__runAll = undefined;
            window.jupyterapp.commands.execute("notebook:run-all-cells").then(
                (ok) => { window.__runAll = String(ok); },
                (e) => { window.__runAll = "failed: " + e; }); }""")
        left_ms = max(1, NOTEBOOK_TIMEOUT_S - (time.monotonic() - started)) * 1000
        page.wait_for_function("() => window.__runAll !== undefined", timeout=left_ms,
                               polling=1000)
        page.wait_for_function(KERNEL_IDLE, timeout=60_000, polling=500)
        ran = time.monotonic() - started
        problems = page.evaluate(CELL_PROBLEMS)
        assert not problems, (f"notebook {number}: cell errors (cells counted from 0):\n"
                              + "\n".join(problems))
        assert page.evaluate("() => window.__runAll") == "true"

        # every widget view of the notebook drawn, and a figure under the sliders
        page.wait_for_function(WIDGETS_RENDERED, timeout=60_000, polling=500)
        page.locator(f"{VIEW} > .widget-output img").first.wait_for(timeout=60_000)
        view, sliders = _pick_sliders(page)
        moves = []
        for label, slider in sliders:
            before = _figure(view)
            assert before, f"no figure under the sliders before moving {label!r}"
            handle = slider.locator(".noUi-handle")
            value = slider.locator(".widget-readout").inner_text()
            at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
            handle.press("ArrowLeft" if at_end else "ArrowRight")  # one step, as a student would
            deadline = time.monotonic() + REDRAW_TIMEOUT_S
            after = _figure(view)
            while after in (None, before) and time.monotonic() < deadline:
                shown = [t for t in view.locator(f":scope > .widget-output {STDERR}")
                         .all_inner_texts() if ERROR_TEXT.search(t)]
                assert not shown, f"moving {label!r}: the widget shows an error:\n{shown[0]}"
                page.wait_for_timeout(250)
                after = _figure(view)
            moved = slider.locator(".widget-readout").inner_text()
            assert moved != value, f"slider {label!r} did not move from {value!r}"
            redrawn = after not in (None, before)
            assert redrawn, (
                f"slider {label!r} moved {value!r} -> {moved!r} but the figure did not change "
                f"within {REDRAW_TIMEOUT_S} s")
            moves.append(f"{label} {value} -> {moved}: figure {_describe(before)} -> "
                         f"{_describe(after)}")
        cell = view.locator("xpath=ancestor::div[contains(concat(' ', normalize-space(@class),"
                            " ' '), ' jp-Cell ')][1]")
        cell.screenshot(path=str(shot))

        tracebacks = [t for t in page.locator(STDERR).all_inner_texts() if ERROR_TEXT.search(t)]
        assert not tracebacks, f"notebook {number}: errors shown:\n" + "\n".join(tracebacks)
        errors = [e for e in js_errors if not any(re.search(p, e) for p in IGNORED_JS_ERRORS)]
        assert not errors, f"notebook {number}: JavaScript errors:\n" + "\n".join(errors)
        print(f"{path.name}: ran all cells in {ran:.0f} s, whole test "
              f"{time.monotonic() - started:.0f} s", *moves, sep="\n  ")
    except BaseException:
        try:
            page.screenshot(path=str(shot))  # what the page showed when it failed
        except Exception:
            pass
        raise
    finally:
        try:  # free the kernel for the next notebook (the server stops them all at the end)
            page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        except Exception:  # the page may be gone already
            pass
        context.close()
