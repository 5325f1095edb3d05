"""Load a .nn file with its imports into one table of blocks and models."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from nngraph.core.ir import reachable
from nngraph.errors import SOURCES, NNError, Span
from nngraph.syntax import ast
from nngraph.syntax.parser import parse, parse_file


@dataclass
class Program:
    main: str
    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    models: dict[str, ast.ModelDef] = field(default_factory=dict)
    trains: dict[str, ast.TrainDef] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    imports: dict[str, set[str]] = field(default_factory=dict)  # file -> the files it imports

    def sees(self, here: str, there: str) -> bool:
        """Whether a block or model in file `here` may call a block of file `there`: its own
        file and the files it imports, directly or through them (not the files importing it)."""
        return _key(there) in reachable([_key(here)], lambda f: self.imports.get(f, ()))

    def source_hash(self) -> str:
        h = hashlib.sha256()
        for f in self.files:
            h.update(SOURCES.get(f, "").encode())
        return h.hexdigest()


def load_file(path: str | Path) -> Program:
    path = Path(path)
    if path.is_dir():
        raise NNError(f"{path} is a directory, not a .nn file", expected="a .nn file")
    if not path.is_file():
        raise NNError(f"file not found: {path}").suggest_file(path)
    prog = Program(str(path))
    _load(prog, parse_file(path), [])
    _check_trains(prog)
    return prog


def load_text(text: str, file: str = "<string>") -> Program:
    prog = Program(file)
    _load(prog, parse(text, file), [])
    _check_trains(prog)
    return prog


def _check_trains(prog: Program) -> None:
    """Every train section names a model that exists (a typo would otherwise surface only as
    'no train section' for the real model)."""
    for t in prog.trains.values():
        if t.name not in prog.models:
            raise NNError(
                f"train section for unknown model '{t.name}'",
                t.span,
                expected="the name of a model: " + ", ".join(sorted(prog.models))
                if prog.models
                else "a model",
            ).suggest(t.name, prog.models)


def _key(file: str) -> str:
    return file if file.startswith("<") else str(Path(file).resolve())


def _load(prog: Program, mod: ast.Module, stack: list[str]) -> None:
    here = _key(mod.file)
    prog.files.append(mod.file)
    prog.imports.setdefault(here, set())
    stack = stack + [here]
    base = Path(mod.file).parent if not mod.file.startswith("<") else Path(".")
    for imp in mod.imports:
        target = (base / imp.path).resolve()
        if str(target) in stack:
            chain = " -> ".join(Path(s).name for s in stack[stack.index(str(target)) :] + [str(target)])
            raise NNError(
                f"import cycle: {chain}", imp.span, expected="imports that do not lead back to this file"
            )
        if not target.is_file():
            err = NNError(
                f"import '{imp.path}' is a directory (looked for {target})"
                if target.is_dir()
                else f"import not found: '{imp.path}' (looked for {target})",
                imp.span,
                expected="a path relative to this file",
            )
            raise err.suggest_file(target)
        prog.imports[here].add(str(target))
        if str(target) in {_key(f) for f in prog.files}:
            continue  # already loaded through another import
        _load(prog, parse_file(target), stack)
    for b in mod.blocks:
        _define(prog.blocks, b, "block")
    for m in mod.models:
        _define(prog.models, m, "model")
    for t in mod.trains:
        _define(prog.trains, t, "train section for")


def _define(table: dict, item, what: str) -> None:
    if item.name in table:
        first: Span = table[item.name].span
        raise NNError(
            f"duplicate {what} '{item.name}' (first defined at {first})",
            item.span,
            expected=f"a {what} name not used before",
        )
    table[item.name] = item


def pick_model(prog: Program, name: str | None) -> ast.ModelDef:
    if name is not None:
        if name not in prog.models:
            raise NNError(
                f"no model named '{name}' in {prog.main}",
                expected="one of: " + ", ".join(sorted(prog.models))
                if prog.models
                else "a file with a model",
            ).suggest(name, prog.models)
        return prog.models[name]
    main_models = [m for m in prog.models.values() if m.span.file == prog.main]
    if not main_models:
        raise NNError(
            f"{prog.main} defines no model",
            expected="a 'model Name { ... }' section",
        )
    trained = [m for m in main_models if m.name in prog.trains]
    if len(main_models) > 1 and len(trained) == 1:  # the model the file trains
        return trained[0]
    if len(main_models) > 1:
        names = ", ".join(m.name for m in main_models)
        raise NNError(f"{prog.main} defines several models ({names}); choose one with --model NAME")
    return main_models[0]
