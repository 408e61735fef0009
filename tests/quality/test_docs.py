"""The API reference: ``mkdocs build --strict`` passes, and the public surface documents every keyword's default.

The site (mkdocs.yml, docs/) is built into a temporary folder; a broken cross-reference or a griffe warning (a
documented parameter that is not in the signature, say) fails the build. The public surface is what the API pages
show: the ``__all__`` of ``certfleet``, ``certfleet.ec2``, ``certfleet.monitoring`` and ``certfleet.testing``.
Each of its classes, functions, methods and properties has a docstring; each constructor keyword has an entry
under ``Args:`` (Google style, in the class or ``__init__`` docstring), and a keyword that has a default says it as
aws-cdk's ``@default`` does: ``Default: <value>`` (the word is matched in any case).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "constructs"
MKDOCS_YML = ROOT / "mkdocs.yml"
# page of the API reference -> the module it documents
PAGES = {
    "api/certfleet": "certfleet",
    "api/ec2": "certfleet.ec2",
    "api/monitoring": "certfleet.monitoring",
    "api/testing": "certfleet.testing",
}
DEFAULT = re.compile(r"\bdefault:\s*\S", re.IGNORECASE)
NOT_KEYWORDS = {"self", "cls", "scope", "id"}
BUILD_TIMEOUT = 300

if TYPE_CHECKING:  # pragma: no cover
    import griffe


def _declared() -> bool:
    """Whether pyproject.toml's dev extra asks for the docs tools (then CI has them, or its setup is broken)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    return any(re.match(r"mkdocstrings\b", requirement) for requirement in extras.get("dev", []))


def _require(*modules: str) -> None:
    """Skip without the docs tools, unless CI runs (``CI`` set) and the dev extra declares them: then fail."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        message = f"docs tools not installed ({', '.join(missing)}): pip install -e '.[dev]'"
        if os.environ.get("CI") and _declared():
            pytest.fail(message)
        pytest.skip(message)


def _griffe() -> Any:
    _require("griffe")
    import griffe

    return griffe


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` in a child process (its own logging), with a hard timeout."""
    _require("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False,
    )


def _warnings(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stdout + result.stderr).splitlines()
    return "\n".join(line for line in lines if "WARNING" in line or "ERROR" in line or "Error" in line)


# --- the public surface and what its docstrings must say -------------------------------------------------------


def load(package: str, search_path: Path) -> Any:
    """The package as griffe reads it statically (what mkdocstrings renders), aliases resolved within it."""
    griffe = _griffe()
    return griffe.load(package, search_paths=[str(search_path)], resolve_aliases=True, resolve_implicit=False)


def _target(member: griffe.Object | griffe.Alias) -> griffe.Object:
    """The object itself, or what an alias (an import, an inherited member) finally points to."""
    target = member.final_target if isinstance(member, _griffe().Alias) else member
    return cast("griffe.Object", target)


def public_members(module: griffe.Module) -> Iterator[griffe.Object]:
    """The module's public objects: its ``__all__`` if it has one, else its own public names; no submodules."""
    for member in module.members.values():
        if member.is_public and not member.is_module:
            yield _target(member)


def _documented(docstrings: list[griffe.Docstring | None], *, attributes: bool = False) -> dict[str, str]:
    """Parameter name -> description, from the Args (Google style) of ``docstrings``."""
    griffe = _griffe()
    kinds = {griffe.DocstringSectionKind.parameters, griffe.DocstringSectionKind.other_parameters}
    if attributes:
        kinds.add(griffe.DocstringSectionKind.attributes)
    documented: dict[str, str] = {}
    for docstring in docstrings:
        for section in docstring.parse("google") if docstring is not None else ():
            if section.kind in kinds:
                documented.update({item.name: item.description for item in section.value})
    return documented


