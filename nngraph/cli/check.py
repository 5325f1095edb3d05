"""`nngraph check FILE`: parse and check shapes, and a train section's settings, without writing."""

from __future__ import annotations

import argparse

from nngraph.cli.common import compile_args

NAME = "check"
HELP = "parse and check shapes; exit 1 with a positioned error"
SOURCE = True


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from nngraph.frontend import load_file

    prog = load_file(args.file)
    own = [b for b in prog.blocks.values() if b.span.file == prog.main]
    if not any(m.span.file == prog.main for m in prog.models.values()) and own and args.model is None:
        names = ", ".join(b.name for b in own)
        print(f"{args.file}: ok: blocks {names} parsed (a block's shapes are checked where a model uses it)")
        return 0
    m = compile_args(args)
    trained = ""
    if m.name in m.program.trains:  # its settings, loss and metrics too, without training
        from nngraph.runtime.data import need_samples_first
        from nngraph.training.spec import data_file

        data_file(m.train_spec())
        m.training("eval", level=0)
        step = m.training("step", level=0)  # what training builds: e.g. an lstm needs a fixed length
        for role, names in (("input", step.interface.inputs), ("target", step.interface.targets)):
            for name in names:
                t = step.graph.type(name)
                need_samples_first(role, name, t.shape, t.dtype)
        trained = "; train section ok"
    print(f"{args.file}: ok: model {m.name}, {m.param_count:,} parameters{trained}")
    return 0
