"""The command line's structure: one module per command, registered in one list, on shared
arguments declared once (issue 14), so that a new command is one new file."""

from __future__ import annotations

import re
import subprocess
import sys
from types import ModuleType, SimpleNamespace

import pytest
from conftest import ROOT

import nngraph.cli
from nngraph.cli import app
from nngraph.errors import NNError

CLI = ROOT / "nngraph" / "cli"
NOT_COMMANDS = {"__init__", "__main__", "app", "common"}
SHARED = ("file", "--model", "--seed", "-O", "--json", "--device", "--report", "--dump-after", "--disable")
EXTRA = {"draw": ["-o", "x.svg"]}  # a command's required arguments besides FILE


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        rc = app.main(list(argv))
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_every_command_file_is_registered_under_its_file_name():
    files = {p.stem for p in CLI.glob("*.py")} - NOT_COMMANDS
    assert set(app.COMMANDS) == files
    for command in app.commands():
        assert command.NAME == command.__name__.rsplit(".", 1)[1]
        assert command.HELP and isinstance(command.SOURCE, bool)
        assert callable(command.add_arguments) and callable(command.run)


@pytest.mark.parametrize("name", app.COMMANDS)
def test_every_command_has_help(name, capsys):
    rc, out, _ = run_main(capsys, name, "--help")
    assert rc == 0 and out.startswith(f"usage: nngraph {name} ")


def test_top_level_help_lists_the_commands_in_order(capsys):
    rc, out, _ = run_main(capsys, "--help")
    assert rc == 0 and "{" + ",".join(app.COMMANDS) + "}" in out


def test_the_script_entry_and_python_m_reach_the_same_main():
    entry = re.search(r'^nngraph = "([\w.]+):(\w+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert entry and entry.groups() == ("nngraph.cli", "main")
    assert nngraph.cli.main is app.main
    r = subprocess.run([sys.executable, "-m", "nngraph.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage: nngraph" in r.stdout


def test_shared_options_are_declared_only_in_common():
    pattern = re.compile(r"add_argument\(\s*\"(" + "|".join(map(re.escape, SHARED)) + r")\"")
    for path in CLI.glob("*.py"):
        if path.stem != "common":
            assert not pattern.search(path.read_text()), f"{path.name} declares a shared option itself"


@pytest.mark.parametrize("command", app.commands(), ids=lambda c: c.NAME)
def test_source_options_parse_alike_on_every_source_command(command, capsys):
    p = app.parser()
    extra = EXTRA.get(command.NAME, [])
    if not command.SOURCE:
        rc, _, err = run_main(capsys, command.NAME, "m.onnx", "--model", "m")
        assert rc == 2 and "unrecognized arguments: --model m" in err
        return
    args = p.parse_args([command.NAME, "f.nn", "--model", "m", "--seed", "3", *extra])
    assert (args.file, args.model, args.seed, args.fn) == ("f.nn", "m", 3, command.run)
    assert p.parse_args([command.NAME, "f.nn", *extra]).seed is None  # compile_args reads it as 0
    rc, _, err = run_main(capsys, command.NAME, "f.nn", "--seed", "-1", *extra)
    assert rc == 2 and "argument --seed: must be 0 or more, not -1" in err
    helps = {a.dest: a.help for a in p._subparsers._group_actions[0].choices[command.NAME]._actions}
    assert helps["model"] == "which model, when the file defines several"
    assert helps["seed"].startswith("seed of the parameter initialization (default 0")


def test_device_and_json_mean_the_same_wherever_they_appear():
    p = app.parser()
    sub = p._subparsers._group_actions[0].choices
    devices = {n: a.choices for n, s in sub.items() for a in s._actions if a.dest == "device"}
    assert set(devices) == {"train", "eval", "run"} and all(
        c == ["cpu", "cuda", "auto"] for c in devices.values()
    )
    jsons = {n for n, s in sub.items() for a in s._actions if a.dest == "json"}
    assert jsons == {"summary", "train", "eval"}


def fake_command(**over) -> SimpleNamespace:
    """A command as a module defines one: NAME, HELP, SOURCE, add_arguments, run."""
    fields = dict(
        NAME="hello",
        HELP="say hello",
        SOURCE=True,
        add_arguments=lambda p: p.add_argument("--loud", action="store_true"),
        run=lambda args: print(("HELLO" if args.loud else "hello"), args.file, args.model) or 0,
    )
    return SimpleNamespace(**{**fields, **over})


def test_a_new_command_appears_in_the_parser_with_the_shared_options():
    p = app.parser(extra=[fake_command()])
    assert "say hello" in p.format_help()
    args = p.parse_args(["hello", "f.nn", "--model", "m", "--loud"])
    assert (args.file, args.model, args.seed, args.loud) == ("f.nn", "m", None, True)


def test_a_new_command_file_named_in_the_list_runs_through_main(monkeypatch, capsys):
    """What adding nngraph/cli/hello.py and its name in COMMANDS does, errors and exit codes included."""
    module = ModuleType("nngraph.cli.hello")
    vars(module).update(vars(fake_command()))
    monkeypatch.setitem(sys.modules, "nngraph.cli.hello", module)
    monkeypatch.setattr(app, "COMMANDS", (*app.COMMANDS, "hello"))
    assert run_main(capsys, "hello", "f.nn", "--loud") == (0, "HELLO f.nn None\n", "")

    def fail(args):
        raise NNError("no greeting here")

    module.run = fail
    rc, _, err = run_main(capsys, "hello", "f.nn")
    assert rc == 1 and "no greeting here" in err
