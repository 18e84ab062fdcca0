"""Dependencies point one way: kernel, reference data, the permission gate, streams, compositions, the app.

Every module under ``registry/`` is parsed (nothing is imported). A package is the first name below ``registry``
(``registry.projects.figures`` belongs to ``projects``; ``registry.kernel.periods`` is its own package). The checks:
imports go to the same package or a lower layer (within the kernel, the reference layer, the compositions and the
app layer, packages may also import each other); no cycle between packages, nor between modules; an import inside a
function says why on its own line or the line above (``# deferred: …``).

``python -m tests.test_layering`` prints the package edges, the cycles and the imports inside functions.
"""

import ast
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "registry"

LAYERS = {
    "kernel": {"kernel"},
    "reference": {"counties", "pairings"},
    "gate": {"permissions"},
    # Evidence files on any record type: below the streams so that each registers its models with one decorator
    # (@attachable) and its pages use the panel; it knows no stream, only the gate and the registered models.
    "evidence": {"evidence"},
    "streams": {"auth", "projects", "placements", "purchases", "exchanges"},
    "compositions": {"agreements", "reports", "main", "directory", "closing", "findings", "disclosure"},
    "app": {
        "__init__", "cli", "demo", "models",
        "templating", "security", "tasks",
    },
}  # fmt: skip
ORDER = ["kernel", "reference", "gate", "evidence", "streams", "compositions", "app"]
#: Layers whose packages may import each other (a stream may not import another stream).
SHARED_LAYERS = {"kernel", "reference", "compositions", "app"}

#: Imports that go up for a reason that will stay: (module, imported package) -> why.
ALLOWED: dict = {}

#: Known offenders during a restructuring: (module, imported package) pairs allowed to break the layering, or a
#: module alone that may keep local imports without a written reason. Empty: nothing is pending.
ALLOWED_PENDING: set = set()


def layer_of(package: str) -> str:
    for name, packages in LAYERS.items():
        if package in packages:
            return name
    # A new record stream (a package with its own models and views) needs no entry: it is a stream.
    if (ROOT / package / "models.py").exists() and (ROOT / package / "views.py").exists():
        return "streams"
    raise AssertionError(f"registry.{package} is in no layer of tests/test_layering.py LAYERS")


def modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


class Import:
    def __init__(self, module, target, line, local, reason):
        self.module, self.target, self.line, self.local, self.reason = module, target, line, local, reason

    @property
    def edge(self) -> tuple[str, str]:
        return package_of(self.module), package_of(self.target)

    def __str__(self):
        return f"{self.module}:{self.line} imports {self.target}"


def _has_reason(lines: list[str], line: int, import_lines: set[int]) -> bool:
    """A comment on the import's line, or above it (through the imports of the same block)."""
    if "#" in lines[line - 1]:
        return True
    above = line - 1
    while above >= 1 and above in import_lines:
        above -= 1
    return above >= 1 and lines[above - 1].strip().startswith("#")


def imports() -> list[Import]:
    known = modules()
    found = []
    for module, (path, is_package) in known.items():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        tree = ast.parse(source)
        local_nodes = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                local_nodes |= {n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)}
        import_lines = {
            line
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for line in range(node.lineno, node.end_lineno + 1)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    source_module = ".".join(base + ([node.module] if node.module else []))
                else:
                    source_module = node.module or ""
                targets = [
                    f"{source_module}.{alias.name}" if f"{source_module}.{alias.name}" in known else source_module
                    for alias in node.names
                ]
            else:
                continue
            local = node in local_nodes
            reason = _has_reason(lines, node.lineno, import_lines) if local else True
            for target in dict.fromkeys(targets):
                if target == "registry" or target.startswith("registry."):
                    found.append(Import(module, target, node.lineno, local, reason))
    return found


def package_edges(found: list[Import], *, skip_allowed: bool = False) -> dict[str, set[str]]:
    edges = defaultdict(set)
    for imp in found:
        source, target = imp.edge
        if source != target and not (skip_allowed and (imp.module, target) in ALLOWED):
            edges[source].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one package (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return result


def upward(found: list[Import]) -> list[Import]:
    """Imports to a higher layer, or to another package of the same layer where that is not shared."""
    bad = []
    for imp in found:
        source, target = imp.edge
        if source == target or (imp.module, target) in ALLOWED or (imp.module, target) in ALLOWED_PENDING:
            continue
        mine, theirs = ORDER.index(layer_of(source)), ORDER.index(layer_of(target))
        if theirs > mine or (theirs == mine and layer_of(source) not in SHARED_LAYERS):
            bad.append(imp)
    return bad


def test_every_package_has_a_layer():
    for module in modules():
        layer_of(package_of(module))


def test_imports_point_down():
    bad = upward(imports())
    assert not bad, "imports against the layering:\n" + "\n".join(str(i) for i in bad)


def test_no_cycle_between_packages():
    found = [i for i in imports() if (i.module, i.edge[1]) not in ALLOWED_PENDING]
    found_cycles = cycles(package_edges(found, skip_allowed=True))
    assert not found_cycles, f"package cycles: {found_cycles}"


def module_edges(found: list[Import]) -> dict[str, set[str]]:
    """Module -> the modules it imports, at its top or inside a function (a deferred import is still a circle)."""
    known, edges = modules(), defaultdict(set)
    for imp in found:
        if imp.target != imp.module and imp.target in known:
            edges[imp.module].add(imp.target)
    return edges


def test_no_cycle_between_modules():
    """Not even inside a package, nor through imports deferred into functions: the reports package had one
    (batch -> documents -> pdf -> batch), which only deferred imports kept from failing at start-up."""
    found_cycles = cycles(module_edges(imports()))
    assert not found_cycles, f"module cycles: {found_cycles}"


def test_imports_inside_functions_say_why():
    bad = [i for i in imports() if i.local and not i.reason and i.module not in ALLOWED_PENDING]
    assert not bad, "imports inside functions without a reason beside them:\n" + "\n".join(str(i) for i in bad)


def test_pending_exceptions_are_still_needed():
    """An entry of ALLOWED_PENDING that no import needs any more is removed, so the set only shrinks."""
    found = imports()
    used = {(i.module, i.edge[1]) for i in found} | {i.module for i in found if i.local}
    stale = {entry for entry in ALLOWED_PENDING if entry not in used}
    assert not stale, f"ALLOWED_PENDING entries no longer needed: {sorted(stale, key=str)}"


def main(root: Path | None = None) -> None:
    """Print the package edges, the cycles (all imports counted) and the imports inside functions."""
    global ROOT
    if root is not None:
        ROOT = root / "registry"
    found = imports()
    edges = package_edges(found)
    for source in sorted(edges):
        print(f"{source} -> {', '.join(sorted(edges[source]))}")
    print("cycles:", cycles(edges) or "none")
    local = Counter(i.module for i in found if i.local)
    print(f"imports inside functions: {sum(local.values())}")
    for module, count in local.most_common():
        print(f"  {module}: {count}")
    unexplained = [str(i) for i in found if i.local and not i.reason]
    print(f"  without a reason: {len(unexplained)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
