"""Every exercise's solution passes its own check, and a plausible wrong answer fails it with a
message; solutions are hidden in the student version (XAI_SOLUTIONS=0)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import xai_helpers.exercises as exercises
from xai_helpers.exercises import Exercise

MODULES = [importlib.import_module(f"xai_helpers.exercises.{m.name}")
           for m in pkgutil.iter_modules(exercises.__path__)]
ALL = [(m.__name__.rsplit(".", 1)[1], name, getattr(m, name)) for m in MODULES
       for name in m.__all__ if isinstance(getattr(m, name), Exercise)]


def test_every_notebook_module_has_exercises():
    assert ALL and {m for m, _, _ in ALL} >= {"nb00"}


NEEDS_SOLUTIONS = pytest.mark.skipif(exercises.STUDENT_MARK.exists(),
                                     reason="the student version has no solutions to test")


@NEEDS_SOLUTIONS
@pytest.mark.parametrize("module, name, exercise", ALL, ids=[f"{m}.{n}" for m, n, _ in ALL])
def test_the_solution_passes_and_a_wrong_answer_fails(module, name, exercise, capsys):
    assert exercise.check(exercise.solve())
    assert "Correct." in capsys.readouterr().out
    if exercise.wrong is not None:
        assert not exercise.check(exercise.wrong())
        said = capsys.readouterr().out
        assert "Not yet:" in said and len(said.split("Not yet:")[1].strip()) > 20


def test_unanswered_and_unusable_answers_are_said_plainly(capsys):
    from xai_helpers.exercises import nb00

    assert not nb00.q1.check(...)
    assert "not answered yet" in capsys.readouterr().out
    assert not nb00.q2.check(lambda model, x, cls: "a string")
    assert "Not yet:" in capsys.readouterr().out


@NEEDS_SOLUTIONS
def test_solutions_are_hidden_in_the_student_version(monkeypatch, capsys):
    from xai_helpers.exercises import nb00

    nb00.q2.solution()
    assert "def input_x_gradient" in capsys.readouterr().out
    monkeypatch.setenv("XAI_SOLUTIONS", "0")
    nb00.q2.solution()
    said = capsys.readouterr().out
    assert "def input_x_gradient" not in said and "teacher" in said


@NEEDS_SOLUTIONS
def test_the_student_version_takes_the_solutions_out(tmp_path):
    """tools/student_version.py: every solution is replaced, the checks stay, the copy is
    marked so that solution() says so, and an existing folder is never overwritten."""
    import importlib.util

    from xai_helpers import config

    spec = importlib.util.spec_from_file_location(
        "student_version", config.ROOT / "tools" / "student_version.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    source = (config.ROOT / "xai_helpers" / "exercises" / "nb00.py").read_text()
    stripped, n = tool.strip_solutions(source)
    assert n == 3 and stripped.count("with your teacher") == 3
    assert "(grad,) = torch.autograd.grad(model(x)[:, cls].sum(), x)" in source
    assert "(grad,) = torch.autograd.grad(model(x)[:, cls].sum(), x)" not in stripped
    assert "def _check_input_x_gradient" in stripped  # the checks stay
    compile(stripped, "nb00", "exec")  # still valid Python
    out = tmp_path / "student"
    assert tool.main([str(out)]) == 0
    assert (out / "xai_helpers" / "exercises" / "STUDENT").exists()
    assert "with your teacher" in (out / "xai_helpers" / "exercises" / "nb06.py").read_text()
    assert (out / "notebooks" / "00_introduction.ipynb").exists()
    with pytest.raises(SystemExit):  # nothing is overwritten
        tool.main([str(out)])