def _keyword_problems(path: str, parameters: griffe.Parameters, documented: dict[str, str], *,
                      keyword_only: bool) -> Iterator[str]:
    """Each keyword of ``parameters`` (only the keyword-only ones when ``keyword_only``) lacking meaning or default."""
    for parameter in parameters:
        name, kind = parameter.name, parameter.kind.name
        if name in NOT_KEYWORDS or name.startswith("_") or kind in {"var_positional", "var_keyword"}:
            continue
        if keyword_only and kind != "keyword_only":
            continue
        description = documented.get(name, "").strip()
        if not description:
            yield f"{path}: keyword {name!r} is not documented under Args"
        elif parameter.default is not None and not DEFAULT.search(description):
            yield f"{path}: keyword {name!r} (default {parameter.default}) does not say 'Default: ...' in Args"


def _constructor_problems(cls: griffe.Class) -> Iterator[str]:
    """Every constructor parameter but scope and id, documented in the class's or ``__init__``'s Args."""
    if any(str(base).endswith("Enum") for base in cls.bases):
        return
    init = cls.members.get("__init__")
    documented = _documented([cls.docstring, init.docstring if init is not None else None],
                             attributes="dataclass" in cls.labels)
    yield from _keyword_problems(cls.path, cls.parameters, documented, keyword_only=False)


def _member_problems(cls: griffe.Class) -> Iterator[str]:
    """Public methods and properties (the package's own, inherited ones included) with a docstring and keywords."""
    griffe = _griffe()
    package = cls.path.split(".")[0]
    for name, member in cls.all_members.items():  # inherited from the package's own bases too, not from aws_cdk
        target = _target(member)
        if not member.is_public or name.startswith("__") or target.path.split(".")[0] != package:
            continue
        if isinstance(target, griffe.Function) or "property" in target.labels:
            what = "property" if "property" in target.labels else "method"
            if target.docstring is None or not target.docstring.value.strip():
                yield f"{cls.path}.{name}: {what} has no docstring"
        if isinstance(target, griffe.Function) and "property" not in target.labels:
            yield from _keyword_problems(f"{cls.path}.{name}", target.parameters, _documented([target.docstring]),
                                         keyword_only=True)


def problems(objects: list[griffe.Object]) -> list[str]:
    """Every gap in the docstrings of ``objects``: a class, function, method or property without one; a constructor
    keyword, or a keyword-only parameter of a function or method, without an Args entry, or whose entry does not
    state its default."""
    griffe = _griffe()
    found: list[str] = []
    for obj in objects:
        if not isinstance(obj, griffe.Class | griffe.Function):
            continue
        if obj.docstring is None or not obj.docstring.value.strip():
            found.append(f"{obj.path}: {obj.kind.value} has no docstring")
        if isinstance(obj, griffe.Class):
            found.extend(_constructor_problems(obj))
            found.extend(_member_problems(obj))
        else:
            found.extend(_keyword_problems(obj.path, obj.parameters, _documented([obj.docstring]), keyword_only=True))
    return found


def surface() -> dict[str, list[Any]]:
    """Module path -> the public objects its API page shows."""
    package = load("certfleet", SOURCE)
    modules = {path: package if path == "certfleet" else package[path.removeprefix("certfleet.")]
               for path in PAGES.values()}
    return {path: list(public_members(module)) for path, module in modules.items()}


# --- the real site ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_site_builds_with_strict_and_shows_every_public_object(tmp_path: Path) -> None:
    result = _build(MKDOCS_YML, tmp_path / "site")
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{_warnings(result) or result.stderr[-3000:]}"
    exposed = surface()
    missing = []
    for page, module in PAGES.items():
        html = (tmp_path / "site" / page / "index.html").read_text()
        ids = [f"{module}.{obj.name}" for obj in exposed[module]]
        missing += [f"{page}: {anchor}" for anchor in ids if f'id="{anchor}"' not in html]
    assert not missing, "objects of the public surface missing from their API page:\n" + "\n".join(missing)
    assert (tmp_path / "site" / "facts" / "index.html").is_file()


def test_public_surface_documents_every_keyword_with_its_default() -> None:
    exposed = surface()
    assert all(exposed.values()), f"a public module shows nothing: {exposed}"
    found = [problem for objects in exposed.values() for problem in problems(objects)]
    assert not found, f"{len(found)} documentation gaps in the public surface:\n" + "\n".join(sorted(found))


