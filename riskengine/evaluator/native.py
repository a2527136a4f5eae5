"""The fused scoring function compiled to machine code (``Engine(..., native=True)``).

The fused function of a small set (:mod:`riskengine.evaluator.fused`) is Python: reading the
fields a set needs, checking them and evaluating every profile takes about a microsecond a
declaration, most of it the interpreter's own work. With ``native=True`` the engine has the
same function written in Cython (:meth:`FusedScorer.native_source`: the same lines, with the
declaration, its groups and goods items read as exact ``dict``\\s through C, and a number's
range test on its C ``double``) compiled to a C extension, and scores through it. The results
are the same objects the Python function gives (:class:`~riskengine.evaluator.fused.
PendingResult`); whatever the native function does not take (a mapping that is not a ``dict``,
a bad value, a declaration without a date) goes to the general path, as from the Python one.
``tests/test_evaluator_native.py`` checks both give equal results.

What it needs: the ``native`` extra (``pip install 'riskengine[native]'``: Cython and
setuptools), a C compiler and the Python headers (Debian: ``gcc`` and ``python3-dev``). Without
them :func:`problem` says what is missing and ``Engine(..., native=True)`` raises
:class:`NativeUnavailable` saying so; nothing else changes.

Compiling takes a few seconds (Cython, then the C compiler, in a child process so that the
compiler's output and setuptools stay out of the scoring process); it happens when the engine
is made or a set is swapped in, never while scoring. The extension is kept in a folder named by
a key of its source, Cython's version and the interpreter (``RISKENGINE_NATIVE_DIR``, else
``native`` beside the load cache's folder, created private: it holds code that is executed), so
the next process with the same set loads it in milliseconds (at most :data:`KEEP` are kept, the
least recently used removed). With the load cache off
(``RISKENGINE_CACHE_DIR=off``) and no ``RISKENGINE_NATIVE_DIR``, a temporary folder per process.

Each engine gets its own copy of the function: the extension defines ``make(names...)``, which
returns a new ``score`` closed over the names one fused scorer gives (its date memo, its
regional fills), so two sets with the same source never share them.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from riskengine.diagnostics import RiskEngineError
from riskengine.evaluator.cache import default_folder, least_recently_used, prune

if TYPE_CHECKING:
    from riskengine.evaluator.fused import FusedScorer

__all__ = ["ENV", "NativeUnavailable", "compile_scorer", "folder", "module_source", "problem"]

#: The environment variable naming the folder of compiled extensions.
ENV = "RISKENGINE_NATIVE_DIR"
#: The version of the module text below (part of the key).
FORMAT = 1
#: Cython's directives: functions without a Python-level binding (a plain C call), Python's
#: semantics otherwise (negative indexes, bounds, division are Python's).
DIRECTIVES = {"language_level": 3, "binding": False}


def _compiler() -> list[str]:
    """The C compiler's command as setuptools takes it: ``CC``, else the interpreter's."""
    return (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()


def _cflags() -> list[str]:
    """The C compiler's options after the interpreter's own (the last ``-O`` wins): ``-O1``
    without debugging information, and for gcc without its points-to analysis. The fused
    function is one large C function (about 1.8 kB of C per line of Cython); gcc took 73 s for
    the nine samples' at the interpreter's ``-O3 -g``, 25 s at ``-O2``, 14-18 s at ``-O1`` (which
    scores as fast as ``-O2``), 10 s without the points-to analysis, a third of ``-O1``'s time,
    at the same speed (docs/performance.md)."""
    if sys.platform == "win32":
        return []
    flags = ["-O1", "-g0"]
    cc = _compiler()
    if cc and "gcc" in Path(cc[0]).name:
        flags.append("-fno-tree-pta")
    return flags


#: See :func:`_cflags` (part of the key).
CFLAGS = _cflags()
#: How long one compilation may take.
TIMEOUT = 600
#: How many compiled extensions a folder keeps (the least recently used are removed beyond it;
#: the nine samples' is 1.2 MB, the footwear profile's 0.1 MB).
KEEP = 64
_PREFIX = "_riskengine_fused_"

_lock = threading.Lock()
_temporary: Path | None = None


class NativeUnavailable(RiskEngineError):
    """The fused function cannot be compiled here (no Cython, no C compiler, no Python
    headers, or the compiler failed); the message says which."""


def problem() -> str | None:
    """What is missing to compile natively here (``None``: nothing)."""
    if importlib.util.find_spec("Cython") is None:
        return "Cython is not installed (pip install 'riskengine[native]')"
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed (pip install 'riskengine[native]')"
    if sys.platform != "win32":  # on Windows setuptools finds MSVC itself
        include = sysconfig.get_path("include")
        if not (Path(include) / "Python.h").exists():
            return f"the Python headers are not installed (no Python.h in {include}; python3-dev)"
        cc = _compiler()
        if not cc or shutil.which(cc[0]) is None:
            return f"no C compiler ({' '.join(cc) or 'CC'} not found; install gcc or set CC)"
    return None


def folder() -> Path:
    """Where compiled extensions are kept (see the module's documentation)."""
    global _temporary
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    load = default_folder()
    if load is not None:
        return load.parent / "native"
    with _lock:
        if _temporary is None:
            _temporary = Path(tempfile.mkdtemp(prefix="riskengine-native-"))
        return _temporary


def module_source(scorer: FusedScorer) -> tuple[str, list[str], dict[str, Any]]:
    """The Cython module of ``scorer``'s fused function: its text, the names ``make`` takes
    (in order) and the namespace they are taken from."""
    consts, lines, env = scorer.native_source()
    body = "\n".join((*consts, *lines))
    defined = {line.split(" = ", 1)[0] for line in consts}
    words = set(re.findall(r"\b[A-Za-z_]\w*\b", body))
    # what the function reads from the namespace; a builtin it has as itself stays a builtin
    # (Cython compiles type(), len(), isinstance() ... to C)
    names = sorted(
        name
        for name in words & env.keys()
        if name not in defined
        and not name.startswith("__")
        and env[name] is not getattr(builtins, name, _MISSING)
    )
    indent = "    "
    text = "\n".join(
        [
            "# Generated by riskengine: the fused scoring function, native. Do not edit.",
            "cimport cython",
            "",
            f"def make({', '.join(names)}):",
            *(indent + line for line in consts),
            *(indent + line if line else line for line in lines),
            indent + "return score",
            "",
            _ENTRY,
        ]
    )
    return text, names, env


#: ``Engine.score`` of a native engine (the instance's own ``score``): the test that sends data
#: to the fused function, in C; anything else (and anything the fused function refuses: it is
#: then tried once more there, then scored by the general path) goes to ``Engine.score``.
_ENTRY = """
def entry(engine, method, doc):
    @cython.binding(True)
    def score(declaration, as_of=None, *, explain=False, history=None):
        if type(declaration) is dict and explain is False and history is None:
            fast = engine._fast
            if fast is not None:
                try:
                    return fast(declaration, as_of, engine)
                except Exception:
                    pass
        return method(engine, declaration, as_of, explain=explain, history=history)
    score.__doc__ = doc
    score.__annotations__ = dict(method.__annotations__)
    return score
"""


_MISSING = object()


def _key(text: str) -> str:
    h = hashlib.sha256()
    for part in (
        str(FORMAT),
        repr(sorted(DIRECTIVES.items())),
        repr(CFLAGS),
        importlib.metadata.version("Cython"),
        sys.version,
        sys.implementation.cache_tag or "",
        sysconfig.get_platform(),
        importlib.machinery.EXTENSION_SUFFIXES[0],
        text,
    ):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


#: Run in a child process: cythonize the .pyx given and build it in place with setuptools.
_BUILD = """
import json
import sys
from Cython.Build import cythonize
from setuptools import Distribution, Extension
from setuptools.command.build_ext import build_ext
pyx, out, name = sys.argv[1], sys.argv[2], sys.argv[3]
directives, cflags = json.loads(sys.argv[4]), json.loads(sys.argv[5])
modules = cythonize([Extension(name, [pyx], extra_compile_args=cflags)], quiet=True,
                    compiler_directives=directives, build_dir=out)
cmd = build_ext(Distribution({"ext_modules": modules}))
cmd.build_lib = out
cmd.build_temp = out
cmd.finalize_options()
cmd.run()
print(cmd.get_ext_fullpath(name))
"""


def _build(text: str, name: str, target: Path) -> None:
    """Compile ``text`` as the extension module ``name`` into the file ``target`` (written
    under a temporary name in the same folder and renamed: a reader never sees half a file)."""
    problem_now = problem()
    if problem_now is not None:
        raise NativeUnavailable(f"cannot compile the fused function natively: {problem_now}")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as work:
        pyx = Path(work) / f"{name}.pyx"
        pyx.write_text(text, encoding="utf-8")
        options = [json.dumps(DIRECTIVES), json.dumps(CFLAGS)]
        try:
            done = subprocess.run(
                [sys.executable, "-c", _BUILD, str(pyx), work, name, *options],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                cwd=work,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NativeUnavailable(f"compiling the fused function failed: {exc}") from exc
        built = done.stdout.strip().splitlines()[-1:] if done.returncode == 0 else []
        if not built or not Path(built[0]).exists():
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise NativeUnavailable(
                f"compiling the fused function failed (exit {done.returncode}):\n{tail}"
            )
        os.replace(built[0], target)


def _load(name: str, path: Path) -> Any:
    """The extension module ``name`` from ``path`` (not put in ``sys.modules``)."""
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:  # pragma: no cover - a path with an extension suffix always has one
        raise NativeUnavailable(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def compile_scorer(
    scorer: FusedScorer, where: Path | None = None
) -> tuple[Callable[[Any, Any, Any], Any], Callable[..., Any]]:
    """``scorer``'s fused function, compiled (or loaded from ``where``, by default
    :func:`folder`), and the extension's ``entry(engine, method, doc)``, which makes a native
    engine's ``score``; raises :class:`NativeUnavailable` when it cannot be."""
    text, names, env = module_source(scorer)
    key = _key(text)
    name = f"{_PREFIX}{key[:32]}"
    base = folder() if where is None else where
    target = base / f"{name}{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    module = None
    if target.exists():
        with contextlib.suppress(ImportError, OSError):  # unreadable: compiled again below
            module = _load(name, target)
            os.utime(target)  # recently used
    if module is None:
        _build(text, name, target)
        try:
            module = _load(name, target)
        except (ImportError, OSError) as exc:
            raise NativeUnavailable(f"cannot load the compiled fused function: {exc}") from exc
        # the least recently used beyond KEEP (a process that has one loaded keeps using it)
        prune(least_recently_used(base, lambda n: n.startswith(_PREFIX)), target, KEEP)
    score: Callable[[Any, Any, Any], Any] = module.make(*(env[n] for n in names))
    return score, module.entry
