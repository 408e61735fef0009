"""Mutation score of the handler tests: mutate the handler modules (_lambda) one change at a time, run the tests that
execute the changed line, count the mutants they kill.

    .venv/bin/python bench/mutation.py [--module import|sweeper|keywriter|...]... [--limit N] [--every K] [--only ID...]
                                       [--tests PATH...] [--json FILE]

Dependency-free (ast): flips comparisons, negates if/while/ternary/comprehension conditions and each and/or operand,
swaps and/or, replaces True/False/None/numbers, deletes statements. Each mutant is written into a copy of _lambda in a
temporary folder that the tests load instead (CERTFLEET_LAMBDA_DIR, honoured by tests/handler/handler_support.py).
A first run traces which test executes which handler line (sys.settrace, the tests' threads too); each mutant then
runs only those tests, quickest first, with ``-x`` and a timeout. Mutants inside LOG calls (and deleted LOG lines) and
inside f-strings are message-only: counted apart and not run. Strings are not mutated (messages, AWS names).
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAMBDA = ROOT / "constructs" / "certfleet" / "_lambda"
MODULES = {"import": "certfleet_import.py", "keywriter": "certfleet_keywriter.py",
           "keyversion": "certfleet_keyversion.py", "common": "certfleet_common.py", "sweeper": "certfleet_sweeper.py"}
FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}
DELETABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Raise, ast.If)

TRACER = '''
import json, os, sys, threading, time
_DIR = os.environ["MUTATION_TRACE_DIR"]
_OUT = os.environ["MUTATION_TRACE_OUT"]
_now = {"lines": None}
_tests = {}

def _local(frame, event, arg):
    if event == "line" and _now["lines"] is not None:
        _now["lines"].add((os.path.basename(frame.f_code.co_filename), frame.f_lineno))
    return _local

def _global(frame, event, arg):
    return _local if frame.f_code.co_filename.startswith(_DIR) else None

def pytest_configure(config):
    sys.settrace(_global)
    threading.settrace(_global)

def pytest_runtest_logstart(nodeid, location):
    _now["lines"], _now["start"] = set(), time.monotonic()

def pytest_runtest_logfinish(nodeid, location):
    lines = {}
    for name, line in _now["lines"] or ():
        lines.setdefault(name, []).append(line)
    _tests[nodeid] = {"duration": time.monotonic() - _now["start"], "lines": lines}
    _now["lines"] = None

def pytest_unconfigure(config):
    sys.settrace(None)
    with open(_OUT, "w") as out:
        json.dump(_tests, out)
'''


@dataclass
class Mutant:
    """One change to one module: where, what, and whether it can only change a message."""

    ident: str
    file: str
    line: int
    end_line: int
    what: str
    message_only: bool
    module_level: bool


class Mutator(ast.NodeTransformer):
    """Walks a module in a fixed order, numbering every mutation it could make; applies number ``target`` only."""

    def __init__(self, file: str, target: int = -1) -> None:
        self.file, self.target, self.count = file, target, 0
        self.found: list[Mutant] = []
        self.in_log = 0
        self.depth = 0

    def _site(self, node: ast.AST, what: str, *, message: bool = False) -> bool:
        """Record a mutation site; True when it is the one to apply."""
        index = self.count
        self.count += 1
        line = int(getattr(node, "lineno", 0))
        self.found.append(Mutant(
            f"{Path(self.file).stem.removeprefix('certfleet_')}:{index}", self.file, line,
            int(getattr(node, "end_lineno", None) or line), what, message or self.in_log > 0, self.depth == 0,
        ))
        return index == self.target

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.depth += 1
        node.body = self._body(node.body)
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        self.depth -= 1
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        if node.exc is not None:
            node.exc = self.visit(node.exc)
        return node  # not ``from None``: the cause only shapes the traceback

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node  # f-strings: messages

    def visit_Call(self, node: ast.Call) -> ast.AST:
        log = isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
            and node.func.value.id == "LOG"
        self.in_log += log
        self.generic_visit(node)
        self.in_log -= log
        return node

    def _body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for index, statement in enumerate(body):
            docstring = index == 0 and isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            if isinstance(statement, DELETABLE) and not docstring:
                log = isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call) \
                    and isinstance(statement.value.func, ast.Attribute) \
                    and isinstance(statement.value.func.value, ast.Name) and statement.value.func.value.id == "LOG"
                if self._site(statement, f"delete `{ast.unparse(statement).splitlines()[0]}`", message=log):
                    out.append(ast.copy_location(ast.Pass(), statement))
                    continue
            out.append(self.visit(statement))
        return out

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for field in ("body", "orelse", "finalbody"):
            value = getattr(node, field, None)
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt) and self.depth > 0:
                setattr(node, field, self._body(value))
        for field, value in ast.iter_fields(node):
            if field in ("body", "orelse", "finalbody") and self.depth > 0 and isinstance(value, list) \
                    and value and isinstance(value[0], ast.stmt):
                continue
            if isinstance(value, list):
                setattr(node, field, [self.visit(v) if isinstance(v, ast.AST) else v for v in value])
            elif isinstance(value, ast.AST):
                setattr(node, field, self.visit(value))
        return node

    def _negate(self, node: ast.expr, where: str) -> ast.expr:
        if self._site(node, f"negate {where} `{ast.unparse(node)}`"):
            return ast.copy_location(ast.UnaryOp(op=ast.Not(), operand=node), node)
        return node

    def visit_If(self, node: ast.If) -> ast.AST:
        node.test = self._negate(node.test, "if")
        return self.generic_visit(node)

    def visit_While(self, node: ast.While) -> ast.AST:
        node.test = self._negate(node.test, "while")
        return self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        node.test = self._negate(node.test, "ternary")
        return self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        node.ifs = [self._negate(test, "filter") for test in node.ifs]
        return self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        if self._site(node, f"swap and/or in `{ast.unparse(node)}`"):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        node.values = [self._negate(value, "operand") for value in node.values]
        return self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        for index, op in enumerate(node.ops):
            flipped = FLIP[type(op)]()
            if self._site(node, f"`{ast.unparse(node)}`: {type(op).__name__} -> {type(flipped).__name__}"):
                node.ops[index] = flipped
        return self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value: Any = node.value
        if isinstance(value, bool):
            new: Any = not value
        elif value is None:
            new = True
        elif isinstance(value, int | float):
            new = value + 1
        else:
            return node  # strings (messages, AWS names), bytes, Ellipsis
        if self._site(node, f"{value} -> {new}"):
            return ast.copy_location(ast.Constant(new), node)
        return node


def mutants(file: str) -> list[Mutant]:
    walker = Mutator(file)
    walker.visit(ast.parse((LAMBDA / file).read_text()))
    return walker.found


def mutated_source(file: str, index: int) -> str:
    tree = ast.parse((LAMBDA / file).read_text())
    walker = Mutator(file, index)
    return ast.unparse(ast.fix_missing_locations(walker.visit(copy.deepcopy(tree))))


def pytest_command(tests: list[str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *extra]


def coverage_map(tests: list[str]) -> dict[str, Any]:
    """Which test runs which handler line, and how long it takes: traced once, cached by sources and tests."""
    digest = hashlib.sha256()
    for path in [*sorted(LAMBDA.glob("*.py")), *sorted((ROOT / "tests" / "handler").glob("*.py"))]:
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(" ".join(tests).encode())
    cache = Path(tempfile.gettempdir()) / f"certfleet-mutation-{digest.hexdigest()[:16]}.json"
    if cache.exists():
        return dict(json.loads(cache.read_text()))
    with tempfile.TemporaryDirectory() as work:
        Path(work, "_mutation_trace.py").write_text(TRACER)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([work, os.environ.get("PYTHONPATH", "")]),
               "MUTATION_TRACE_DIR": str(LAMBDA), "MUTATION_TRACE_OUT": str(cache), "CERTFLEET_LAMBDA_DIR": str(LAMBDA)}
        print(f"tracing {' '.join(tests)} once ...", flush=True)
        done = subprocess.run(pytest_command(tests, "-p", "_mutation_trace"), cwd=ROOT, env=env, check=False,
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"the unmutated tests fail; fix them first:\n{done.stdout[-3000:]}")
    return dict(json.loads(cache.read_text()))


def covering(mutant: Mutant, traced: dict[str, Any]) -> list[str]:
    """The tests that execute the mutant's lines, quickest first (module-level code: every test)."""
    lines = set(range(mutant.line, mutant.end_line + 1))
    chosen = [test for test, seen in traced.items()
              if mutant.module_level or lines & set(seen["lines"].get(mutant.file, []))]
    return sorted(chosen, key=lambda test: traced[test]["duration"])


