"""Exercises that check themselves: each has a prompt, a check that tells right from wrong
with a useful message (what is off), a hint, and a solution that runs.

In a notebook::

    from xai_helpers.exercises import nb00 as ex
    ex.q1.check(my_answer)   # "Correct." or "Not yet: <what is off>"
    ex.q1.hint()
    ex.q1.solution()         # prints the solution's code (it runs: tests/test_exercises.py)

One module per notebook (``nb00``, ...); the checks are written against the course's own
functions and run offline in seconds. ``python tools/student_version.py OUT`` (``make
student``) writes the student version, whose exercises have no solution code and whose
``solution()`` says the teacher has them (``XAI_SOLUTIONS=0`` does the latter here).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Exercise", "solutions_shown"]


STUDENT_MARK = Path(__file__).with_name("STUDENT")  # written by tools/student_version.py


def solutions_shown() -> bool:
    """False in the student version (made by ``tools/student_version.py``, or
    ``XAI_SOLUTIONS=0``)."""
    return os.environ.get("XAI_SOLUTIONS", "1") != "0" and not STUDENT_MARK.exists()


@dataclass(frozen=True)
class Exercise:
    """One exercise. ``checker(answer)`` returns ``None`` when the answer is right, else a
    sentence saying what is off; ``solution_code`` computes ``answer`` with the course's
    functions; ``wrong`` gives a plausible wrong answer (the tests check that it fails)."""

    name: str
    prompt: str
    hint_text: str
    solution_code: str
    checker: Callable[[object], str | None]
    wrong: Callable[[], object] | None = None

    def check(self, answer: object) -> bool:
        """Print whether ``answer`` is right, and if not, what is off; return it as a bool."""
        if answer is Ellipsis:
            print(f"{self.name}: not answered yet (replace ... with your answer)")
            return False
        try:
            problem = self.checker(answer)
        except Exception as err:  # a wrong type or shape is a wrong answer, said plainly
            problem = f"the check could not use this answer ({type(err).__name__}: {err})"
        print(f"{self.name}: " + ("Correct." if problem is None else f"Not yet: {problem}"))
        return problem is None

    def hint(self) -> None:
        print(f"{self.name}, hint: {self.hint_text}")

    def solution(self) -> None:
        if not solutions_shown():
            print(f"{self.name}: the solutions are with your teacher in this version.")
            return
        print(f"{self.name}, a solution:\n" + textwrap.indent(self.solution_code.strip(), "    "))

    def solve(self) -> object:
        """Run the solution and return its ``answer`` (what the tests check)."""
        namespace: dict = {}
        exec(compile(self.solution_code, f"<{self.name} solution>", "exec"), namespace)
        return namespace["answer"]
