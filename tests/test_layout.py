"""The library's shape: imports point one way, modules stay small, model internals stay in `hacalib.models`.

Read from the source with `ast` (module-level and function-level imports alike), so a lazy import inside a function
cannot hide a cycle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "hacalib"
MAX_LINES = 400
# Names that belong to one model family's implementation (transformers' Video-LLaVA classes and attributes).
MODEL_INTERNALS = re.compile(r"VideoLlava|video_tower|get_video_features|video_token_id")


def _modules() -> dict[str, Path]:
    out = {}
    for f in sorted(ROOT.rglob("*.py")):
        parts = list(f.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """hacalib modules that `name` imports anywhere in its source (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in MODULES:  # `from .x import f` names module x, not x.f
                t = t.rsplit(".", 1)[0] if "." in t else ""
            if t and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    graph = {m: _imports(m, p) for m, p in MODULES.items()}
    # importing a.b.c runs a/__init__ and a/b/__init__ first, but they are not edges of a's own code
    return {m: {t for t in deps if not m.startswith(t + ".")} for m, deps in graph.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_the_import_walk_sees_relative_and_lazy_imports():
    deps = _graph()
    assert "hacalib.models.packing" in deps["hacalib.training.collate"]  # module level, relative
    assert "hacalib.training.pretrain" in deps["hacalib.experiment"]  # inside a method


def test_a_cycle_is_found():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = _find_cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


# A stage may import its own modules and those below it, never one above (the flow of hacalib/__init__.py).
LAYERS = [
    {"hacalib.errors", "hacalib.io", "hacalib.prompts", "hacalib.config", "hacalib.samples", "hacalib.orphans"},
    {"hacalib.data", "hacalib.metrics"},
    {"hacalib.toyworld"},
    {"hacalib.models"},
    {"hacalib.training", "hacalib.scoring", "hacalib.report"},
    {"hacalib.presets", "hacalib.experiment", "hacalib.study", "hacalib.estimates", "hacalib.plan", "hacalib.notebook",
     "hacalib.reproduce", "hacalib.cli", "hacalib.rehearsal", "hacalib.launch", "hacalib.shard_cli"},
]


def _layer(module: str) -> int:
    for i, layer in enumerate(LAYERS):
        if any(module == top or module.startswith(top + ".") for top in layer):
            return i
    raise AssertionError(f"{module} is in no layer of this test: add it")


def test_imports_point_down():
    upward = [(m, t) for m, deps in _graph().items() if m != "hacalib" for t in deps if t != "hacalib"
              and _layer(t) > _layer(m)]
    assert not upward, f"imports that point up the flow: {upward}"


@pytest.mark.parametrize("low, high", [("hacalib.training", "hacalib.scoring"), ("hacalib.scoring", "hacalib.training"),
                                       ("hacalib.report", "hacalib.models"), ("hacalib.report", "hacalib.training")])
def test_stages_do_not_reach_sideways(low, high):
    """Training never runs the scorers (nor the reverse), and reporting never touches a model."""
    reach = [(m, t) for m, deps in _graph().items() if m.startswith(low + ".") for t in deps if t.startswith(high)]
    assert not reach, reach


def test_modules_stay_small():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_model_internals_only_in_models():
    leaks = [f"{m}:{i}" for m, p in MODULES.items() if not m.startswith("hacalib.models")
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if MODEL_INTERNALS.search(line)]
    assert not leaks, f"model-family internals named outside hacalib/models/: {leaks}"


def _bare_minus_100(path: Path) -> list[int]:
    """Lines where the code (not a comment or string) writes the literal -100."""
    import io
    import tokenize

    tokens = [t for t in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
              if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)]
    return [b.start[0] for a, b in zip(tokens, tokens[1:]) if a.string == "-" and b.string == "100"]


def test_ignore_index_defined_once():
    where = [m for m, p in MODULES.items() if re.search(r"^IGNORE_INDEX\s*=", p.read_text(encoding="utf-8"), re.M)]
    assert where == ["hacalib.models.text"]
    bare = {m: lines for m, p in MODULES.items() if (lines := _bare_minus_100(p)) and m != "hacalib.models.text"}
    assert not bare, f"bare -100 labels (use IGNORE_INDEX): {bare}"
