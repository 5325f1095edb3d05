"""The `train` section, read into a checked TrainSpec: data, loss, optimizer, schedule, loop settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nngraph.errors import NNError, Span
from nngraph.layers.metrics import METRICS
from nngraph.syntax import ast
from nngraph.training.optimizers import OPTIMIZERS
from nngraph.training.schedules import SCHEDULES
from nngraph.training.settings import AT_LEAST_0, Arg, Setting, defaults

#: The arguments of the other call-like settings (optimizers and schedules declare theirs in their units).
DATA: dict[str, tuple[Arg, ...]] = {"digits": (), "npz": (Arg("path", None),), "csv": (Arg("path", None),)}
EARLY_STOPPING = {"early_stopping": (Arg("metric", "loss"), Arg("patience", 5, AT_LEAST_0))}
DEFAULT_OPTIMIZER, DEFAULT_SCHEDULE = "adam", "constant"
FIELDS = (
    "data",
    "loss",
    "optimizer",
    "batch",
    "epochs",
    "metrics",
    "validation",
    "seed",
    "clip_norm",
    "schedule",
    "early_stopping",
)


@dataclass
class TrainSpec:
    model: str
    span: Span
    targets: list[ast.TargetDecl]
    loss: ast.Expr
    data: Setting
    optimizer: Setting
    schedule: Setting
    batch: int = 32
    epochs: int = 10
    metrics: list[Setting] = field(default_factory=list)
    validation: float = 0.2
    seed: int = 0
    clip_norm: float | None = None
    early_stopping: Setting | None = None


def _value(e: ast.Expr) -> Any:
    if isinstance(e, (ast.Number, ast.String, ast.Bool)):
        return e.value
    if isinstance(e, ast.Neg) and isinstance(e.operand, ast.Number):
        return -e.operand.value
    if isinstance(e, ast.Name):
        return Setting(e.id, {}, e.span)
    if isinstance(e, ast.ListExpr):
        return [_value(i) for i in e.items]
    if isinstance(e, ast.Call):
        if e.args and len(e.args) > 1:
            raise NNError(
                f"'{e.func}' takes name=value settings", e.args[1].span, expected=f"{e.func}(name=value, ...)"
            )
        args = {k.name: _value(k.value) for k in e.kwargs}
        spans = {k.name: k.value.span for k in e.kwargs}
        names = {
            k.name: Span(k.span.file, k.span.line, k.span.column, k.span.line, k.span.column + len(k.name))
            for k in e.kwargs
        }
        if e.args:
            args["_positional"] = _value(e.args[0])
            spans["_positional"] = e.args[0].span
        return Setting(e.func, args, e.func_span, spans, names)
    raise NNError(
        "a setting must be a number, a word, a list or a call", e.span, expected="e.g. adam(lr=1e-3)"
    )


def _setting(
    v: Any, table: Mapping[str, Sequence[Arg]], what: str, span: Span, first: str | None = None
) -> Setting:
    """`v` checked against the arguments its name declares in `table`, with every default filled in."""
    if not isinstance(v, Setting):
        raise NNError(
            f"{what} must be one of {', '.join(table)}", span, expected=f"e.g. {next(iter(table))}(...)"
        )
    if v.name not in table:
        raise NNError(f"unknown {what} '{v.name}'", v.span, expected="one of " + ", ".join(table)).suggest(
            v.name, table
        )
    declared = {a.name: a for a in table[v.name]}
    args = defaults(table[v.name])
    if "_positional" in v.args:
        key = first or next(iter(args), None)
        if key is None:
            raise NNError(f"'{v.name}' takes no arguments", v.span)
        v.args[key] = v.args.pop("_positional")
        if "_positional" in v.spans:
            v.spans[key] = v.spans.pop("_positional")
    for k, val in v.args.items():
        at = v.spans.get(k, v.span)
        if k not in args:
            raise NNError(
                f"'{v.name}' has no setting '{k}'",
                v.name_spans.get(k, at),
                expected="one of " + ", ".join(args) if args else "none",
            ).suggest(k, args)
        default = args[k]
        number = isinstance(val, (int, float)) and not isinstance(val, bool)
        kind = {bool: "true or false", float: "a number", int: "an integer"}.get(type(default))
        if (
            isinstance(default, bool)
            and not isinstance(val, bool)
            or (isinstance(default, float) and not number)
            or (type(default) is int and not (number and isinstance(val, int)))
        ):
            raise NNError(f"setting '{k}' of '{v.name}' must be {kind}, got {_shown(val)}", at)
        limit = declared[k].limit
        if limit is not None and number and not limit.test(val):
            raise NNError(
                f"setting '{k}' of '{v.name}' must be {limit.text}, got {_shown(val)}",
                at,
                expected=f"{k} {limit.text}",
            )
        args[k] = float(val) if isinstance(default, float) else val
    return Setting(v.name, args, v.span, v.spans, v.name_spans)


def _shown(val: Any) -> str:
    """A value as the user wrote it in .nn terms, not Python's repr."""
    if isinstance(val, bool):
        return "true" if val else "false"
    if isinstance(val, Setting):
        return val.name
    if isinstance(val, str):
        return f'"{val}"'
    return repr(val)


