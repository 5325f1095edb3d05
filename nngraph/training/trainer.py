"""The training loop: mini-batches through the compiled step model, held-out evaluation,
checkpoints that resume bit for bit, early stopping, and a NaN guard."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from nngraph.core import dims
from nngraph.core.ir import Graph
from nngraph.errors import NNError
from nngraph.fileio import atomic_write_bytes
from nngraph.frontend import Program, build_graph
from nngraph.layers.metrics import GEOMETRIC, LOWER_IS_BETTER
from nngraph.onnx.lower import check, lower
from nngraph.passes.pipeline import DEFAULT_LEVEL, optimize
from nngraph.runtime import data as datasets
from nngraph.runtime.checkpoint import load_checkpoint, save_checkpoint
from nngraph.runtime.evaluate import file_sha256
from nngraph.runtime.session import ORT_ERRORS, QUIET_RUN, open_session, run_error
from nngraph.runtime.stepper import Stepper, session_options
from nngraph.training.schedules import learning_rate
from nngraph.training.spec import TrainSpec, data_file
from nngraph.training.step import compile_training, noise_arrays


def _batch_term(metric: str, value: float) -> float:
    """What one batch adds to a metric's sum (weighted by its size): perplexity adds its log."""
    return math.log(value) if metric in GEOMETRIC and value > 0 else value


def _average(metric: str, total: float, n: int) -> float:
    """A metric over batches from its sum: the weighted mean; perplexity the exp of its mean log."""
    m = total / max(n, 1)
    return math.exp(m) if metric in GEOMETRIC else m