def run(mutant: Mutant, tests: list[str], traced: dict[str, Any], timeout: float | None) -> str:
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work, "lambda")
        shutil.copytree(LAMBDA, folder, ignore=shutil.ignore_patterns("__pycache__"))
        (folder / mutant.file).write_text(mutated_source(mutant.file, int(mutant.ident.split(":")[1])))
        env = {**os.environ, "CERTFLEET_LAMBDA_DIR": str(folder), "PYTHONDONTWRITEBYTECODE": "1"}
        limit = timeout or 60 + 3 * sum(traced[t]["duration"] for t in tests)
        with subprocess.Popen(pytest_command(tests, "-x"), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True) as child:
            try:
                code = child.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)  # pytest and its moto_server
                child.wait()
                return "timeout"
        return "survived" if code == 0 else "killed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=sorted(MODULES), help="only these (repeatable)")
    parser.add_argument("--limit", type=int, help="run at most N mutants")
    parser.add_argument("--every", type=int, default=1, help="run every K-th mutant only: a systematic sample")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutant ids (e.g. import:12)")
    parser.add_argument("--tests", nargs="+", default=["tests/handler"], help="test paths (default tests/handler)")
    parser.add_argument("--timeout", type=float, help="seconds per mutant (default: 60 + 3x its tests' time)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--json", type=Path, help="write every result to this file")
    args = parser.parse_args()
    found = [m for name in (args.module or sorted(MODULES)) for m in mutants(MODULES[name])]
    if args.list:
        for m in found:
            print(f"{m.ident:14} {m.file}:{m.line} {'[message] ' if m.message_only else ''}{m.what}")
        return
    message = [m for m in found if m.message_only]
    chosen = [m for m in found if not m.message_only and (not args.only or m.ident in args.only)]
    chosen = chosen[::args.every][:args.limit] if args.limit else chosen[::args.every]
    traced = coverage_map(args.tests)
    results: dict[str, str] = {}
    started = time.monotonic()
    for number, m in enumerate(chosen, 1):
        tests = covering(m, traced)
        results[m.ident] = run(m, tests, traced, args.timeout) if tests else "not covered"
        print(f"[{number}/{len(chosen)}] {results[m.ident]:11} {m.ident:14} {m.file}:{m.line} {m.what}", flush=True)
    count = {k: sum(1 for r in results.values() if r == k) for k in ("killed", "survived", "not covered", "timeout")}
    print(f"\nmutants: {len(found)} ({len(message)} message-only, not run); run: {len(chosen)} "
          f"in {time.monotonic() - started:.0f} s")
    print("killed: {killed}, survived: {survived}, not covered: {not covered}, timed out: {timeout}".format(**count))
    survivors = [m for m in chosen if results[m.ident] in ("survived", "not covered")]
    for m in survivors:
        print(f"  {results[m.ident]:11} {m.ident:14} {m.file}:{m.line} {m.what}")
    if chosen:
        print(f"score: {(count['killed'] + count['timeout']) / len(chosen):.1%} "
              "(killed + timed out, of the mutants run)")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "mutants": [vars(m) for m in found]}, indent=1))


if __name__ == "__main__":
    main()
