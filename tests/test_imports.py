"""No import cycles between ccmirror's modules, counting imports inside functions."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ccmirror

ROOT = Path(ccmirror.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _walk(node: ast.AST):
    """Every node, but not the body of `if TYPE_CHECKING:` (never executed)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every ccmirror module `name` imports, anywhere in its body (functions too)."""
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in _walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` mod.
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for t in targets:
            while t and t not in known:  # `import a.b.c` where c is a name: a.b
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
                out |= _parents(t, name, known)
    return out


def _parents(target: str, importer: str, known: dict[str, Path]) -> set[str]:
    """The packages importing `target` runs first (`from ccmirror.publish import
    torrents_json` runs ccmirror/publish/__init__.py), but not the importer's own: those
    are already importing when it runs."""
    out = set()
    parent = target.rpartition(".")[0]
    while parent:
        if parent in known and not (importer == parent or importer.startswith(parent + ".")):
            out.add(parent)
        parent = parent.rpartition(".")[0]
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
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


def test_no_import_cycles():
    known = _modules()
    graph = {name: _imports(name, path, known) for name, path in known.items()}
    assert len(graph) > 50 and graph["ccmirror.sync"]  # the walk found the package
    assert _cycles(graph) == []


def test_a_submodule_import_runs_its_package_first(tmp_path):
    # ccmirror.a imports ccmirror.p.m: ccmirror.p's __init__ runs first, and imports a.
    known = {
        "ccmirror.a": tmp_path / "a.py",
        "ccmirror.p": tmp_path / "p" / "__init__.py",
        "ccmirror.p.m": tmp_path / "p" / "m.py",
        "ccmirror.p.n": tmp_path / "p" / "n.py",
    }
    known["ccmirror.p"].parent.mkdir()
    known["ccmirror.a"].write_text("def f():\n    from ccmirror.p import m\n")
    known["ccmirror.p"].write_text("from ccmirror.a import f\n")
    known["ccmirror.p.m"].write_text("from ccmirror.p.n import y\n")  # its own package runs
    known["ccmirror.p.n"].write_text("")
    graph = {n: _imports(n, p, known) for n, p in known.items()}
    assert graph["ccmirror.a"] == {"ccmirror.p", "ccmirror.p.m"}
    assert graph["ccmirror.p.m"] == {"ccmirror.p.n"}
    assert _cycles(graph) == [["ccmirror.a", "ccmirror.p"]]


def test_the_walk_sees_a_cycle_hidden_in_a_function(tmp_path):
    known = {"ccmirror.a": tmp_path / "a.py", "ccmirror.b": tmp_path / "b.py"}
    known["ccmirror.a"].write_text("from ccmirror import b\n")
    known["ccmirror.b"].write_text("def f():\n    from ccmirror.a import x\n")
    graph = {n: _imports(n, p, known) for n, p in known.items()}
    assert _cycles(graph) == [["ccmirror.a", "ccmirror.b"]]


def test_the_command_line_and_the_stages_without_torrents_load_no_libtorrent():
    # `ccmirror --help`, status, fetch and check never touch a torrent (nor does fetch
    # need requests): a fresh interpreter, so nothing imported by other tests counts.
    code = (
        "import sys, ccmirror.cli, ccmirror.budget, ccmirror.follow, ccmirror.fetch,"
        " ccmirror.licence.check; print(sorted({'libtorrent', 'requests'} & set(sys.modules)))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"
    # tqdm comes with the first progress bar, never with `--help`.
    code = "import sys, ccmirror.cli; print('tqdm' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"


def test_the_catalogue_imports_no_stage():
    # SQL lives in catalogue/; the stages call it, never the other way round.
    below = {"ccmirror.errors", "ccmirror.fsutil", "ccmirror.sources", "ccmirror.sources.registry"}
    known = _modules()
    for name, path in known.items():
        if name.startswith("ccmirror.catalogue"):
            outside = {m for m in _imports(name, path, known) if not m.startswith(name[:18])}
            assert outside <= below, (name, outside - below)


def test_the_read_only_commands_load_no_heavy_module(tmp_path):
    # search, status, tiers and plan are interactive: their start-up is part of their
    # time. Each runs in a fresh interpreter; what it loaded is listed at exit.
    from ccmirror.mirror import open_mirror
    from packhelpers import add_item, write_manifest

    manifest = str(write_manifest(tmp_path))
    m = open_mirror(manifest)
    add_item(m, "ia", "x1", popularity=3, title="Quiet Piece")
    m.close()
    heavy = {
        "libtorrent", "internetarchive", "requests", "jinja2", "mutagen", "tqdm", "numpy",
        "soundfile", "urllib3", "importlib.resources", "zipfile", "tempfile",
    }  # fmt: skip
    for args in (
        ["search", manifest, "quiet", "--json"],
        ["status", manifest, "--json"],
        ["tiers", manifest, "--json"],
        ["plan", manifest, "--budget", "1GB", "--json"],
    ):
        code = (
            "import atexit, sys\n"
            f"atexit.register(lambda: print(sorted({heavy!r} & set(sys.modules)),"
            " file=sys.stderr))\n"
            "from ccmirror.cli import main\n"
            f"main({args!r})\n"
        )
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stderr.strip().splitlines()[-1] == "[]", (args[0], r.stderr)
