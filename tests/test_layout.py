"""The package's architecture holds: dependencies point one way (no import circles, counting
imports inside functions; type-only imports excepted), no module imports another's private
names, and every module stays readable in one sitting."""

from __future__ import annotations

import ast

from xai_helpers import config

PACKAGE = config.ROOT / "xai_helpers"


def _imports() -> tuple[dict[str, set[str]], list[str]]:
    modules = {p.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", "."): p
               for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    edges, private = {m: set() for m in modules}, []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and getattr(block.test, "id", "") == "TYPE_CHECKING"
                       for n in ast.walk(block)}
        package = name.rsplit(".", 1)[0] if "." in name else ""
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level == 0 or id(node) in typing_only:
                continue
            base = package.split(".")[:len(package.split(".")) - (node.level - 1)] if package \
                else []
            prefix = ".".join([*[b for b in base if b], *(node.module.split(".")
                                                          if node.module else [])])
            targets = [prefix] if prefix in modules else [
                f"{prefix}.{a.name}".strip(".") for a in node.names
                if f"{prefix}.{a.name}".strip(".") in modules]
            for target in targets:
                edges[name].add(target)
                private += [f"{name} imports {target}.{a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    return edges, private


def test_no_import_circles():
    edges, _ = _imports()
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        seen[module] = 1
        for target in sorted(edges[module]):
            assert seen.get(target) != 1, "import circle: " + " -> ".join(
                [*path[path.index(target):], target] if target in path else [*path, target])
            if target not in seen:
                visit(target, [*path, target])
        seen[module] = 2

    for module in sorted(edges):
        if module not in seen:
            visit(module, [module])


def test_no_module_imports_private_names_of_another():
    _, private = _imports()
    assert not private, private


def test_the_foundations_import_nothing_above_them():
    """config, checks and registry are the bottom: they import no other module of the course."""
    edges, _ = _imports()
    for bottom in ("config", "checks", "registry"):
        assert edges[bottom] <= {"config"}, (bottom, edges[bottom])


# The README's table, bottom first: a module imports from its own layer or the ones below.
LAYERS = [
    {"config", "checks", "hooks", "data", "digits", "plots"},
    {"registry", "gcm", "gcm_models", "architectures", "checkpoints", "models"},
    {"scoring", "training.loop", "training.augment", "training.distill", "training.swa",
     "train", "verify"},
    {"contribution", "occlusion", "filter_search", "gcm_analysis", "cav", "cav_rules",
     "cav_analysis", "two_animals", "pruning", "class_maps", "methods", "decline",
     "faithfulness", "ranking", "explore"},
    {"figures", "viz", "widgets", "explore_view"},
    {"exercises"},  # every exercises.nbNN module: the checks use everything below
]


def test_dependencies_point_down_the_readmes_layers():
    edges, _ = _imports()
    layer = {m: i for i, ms in enumerate(LAYERS) for m in ms if m != "exercises"}
    layer |= {m: len(LAYERS) - 1 for m in edges if m.startswith("exercises.")}
    assert set(layer) == set(edges), f"modules missing from LAYERS: {set(edges) - set(layer)}"
    upward = [f"{m} ({layer[m]}) imports {t} ({layer[t]})" for m, ts in edges.items()
              for t in ts if layer[t] > layer[m]]
    assert not upward, upward
