"""The front end: a loaded program's model run into a checked graph of primitive operators.

program.py loads a .nn file and its imports; statements.py runs a model's statements (blocks in
blocks.py), expressions.py evaluates expressions and calls, binding.py matches a call's
arguments to a signature, diagnostics.py words the errors of names that do not resolve,
layer_context.py is what a built-in layer builds with, state.py what one build accumulates,
summary.py the layer table. build.py is the entry the compiler and the training step use.
"""

from nngraph.frontend.build import BuiltModel, OpenModel, build_graph, open_model
from nngraph.frontend.program import Program, load_file, load_text
from nngraph.frontend.summary import SummaryRow, summary_dict, summary_text

__all__ = [
    "BuiltModel",
    "OpenModel",
    "Program",
    "SummaryRow",
    "build_graph",
    "load_file",
    "load_text",
    "open_model",
    "summary_dict",
    "summary_text",
]
