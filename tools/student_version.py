"""Write the student version of the course: the repository as committed, with the exercises'
solutions taken out.

    python tools/student_version.py ../xai-course-student      # or: make student

Copies every tracked file (``git ls-files``) into the new folder, replaces the solution code
of every exercise in ``xai_helpers/exercises/nb*.py`` by a note, and marks the copy
(``xai_helpers/exercises/STUDENT``) so that ``ex.qN.solution()`` says the solutions are with
the teacher. The checks and hints stay: students still learn whether an answer is right and
what is off. The repository itself keeps the full version. The target folder must not exist.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = '"""\n# The solution is with your teacher in the student version.\nanswer = None\n"""'


def strip_solutions(source: str) -> tuple[str, int]:
    """``source`` of an exercises module with the 4th argument of every ``Exercise(...)`` call
    (the solution code, a string literal) replaced by :data:`PLACEHOLDER`."""
    tree = ast.parse(source)
    spans = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Exercise"
                and len(node.args) >= 4 and isinstance(node.args[3], ast.Constant)):
            arg = node.args[3]
            spans.append((arg.lineno, arg.col_offset, arg.end_lineno, arg.end_col_offset))
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    out = source
    for l0, c0, l1, c1 in sorted(spans, reverse=True):
        start, end = offsets[l0 - 1] + c0, offsets[l1 - 1] + c1
        out = out[:start] + PLACEHOLDER + out[end:]
    return out, len(spans)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="the folder to create")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if out.exists():
        parser.error(f"{out} exists; give a new folder (nothing is overwritten)")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for name in files:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    stripped = 0
    for module in sorted((out / "xai_helpers" / "exercises").glob("nb*.py")):
        text, n = strip_solutions(module.read_text())
        module.write_text(text)
        stripped += n
    (out / "xai_helpers" / "exercises" / "STUDENT").write_text(
        "This copy is the student version: the exercises' solutions were taken out.\n")
    print(f"student version -> {out} ({len(files)} files, {stripped} solutions taken out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
