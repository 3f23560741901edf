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


def test_solutions_are_hidden_in_the_student_version(monkeypatch, capsys):
    from xai_helpers.exercises import nb00

    nb00.q2.solution()
    assert "def input_x_gradient" in capsys.readouterr().out
    monkeypatch.setenv("XAI_SOLUTIONS", "0")
    nb00.q2.solution()
    said = capsys.readouterr().out
    assert "def input_x_gradient" not in said and "teacher" in said