def read_train(t: ast.TrainDef) -> TrainSpec:
    """Check a train section's settings and fill in defaults."""
    got: dict[str, tuple[Any, ast.Assign]] = {}
    for a in t.settings:
        if a.name not in FIELDS:
            raise NNError(
                f"unknown train setting '{a.name}'", a.span, expected="one of " + ", ".join(FIELDS)
            ).suggest(a.name, FIELDS)
        if a.name in got:
            raise NNError(f"train setting '{a.name}' given twice", a.span, expected="each setting once")
        got[a.name] = (a.value if a.name == "loss" else _value(a.value), a)
    if "loss" not in got:
        raise NNError(
            f"train section for '{t.name}' has no loss",
            t.span,
            expected="loss = cross_entropy(logits, label), for example",
        )
    if "data" not in got:
        raise NNError(
            f"train section for '{t.name}' has no data",
            t.span,
            expected='data = digits, npz("file.npz") or csv("file.csv")',
        )

    def num(name: str, kind: type, default, lo=None, hi=None):
        if name not in got:
            return default
        v, a = got[name]
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (kind is float or isinstance(v, int))
        if not ok or (lo is not None and v < lo) or (hi is not None and v >= hi):
            rng = f" in [{lo}, {hi})" if hi is not None else (f" >= {lo}" if lo is not None else "")
            raise NNError(
                f"train setting '{name}' must be {'an integer' if kind is int else 'a number'}{rng}, got {v!r}",
                a.value.span,
            )
        return kind(v)

    data = _setting(got["data"][0], DATA, "data source", got["data"][1].value.span, first="path")
    if data.name in ("npz", "csv") and not isinstance(data.args.get("path"), str):
        raise NNError(
            f"{data.name}(...) needs a file name", data.span, expected=f'{data.name}("file.{data.name}")'
        )
    optimizers = {name: o.args for name, o in OPTIMIZERS.items()}
    opt = (
        _setting(got["optimizer"][0], optimizers, "optimizer", got["optimizer"][1].value.span, first="lr")
        if "optimizer" in got
        else Setting(DEFAULT_OPTIMIZER, defaults(OPTIMIZERS[DEFAULT_OPTIMIZER].args), t.span)
    )
    schedules = {name: sch.args for name, sch in SCHEDULES.items()}
    sched = (
        _setting(got["schedule"][0], schedules, "schedule", got["schedule"][1].value.span)
        if "schedule" in got
        else Setting(DEFAULT_SCHEDULE, defaults(SCHEDULES[DEFAULT_SCHEDULE].args), t.span)
    )
    metrics: list[Setting] = []
    if "metrics" in got:
        v, a = got["metrics"]
        for m in v if isinstance(v, list) else [v]:
            if not isinstance(m, Setting) or m.name not in METRICS:
                name = m.name if isinstance(m, Setting) else repr(m)
                err = NNError(
                    f"unknown metric {name}",
                    getattr(m, "span", a.value.span),
                    expected="one of " + ", ".join(METRICS),
                )
                raise err.suggest(name, METRICS) if isinstance(m, Setting) else err
            metrics.append(m)
    early = None
    if "early_stopping" in got:
        v, a = got["early_stopping"]
        early = (
            _setting(v, EARLY_STOPPING, "early_stopping", a.value.span, first="metric")
            if isinstance(v, Setting) and v.name == "early_stopping"
            else None
        )
        if early is None:
            raise NNError("early_stopping must be early_stopping(metric=..., patience=N)", a.value.span)
        m = early.args["metric"]
        early.args["metric"] = m.name if isinstance(m, Setting) else m
        watched = ["loss", *metric_names(metrics)]
        if early.args["metric"] not in watched:
            raise NNError(
                f"early_stopping watches '{early.args['metric']}', which is not measured",
                early.spans.get("metric", early.span),
                expected="loss"
                + "".join(f" or {w}" for w in watched[1:])
                + " (metrics = [...] measures more)",
            ).suggest(str(early.args["metric"]), [*watched, *METRICS])
    spec = TrainSpec(
        model=t.name,
        span=t.span,
        targets=t.targets,
        loss=got["loss"][0],
        data=data,
        optimizer=opt,
        schedule=sched,
        batch=num("batch", int, 32, lo=1),
        epochs=num("epochs", int, 10, lo=1),
        metrics=metrics,
        validation=num("validation", float, 0.2, lo=0.0, hi=1.0),
        seed=num("seed", int, 0, lo=0),
        clip_norm=num("clip_norm", float, None, lo=0.0),
        early_stopping=early,
    )
    check = OPTIMIZERS[
        opt.name
    ].check  # a mistake across its settings, such as sgd's nesterov without momentum
    if check is not None:
        check(opt)
    if spec.clip_norm is not None and spec.clip_norm <= 0:
        raise NNError(
            f"clip_norm must be > 0, got {spec.clip_norm:g}",
            got["clip_norm"][1].value.span,
            expected="clip_norm > 0",
        )
    if early is not None and early.args["metric"] != "loss" and spec.validation == 0:
        raise NNError(
            f"early_stopping watches {early.args['metric']}, which is measured on held-out data, "
            "but validation = 0 holds none out",
            early.spans.get("metric", early.span),
            expected="validation > 0 (e.g. 0.2), or early_stopping(metric=loss)",
        )
    return spec


def data_file(spec: TrainSpec) -> Path | None:
    """The npz/csv file a train section reads, relative to its .nn file; None for bundled data.
    A missing file is reported at the setting that names it."""
    d = spec.data
    if d.name == "digits":
        return None
    path = Path(d.args["path"])
    if not path.is_absolute():
        path = Path(d.span.file).parent / path
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise NNError(
            f"data file {path} {what}",
            d.spans.get("path", d.span),
            expected=f"a .{d.name} file, relative to the .nn file",
        ).suggest_file(path, f"*.{d.name}")
    return path


def metric_names(metrics: list[Setting]) -> list[str]:
    """Each metric's output name: its own, or top_3_accuracy when several top_k_accuracy differ in k."""
    names: list[str] = []
    for m in metrics:
        same = [o for o in metrics if o.name == m.name]
        name = m.name
        if len(same) > 1 and m.name == "top_k_accuracy":
            name = f"top_{m.args.get('k', 5)}_accuracy"
        if name in names:
            raise NNError(f"metric {name} given twice", m.span, expected="each metric once")
        names.append(name)
    return names