# --- the gates can fail -----------------------------------------------------------------------------------------

def _sample_source(*, complete: bool, unknown_parameter: bool = False) -> str:
    """A small package; ``complete`` documents everything, ``unknown_parameter`` documents one that does not exist."""
    size = "How big. Default: 3." if complete else "How big."
    shape = '\n        shape: Its outline. (default: ``"round"``)' if complete else ""
    area = '"""Size squared."""' if complete else "# no docstring"
    grow = "\n\n        Args:\n            twice: Twice ``amount``. Default: False.\n        " if complete else ""
    turns = "turn" if unknown_parameter else "turns"
    return textwrap.dedent('''\
        """A sample package for the docs gate."""


        class Widget:
            """A widget.

            Args:
                size: {size}
                colour: What colour.{shape}
            """

            def __init__(self, *, size: int = 3, colour: str, shape: str = "round") -> None:
                self.size = size

            @property
            def area(self) -> int:
                {area}
                return self.size * self.size

            def grow(self, amount: int = 1, *, twice: bool = False) -> None:
                """Make it bigger.{grow}"""


        def spin(turns: int, *, clockwise: bool = True) -> None:
            """Spin.

            Args:
                {turns}: How many turns.
                clockwise: Which way. Default: True.
            """
        ''').format(size=size, shape=shape, area=area, grow=grow, turns=turns)


def _sample(tmp_path: Path, *, broken: bool) -> Path:
    """A one-page site with the real site's settings over a sample package; ``broken`` adds two defects."""
    _require("yaml")
    import yaml  # type: ignore[import-untyped]  # comes with mkdocs

    package = tmp_path / "src" / "sample"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(_sample_source(complete=True, unknown_parameter=broken))
    docs = tmp_path / "docs"
    docs.mkdir()
    link = "[a missing object][sample.Nothing]" if broken else "[the widget][sample.Widget]"
    (docs / "index.md").write_text(f"# Sample\n\nSee {link}.\n\n::: sample\n")
    config = yaml.safe_load(MKDOCS_YML.read_text())
    config.update({"site_name": "sample", "docs_dir": "docs", "nav": ["index.md"]})
    config.pop("hooks", None)
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            plugin["mkdocstrings"]["handlers"]["python"]["paths"] = ["src"]
    target = tmp_path / "mkdocs.yml"
    target.write_text(yaml.safe_dump(config))
    return target


@pytest.mark.slow
def test_strict_build_fails_on_a_broken_reference_and_on_a_griffe_warning(tmp_path: Path) -> None:
    clean = _build(_sample(tmp_path / "clean", broken=False), tmp_path / "clean-site")
    assert clean.returncode == 0, _warnings(clean) or clean.stderr[-3000:]
    broken = _build(_sample(tmp_path / "broken", broken=True), tmp_path / "broken-site")
    output = broken.stdout + broken.stderr
    assert broken.returncode != 0
    assert "Could not find cross-reference target 'sample.Nothing'" in output
    assert "Parameter 'turn' does not appear in the function signature" in output


def test_completeness_check_names_each_gap(tmp_path: Path) -> None:
    (tmp_path / "sample").mkdir()
    (tmp_path / "sample" / "__init__.py").write_text(_sample_source(complete=False))
    found = problems(list(public_members(load("sample", tmp_path))))
    assert sorted(found) == [
        "sample.Widget.area: property has no docstring",
        "sample.Widget.grow: keyword 'twice' is not documented under Args",
        "sample.Widget: keyword 'shape' is not documented under Args",
        "sample.Widget: keyword 'size' (default 3) does not say 'Default: ...' in Args",
    ]


def test_completeness_check_accepts_a_fully_documented_class(tmp_path: Path) -> None:
    (tmp_path / "sample").mkdir()
    (tmp_path / "sample" / "__init__.py").write_text(_sample_source(complete=True))
    assert problems(list(public_members(load("sample", tmp_path)))) == []