@dataclass
class Result:
    final_loss: float
    metrics: dict[str, float]
    steps: int
    seconds: float
    samples_per_second: float
    model: str | None
    device: str
    epochs: int
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics_on: str = "held-out"  # or "training", when nothing was held out
    stopped_early: str | None = None  # why early stopping ended the run before its epochs

    def summary(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("history")
        return d


class Trainer:
    """Trains the model of a `train` section. `fit(X, y)` takes arrays for the first input and
    target; without them the section's `data` is used."""

    def __init__(
        self,
        prog: Program,
        spec: TrainSpec,
        seed: int | None = None,
        device: str = "cpu",
        threads: int | None = None,
        out: str | Path | None = None,
        progress: bool = True,
    ):
        self.prog, self.spec = prog, spec
        self.seed = spec.seed if seed is None else seed
        self._seed_given = seed is not None
        self.device, self.threads = device, threads
        self.out = Path(out) if out is not None else None
        self.progress = progress
        # early stopping's state, kept in checkpoints so that a resumed run stops where a straight one would
        self.best: float | None = None
        self.patience_left: int | None = None
        self.stopped_early = False
        self._checkpointed = False  # whether out/checkpoint.npz holds this run's state (or the resumed one)
        self.step_c = compile_training(prog, spec, self.seed, "step")
        self.eval_c = compile_training(prog, spec, self.seed, "eval")
        self.iface = self.step_c.interface
        # batchnorm over [batch, channels] takes one value per channel from a batch of one: its
        # running variance would be 0 * inf; such a batch is skipped (PyTorch raises on it)
        ev = self.eval_c.graph
        self._min_batch = 1 + any(
            ev.node(n)["op"] == "batchnorm" and ev.type(ev.node(n)["inputs"][0]).rank == 2 for n in ev.g
        )
        self.stepper = Stepper(
            self.step_c.to_onnx().SerializeToString(), self.step_c.initial, device, threads
        )
        self.device = self.stepper.device
        ev = self.eval_c.to_onnx()
        self.eval_sess = open_session(
            ev.SerializeToString(), session_options(threads), self.stepper.sess.get_providers(), quiet=False
        )
        self.step = 0
        self.epoch = 0
        self.history: list[dict[str, Any]] = []

    # ---- data ------------------------------------------------------------------------

    def _specs(self) -> tuple[dict, dict]:
        g = self.step_c.graph
        ins = {i: (g.type(i).shape, g.type(i).dtype) for i in self.iface.inputs}
        tg = {t: (g.type(t).shape, g.type(t).dtype) for t in self.iface.targets}
        return ins, tg

    def dataset(self, X=None, y=None) -> datasets.Dataset:
        ins, tg = self._specs()
        for role, specs in (("input", ins), ("target", tg)):  # before loading: their lengths follow
            for name, (shape, dtype) in specs.items():
                datasets.need_samples_first(role, name, tuple(shape), dtype)
        if X is not None:
            if len(ins) != 1 or len(tg) != 1:
                raise NNError("fit(X, y) needs a model with one input and one target; pass a Dataset instead")
            ds = datasets.Dataset({next(iter(ins)): np.asarray(X)}, {next(iter(tg)): np.asarray(y)}, "arrays")
        else:
            d = self.spec.data
            in_names, tg_names = list(ins), list(tg)
            if d.name == "digits":
                shape = next(iter(ins.values()))[0] if len(ins) == 1 else ()
                ds = datasets.load_digits(in_names[0], tg_names[0], flat=len(shape) == 2)
            else:
                path = data_file(self.spec)
                if d.name == "npz":
                    ds = datasets.load_npz(path, in_names, tg_names)
                else:  # a float target (mse, l1, huber) reads its column as numbers, not classes
                    floats = len(tg) == 1 and next(iter(tg.values()))[1].startswith("f")
                    ds = datasets.load_csv(path, in_names, tg_names, float_labels=floats)
        classes = self._num_classes()
        return datasets.check_against(ds, ins, tg, classes)

    def _num_classes(self) -> dict[str, int] | None:
        """Labels of a cross-entropy target must lie in [0, classes), and ids fed to an
        embedding in [0, rows) (onnxruntime would stop mid-epoch on the first bad one)."""
        g = self.eval_c.graph
        out = {}
        for n in g.g:
            d = g.node(n)
            if d["op"] == "one_hot" and d["inputs"][0] in self.iface.targets:
                out[d["inputs"][0]] = d["attrs"]["depth"]
            if d["op"] == "embedding" and d["inputs"][1] in self.iface.inputs:
                rows = g.type(d["inputs"][0]).shape[0]
                out[d["inputs"][1]] = min(rows, out.get(d["inputs"][1], rows))
        return out or None

    def _noise(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.iface.noise:
            return {}
        g = self.step_c.graph
        names = self.iface.inputs + self.iface.targets
        rng = np.random.default_rng([self.seed, self.step, 7])  # a function of the step: resumable
        return noise_arrays(
            g, self.iface.noise, dims.bind([g.type(n).shape for n in names], [feeds[n] for n in names]), rng
        )

    # ---- loop ------------------------------------------------------------------------

    def resume(self, path: str | Path) -> None:
        arrays, meta = load_checkpoint(path)
        if meta.get("source_sha256") not in (None, self.step_c.graph.source_hash):
            print("warning: the checkpoint was made from a different source", file=sys.stderr)
        _check_fits(arrays, self.step_c.initial, path, self.spec.model)
        saved = meta.get("seed")
        if saved is not None and int(saved) != self.seed:
            if self._seed_given:  # the split, batch order and dropout masks all follow the seed
                raise NNError(
                    f"the checkpoint {path} was trained with seed {saved}, not {self.seed}",
                    hint=f"resume with --seed {saved} (or without --seed): another seed would change the "
                    "held-out split, and held-out scores would include samples training has seen",
                )
            self.seed = int(saved)
        self.stepper = Stepper(self.step_c.to_onnx().SerializeToString(), arrays, self.device, self.threads)
        self.step, self.epoch = int(meta["step"]), int(meta["epoch"])
        self.history = list(meta.get("history", []))
        es = meta.get("early_stopping") or {}
        self.best, self.patience_left = es.get("best"), es.get("patience_left")
        self.stopped_early = bool(es.get("stopped", False))
        self._checkpointed = (
            self.out is not None and Path(path).resolve() == (self.out / "checkpoint.npz").resolve()
        )

    def evaluate(self, ds: datasets.Dataset, batch: int = 512) -> dict[str, float]:
        state = self.stepper.state()
        sums: dict[str, float] = {}
        n = 0
        for feeds in ds.batches(batch, self.seed, epoch=0, shuffle=False):
            k = len(next(iter(feeds.values())))
            feeds.update({p: state[p] for p in self.eval_c.interface.params + self.eval_c.interface.buffers})
            try:
                outs = self.eval_sess.run(None, feeds, QUIET_RUN)
            except ORT_ERRORS as e:
                raise run_error(e, "the evaluation model") from None
            for name, v in zip(self.eval_c.interface.outputs, outs, strict=True):
                sums[name] = sums.get(name, 0.0) + _batch_term(name, float(v)) * k
            n += k
        return {k: _average(k, v, n) for k, v in sums.items()}

    def fit(
        self, X=None, y=None, epochs: int | None = None, dataset: datasets.Dataset | None = None
    ) -> Result:
        spec = self.spec
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
            raise NNError(f"epochs must be an integer >= 1, got {epochs!r}")
        epochs = epochs or spec.epochs
        ds = dataset if dataset is not None else self.dataset(X, y)
        if len(ds) == 0:
            raise NNError(f"the data '{ds.name}' has no samples to train on")
        train, held = ds.split(spec.validation, self.seed) if spec.validation > 0 else (ds, None)
        if self._min_batch > min(spec.batch, len(train)):
            raise NNError(
                f"batchnorm over single values needs at least 2 samples per batch, but batch = {spec.batch} "
                f"and {len(train)} samples train",
                spec.span,
                expected="batch >= 2 (as PyTorch, which refuses a batch of one in training mode)",
            )
        per_epoch = len(train) // spec.batch + (len(train) % spec.batch >= self._min_batch)
        total = per_epoch * epochs
        base_lr = spec.optimizer.args["lr"]
        start, samples, last_loss = time.perf_counter(), 0, float("nan")
        done = self.stopped_early or self.epoch >= epochs
        if done and self.out is not None and not (self.out / "model.onnx").is_file():
            # stopped between the last checkpoint and the model: write the model it left
            last = self.history[-1]["loss"] if self.history else float("nan")
            return self._finish(last, start, 0)
        if self.stopped_early:
            raise NNError(
                f"nothing left to train: early stopping ended this run after epoch {self.epoch}",
                hint="train without --resume to start again, or without early_stopping",
            )
        if self.epoch >= epochs:
            raise NNError(
                f"nothing left to train: this run has done {self.epoch} of {epochs} epochs "
                "(epochs count from the start of the run, resumed ones included)",
                expected=f"more epochs than {self.epoch} (fit(epochs=N), or --epochs N on the command line)",
            )
        lr_now = float("nan")
        while self.epoch < epochs:
            t0, ep_loss, ep_n = time.perf_counter(), 0.0, 0
            ep_metrics = dict.fromkeys(self.iface.metrics, 0.0)
            for i, feeds in enumerate(train.batches(spec.batch, self.seed, epoch=self.epoch)):
                k = len(next(iter(feeds.values())))
                if k < self._min_batch:  # a last batch of one: batchnorm has no variance to take
                    continue
                self.step += 1
                feeds["lr"] = np.asarray(
                    learning_rate(base_lr, spec.schedule, self.step, self.epoch, total), np.float32
                )
                feeds["step"] = np.asarray(self.step, np.int64)
                lr_now = float(feeds["lr"])
                feeds.update(self._noise(feeds))
                out = self.stepper.run(feeds)
                loss = float(out["loss"])
                if not math.isfinite(loss):
                    ck = ""
                    if self.out is not None:
                        last = self.out / "checkpoint.npz"
                        ck = (
                            f"; the last good checkpoint is {last} (epoch {self.epoch})"
                            if self._checkpointed
                            else "; no checkpoint was written yet"
                        )
                    raise NNError(
                        f"the loss became {loss} at step {self.step} (epoch {self.epoch + 1}){ck}",
                        hint="lower the learning rate, or set clip_norm in the train section",
                    )
                ep_loss += loss * k
                for m in ep_metrics:
                    ep_metrics[m] += _batch_term(m, float(out[m])) * k
                ep_n += k
                samples += k
                if self.progress and sys.stderr.isatty() and time.perf_counter() - self._drawn > 0.2:
                    self._bar(
                        i + 1, per_epoch, epochs, ep_loss / ep_n, samples / (time.perf_counter() - start), t0
                    )
            self.epoch += 1
            last_loss = ep_loss / max(ep_n, 1)
            row: dict[str, Any] = {
                "epoch": self.epoch,
                "loss": last_loss,
                **{m: _average(m, v, ep_n) for m, v in ep_metrics.items()},  # on the training batches
                "lr": lr_now,
                "seconds": time.perf_counter() - t0,
                "samples_per_second": ep_n / (time.perf_counter() - t0),
            }
            if held is not None and len(held):
                row.update({f"val_{k}": v for k, v in self.evaluate(held).items()})
            self.history.append(row)
            if self.progress:
                print(
                    "\r"
                    + "  ".join(
                        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
                    )
                    + " " * 10,
                    file=sys.stderr,
                )
            if spec.early_stopping is not None:
                self.stopped_early = self._watch(row)
            if self.out is not None:  # after early stopping's bookkeeping, which it records
                self.save_checkpoint(self.out / "checkpoint.npz")
                # the history beside it, each epoch: a killed run leaves the two in step
                atomic_write_bytes(self.out / "history.json", json.dumps(self.history, indent=1).encode())
            if self.stopped_early:
                break
        return self._finish(last_loss, start, samples)

    def _finish(self, last_loss: float, start: float, samples: int) -> Result:
        """The run's result; with an output folder, the model and the history written there."""
        spec = self.spec
        why = None
        if self.stopped_early and spec.early_stopping is not None and self.history:
            key = self._watched(self.history[-1])
            why = f"after epoch {self.epoch}: {key} did not improve for {spec.early_stopping.args['patience']} epoch(s)"
        seconds = time.perf_counter() - start
        final = self.history[-1] if self.history else {}
        metrics = {k[4:]: v for k, v in final.items() if k.startswith("val_") and k != "val_loss"}
        split = "held-out"
        if not metrics and self.iface.metrics:  # nothing held out: the training batches' figures
            metrics, split = {m: final[m] for m in self.iface.metrics if m in final}, "training"
        model_path = None
        if self.out is not None:
            model_path = str(self.save_model(self.out / "model.onnx"))
            atomic_write_bytes(self.out / "history.json", json.dumps(self.history, indent=1).encode())
        return Result(
            last_loss,
            metrics,
            self.step,
            seconds,
            samples / max(seconds, 1e-9),
            model_path,
            self.device,
            self.epoch,
            self.history,
            split,
            why,
        )

    def _watched(self, row: dict) -> str:
        """The history key early stopping watches: the held-out figure where there is one."""
        metric = self.spec.early_stopping.args["metric"]
        return f"val_{metric}" if f"val_{metric}" in row else metric

    def _watch(self, row: dict) -> bool:
        """Early stopping after an epoch: whether the watched value has not improved for
        `patience` epochs (loss and mae improve downwards, accuracies upwards)."""
        es = self.spec.early_stopping
        metric = es.args["metric"]
        key = self._watched(row)
        if key not in row:
            raise NNError(
                f"early_stopping watches '{metric}', which is not measured",
                es.span,
                expected="loss or one of the metrics",
            )
        value = row[key] if metric in LOWER_IS_BETTER else -row[key]
        if self.best is None or value < self.best:
            self.best, self.patience_left = value, es.args["patience"]
            return False
        self.patience_left -= 1
        return self.patience_left <= 0

    _drawn = 0.0

    def _bar(self, i: int, n: int, epochs: int, loss: float, rate: float, t0: float) -> None:
        self._drawn = time.perf_counter()
        width = 24
        done = int(width * i / n)
        eta = (time.perf_counter() - t0) / i * (n - i)
        print(
            f"\repoch {self.epoch + 1}/{epochs} [{'=' * done}{'.' * (width - done)}] {i}/{n} "
            f"loss {loss:.4f}  {rate:,.0f} samples/s  ETA {eta:.0f}s ",
            end="",
            file=sys.stderr,
            flush=True,
        )

    # ---- files -----------------------------------------------------------------------

    def save_checkpoint(self, path: str | Path) -> None:
        meta = {
            "step": self.step,
            "epoch": self.epoch,
            "seed": self.seed,
            "history": self.history,
            "source_sha256": self.step_c.graph.source_hash,
            "model": self.spec.model,
            "early_stopping": {
                "best": self.best,
                "patience_left": self.patience_left,
                "stopped": self.stopped_early,
            },
        }
        save_checkpoint(path, self.stepper.state(), meta)
        self._checkpointed = True

    def inference_model(self) -> tuple[Graph, onnx.ModelProto]:
        """The inference model (dropout gone, running statistics) with the trained weights: its
        graph and its checked ONNX form, with what eval needs in the metadata."""
        graph = build_graph(self.prog, self.spec.model, self.seed).graph
        state = self.stepper.state()
        for p in graph.params():
            if p in state:  # a parameter the loss never reaches is not in the step: it keeps its init
                graph.node(p)["value"] = state[p]
        data = self.spec.data
        train_meta = json.dumps(
            {
                "data": data.name,
                "path": data.args.get("path"),
                "sha256": self._data_sha256(),
                "validation": self.spec.validation,
                "seed": self.seed,
                "inputs": self.iface.inputs,
                "targets": self.iface.targets,
                "target_dtypes": {t: self.step_c.graph.type(t).dtype for t in self.iface.targets},
                "steps": self.step,
            }
        )
        model = lower(optimize(graph, DEFAULT_LEVEL), metadata={"nngraph_train": train_meta})
        check(model)
        return graph, model

    def _data_sha256(self) -> str | None:
        """The training data file's hash, so that eval knows the same file when it sees it."""
        if self.spec.data.name == "digits":
            return None
        try:
            return file_sha256(data_file(self.spec))
        except NNError:  # trained from arrays given to fit()
            return None

    def save_model(self, path: str | Path) -> Path:
        """The inference model; trained on the bundled digits, it is also a bundle (labels 0-9 and
        the 1/16 pixel scale the data set applies), so Session.classify takes raw pixel counts."""
        graph, model = self.inference_model()
        first = graph.type(next(iter(graph.outputs.values())))
        if self.spec.data.name == "digits" and first.rank == 2 and first.shape[-1] == 10:
            from nngraph.runtime.bundle import write_bundle  # noqa: PLC0415

            # one atomic write of the checked model with the bundle's metadata added
            return write_bundle(
                model.SerializeToString(), path, labels=[str(d) for d in range(10)], scale=1 / 16
            )
        atomic_write_bytes(path, model.SerializeToString())
        return Path(path)


def _check_fits(arrays: dict, want: dict, path, model: str) -> None:
    """A checkpoint's state must be this model's: the same names, shapes and dtypes."""
    missing = [k for k in want if k not in arrays]
    extra = [k for k in arrays if k not in want]
    wrong = [
        k
        for k in want
        if k in arrays and (arrays[k].shape != want[k].shape or arrays[k].dtype != want[k].dtype)
    ]
    if not (missing or extra or wrong):
        return
    if wrong:
        k = wrong[0]
        a, w = arrays[k], want[k]
        what = f"'{k}' is {a.dtype}{list(a.shape)} there but {w.dtype}{list(w.shape)} in model {model}"
    elif missing:
        what = f"it has no '{missing[0]}'" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
    else:
        what = f"it holds '{extra[0]}', which model {model} does not have"
    raise NNError(
        f"the checkpoint {path} does not fit model {model}: {what}",
        hint="was it written by another model? train without --resume, or into another --out",
    )
