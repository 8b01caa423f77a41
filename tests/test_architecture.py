"""The package's structure: no import cycle among datadiet/ modules (function-level imports
included), and no private name imported across modules. Built from the source with `ast`."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("datadiet", "experiments", "analysis", "benchmarks")


def _module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(package):
    return {_module_name(p): p for p in (ROOT / package).rglob("*.py")}


def _imports(path, name, known):
    """(imported module, imported names) for every import in the file, at any depth."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join(pkg + ([node.module] if node.module else []))
            names = [a.name for a in node.names]
            yield base, names
            for n in names:  # `from datadiet import pergrad` imports a module
                if f"{base}.{n}" in known:
                    yield f"{base}.{n}", []


def import_graph(package="datadiet"):
    modules = _modules(package)
    graph = {}
    for name, path in modules.items():
        deps = set()
        for target, names in _imports(path, name, modules):
            if names and all(f"{target}.{n}" in modules for n in names):
                continue  # `from pkg import submodule`: the submodules are yielded on their own
            # importing a.b.c runs a/__init__ and a/b/__init__ too
            # (the importer's own ancestors are already importing when it runs: they count
            # only when names are taken from them)
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                ancestor = name.startswith(prefix + ".")
                if prefix in modules and prefix != name and (not ancestor or prefix == target):
                    deps.add(prefix)
        graph[name] = deps
    return graph


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_datadiet():
    assert cycles(import_graph("datadiet")) == []


def test_library_never_imports_the_assembled_config():
    graph = import_graph("datadiet")
    importers = sorted(m for m, deps in graph.items() if "datadiet.config" in deps
                       and not m.startswith("datadiet.jobs"))
    assert importers == []


def test_no_private_name_imported_across_modules():
    known = {}
    for package in PACKAGES:
        known.update(_modules(package))
    offenders = []
    for package in PACKAGES:
        for name, path in _modules(package).items():
            for target, names in _imports(path, name, known):
                offenders += [f"{name}: from {target} import {n}" for n in names
                              if n.startswith("_") and n != "__future__" and target != "__future__"]
    assert offenders == []
