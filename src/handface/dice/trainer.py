"""DICE training: AdamW, alternating discriminator steps, checkpoints, resume, DDP.

``handface train --config dice-small --data DIR --out RUN`` (one process) or
``torchrun --nproc_per_node=N -m handface train ...`` (DistributedDataParallel: gloo on CPU,
nccl on GPU). The run folder holds:

```
RUN/
  config.json       the resolved training options and network config
  checkpoint.pt     latest full state (model, discriminators, optimizers, step), atomic
  model.pt          the network alone (+ its config), what `--checkpoint` of inference takes
  log.jsonl         one line per logged step: step, epoch, every loss term (averaged over
                    the processes: the global batch's), gradient norm, lr, samples/s
  loss_curve.png    the loss terms against the step
```

Determinism: the data order of epoch ``e`` is a permutation seeded by ``(seed, e)``; each
global batch is split into contiguous equal parts, one per process, so N processes see exactly
the batches one process would. Augmentation is seeded by ``(seed, epoch, index)`` and the
network's own randomness (token masking, dropout) by ``(seed, step, rank)`` before every
step, so ``--resume`` continues bit for bit without storing generator states.

Schedule: the paper trains 40 epochs with AdamW (lr 6e-4, weight decay 1e-4, batch 16); the
schedule here is those epochs over whatever data is given, with a linear warm-up over the first
``warmup_fraction`` of the steps and a cosine decay to ``final_lr_fraction`` of the rate.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from handface import interrupt
from handface.errors import HandfaceError, InputError, OutputExistsError
from handface.io.files import atomic_write_bytes

CHECKPOINT_FILE = "checkpoint.pt"
MODEL_FILE = "model.pt"
LOG_FILE = "log.jsonl"
CURVE_FILE = "loss_curve.png"
CONFIG_FILE = "config.json"


@dataclass
class ScheduleConfig:
    """Optimizer and schedule (defaults: the paper's AdamW settings)."""

    epochs: int = 40
    """Passes over the training data (the paper: 40)."""
    batch_size: int = 16
    """Global batch (split over the processes of a distributed run)."""
    lr: float = 6e-4
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.02
    """Share of the steps with a linear warm-up of the learning rate."""
    final_lr_fraction: float = 0.1
    """The cosine decay ends at this share of ``lr``."""
    max_steps: int | None = None
    """Stop after this many steps (default: ``epochs`` full passes)."""
    grad_clip: float = 1.0
    """Clip the gradient norm (0: off)."""


@dataclass
class RunConfig:
    """Where a run lives and how often it reports."""

    out: Path
    seed: int = 0
    checkpoint_minutes: float = 5.0
    """Write ``checkpoint.pt`` (and the loss curve) at least this often."""
    log_every: int = 10
    """Steps between lines of ``log.jsonl``."""
    num_workers: int = 0
    """DataLoader worker processes (0: load in the training process)."""
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)


def epoch_batches(num_items: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The global batches of one epoch: a seeded permutation cut into full batches.

    A dataset smaller than one batch gives a single batch of all items.

    Example:
        >>> batches = epoch_batches(10, 4, seed=0, epoch=0)
        >>> len(batches), sorted(sum(batches, [])) == sorted(set(sum(batches, [])))
        (2, True)
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(num_items, generator=generator).tolist()
    if num_items < batch_size:
        return [order]
    return [order[i : i + batch_size] for i in range(0, num_items - batch_size + 1, batch_size)]


def rank_share(batch: list[int], rank: int, world: int) -> list[int]:
    """The contiguous part of a global batch that process ``rank`` of ``world`` trains on."""
    if len(batch) % world:
        raise InputError(f"the batch size {len(batch)} must be divisible by the {world} processes")
    size = len(batch) // world
    return batch[rank * size : (rank + 1) * size]


def learning_rate(step: int, total: int, schedule: ScheduleConfig) -> float:
    """Warm-up then cosine decay (see the module docstring)."""
    warmup = max(1, int(schedule.warmup_fraction * total))
    if step < warmup:
        return schedule.lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = schedule.final_lr_fraction
    return schedule.lr * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def step_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step) * 1009 + rank


@dataclass
class DistributedContext:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@contextmanager
def distributed_context() -> Iterator[DistributedContext]:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        yield DistributedContext(device=device)
        return
    use_cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank()
    device = torch.device("cpu")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    try:
        yield DistributedContext(rank=rank, world=dist.get_world_size(), device=device)
    finally:
        dist.destroy_process_group()


def _save_atomic(obj: object, path: Path) -> None:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    """A checkpoint or model file written by the trainer (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is not a handface checkpoint (it is empty: 0 bytes)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad file
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()  # no terminal colour codes
        refused = re.search(r"GLOBAL ([\w.]+)", text)
        if refused:  # the file names code to run or a class to build: never done
            raise InputError(
                f"{path} is not a handface checkpoint: it asks to run or build "
                f"'{refused.group(1)}', which is refused (only tensors and plain data are "
                "loaded); use a model.pt or checkpoint.pt written by `handface train`"
            ) from None
        lines = [line for line in text.splitlines() if line.strip()] or [type(error).__name__]
        # the reason, not torch's advice around it (to load without weights_only: never here)
        reason = lines[1] if lines[0].startswith("Weights only load failed") else lines[0]
        reason = reason.split(". ")[0]
        raise InputError(f"{path} is not a handface checkpoint ({reason[:160]})") from None
    if not isinstance(state, dict):
        raise InputError(f"{path} holds no DICE network weights (it holds a "
                         f"{type(state).__name__}, not a checkpoint's dict)")  # fmt: skip
    return state


def plot_losses(log_path: Path, out_path: Path) -> None:
    """Draw every loss term of ``log.jsonl`` against the step (log scale) into a PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    if not rows:
        return
    names = [k for k in rows[-1] if k.startswith("loss/")]
    figure, axis = plt.subplots(figsize=(8, 5), dpi=100)
    steps = [row["step"] for row in rows]
    for name in names:
        values = [row.get(name, float("nan")) for row in rows]
        axis.plot(steps, values, label=name.removeprefix("loss/"), linewidth=1.2)
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("loss (weighted terms)")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write_bytes(out_path, buffer.getvalue())


StepFunction = Callable[[dict[str, Tensor], int], dict[str, float]]


class Trainer:
    """Runs the optimisation loop around a ``step`` callback (see :mod:`handface.dice.train`).

    The callback owns the model-specific work (forward, losses, backward, optimizer steps)
    and returns the logged scalars; this class owns data order, schedule, checkpoints,
    logging, progress and distributed set-up, which are the same for any network.
    """

    def __init__(
        self,
        run: RunConfig,
        dataset: Dataset,
        state: dict[str, torch.nn.Module | torch.optim.Optimizer],
        step: StepFunction,
        optimizers: list[torch.optim.Optimizer],
        context: DistributedContext,
        extra_config: dict | None = None,
        export: Callable[[], dict] | None = None,
    ) -> None:
        self.run = run
        self.dataset = dataset
        self.state = state
        self.step_fn = step
        self.optimizers = optimizers
        self.context = context
        self.extra_config = extra_config or {}
        self.export = export
        self.out = Path(run.out)
        schedule = run.schedule
        self.batches_per_epoch = len(epoch_batches(len(dataset), schedule.batch_size, 0, 0))
        # the learning-rate schedule spans every epoch; max_steps only stops early, so a run
        # stopped and resumed follows the same schedule as one that never stopped
        self.schedule_steps = schedule.epochs * self.batches_per_epoch
        self.total_steps = (
            self.schedule_steps
            if schedule.max_steps is None
            else min(self.schedule_steps, schedule.max_steps)
        )
        self.step = 0
        self._created = False  # prepare() made the run folder (removed again on early failure)

    # ------------------------------------------------------------------ run folder
    def prepare(self) -> None:
        """Create or check the run folder; load the checkpoint with ``resume``."""
        out = self.out
        checkpoint = out / CHECKPOINT_FILE
        if self.run.resume:
            if not checkpoint.is_file():
                raise InputError(f"--resume: {checkpoint} does not exist; start without --resume")
            self._load(load_checkpoint(checkpoint))
            log = out / LOG_FILE
            if self.context.is_main and log.is_file():  # drop rows past the checkpoint
                rows = [r for r in log.read_text().splitlines() if r.strip()]
                kept = [r for r in rows if json.loads(r)["step"] <= self.step]
                atomic_write_bytes(log, "".join(r + "\n" for r in kept).encode())
            self._barrier()
            return
        if out.exists() and any(out.iterdir()) and not self.run.overwrite:
            raise OutputExistsError(
                f"{out} already holds a run; continue it with --resume or pass --overwrite"
            )
        self._barrier()  # every process has checked before the first one writes
        self._created = not out.exists()
        if self.context.is_main:
            out.mkdir(parents=True, exist_ok=True)
            for name in (CHECKPOINT_FILE, MODEL_FILE, LOG_FILE, CURVE_FILE):
                (out / name).unlink(missing_ok=True)
            config = {"run": _jsonable(asdict(self.run)), **self.extra_config}
            atomic_write_bytes(out / CONFIG_FILE, json.dumps(config, indent=2).encode())
        self._barrier()

    def _discard_unstarted(self) -> None:
        """After a failure before the first step of a new run (a broken dataset, a bad
        option): remove what :meth:`prepare` wrote, so no run folder without a checkpoint is
        left behind (it would block the next attempt and cannot be resumed)."""
        if self.run.resume or self.step > 0 or not self.context.is_main:
            return
        if self._created:
            shutil.rmtree(self.out, ignore_errors=True)
            return
        for name in (CONFIG_FILE, LOG_FILE):
            (self.out / name).unlink(missing_ok=True)

    def _load(self, checkpoint: dict) -> None:
        for name, obj in self.state.items():
            if name not in checkpoint:
                raise InputError(f"the checkpoint in {self.out} has no {name!r}; wrong run folder")
            try:
                obj.load_state_dict(checkpoint[name])
            except (RuntimeError, ValueError, KeyError) as error:
                first = str(error).strip().splitlines()[0][:160]
                raise InputError(
                    f"the checkpoint in {self.out} does not fit this run's {name} (another "
                    f"--config?): {first}"
                ) from None
        self.step = int(checkpoint["step"])

    def save(self) -> None:
        if self.context.is_main:
            payload = {name: obj.state_dict() for name, obj in self.state.items()}
            payload["step"] = self.step
            _save_atomic(payload, self.out / CHECKPOINT_FILE)
            if self.export is not None:
                _save_atomic(self.export(), self.out / MODEL_FILE)
            if (self.out / LOG_FILE).is_file():
                plot_losses(self.out / LOG_FILE, self.out / CURVE_FILE)
        self._barrier()

    def _agree(self, *flags: bool) -> tuple[bool, ...]:
        """Flags that are true in any process (one all-reduce), so all processes act alike."""
        if self.context.world == 1:
            return flags
        values = torch.tensor([float(f) for f in flags], device=self.context.device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in values.tolist())

    def _global_mean(self, scalars: dict[str, float]) -> dict[str, float]:
        """Per-process scalars averaged over the processes: the figures of the global batch."""
        if self.context.world == 1:
            return scalars
        names = sorted(scalars)
        values = torch.tensor([scalars[n] for n in names], dtype=torch.float64)
        dist.all_reduce(values)
        return {n: float(v) / self.context.world for n, v in zip(names, values, strict=True)}

    def _barrier(self) -> None:
        if self.context.world > 1:
            dist.barrier()

    # ------------------------------------------------------------------ loop
    def _loader(self, epoch: int, skip: int) -> DataLoader:
        schedule = self.run.schedule
        batches = epoch_batches(len(self.dataset), schedule.batch_size, self.run.seed, epoch)
        mine = [rank_share(b, self.context.rank, self.context.world) for b in batches[skip:]]
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        return DataLoader(self.dataset, batch_sampler=mine, num_workers=self.run.num_workers)

    def fit(self) -> int:
        """Train until the schedule ends (or Ctrl-C); returns the last completed step."""
        from tqdm import tqdm

        self.prepare()
        schedule = self.run.schedule
        log_path = self.out / LOG_FILE
        last_save = time.monotonic()
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            unit="step",
            disable=not (self.run.progress and self.context.is_main),
            desc="train",
            dynamic_ncols=True,
        )
        interrupted: int | None = None  # the Ctrl-C or SIGTERM this process received
        stopping = False  # one arrived in any process (all processes agree after each step)

        def stop_after_this_step(signum, frame):  # noqa: ARG001 - signal handler signature
            nonlocal interrupted
            interrupted = signum

        # Ctrl-C and SIGTERM (`kill`, a cluster's scheduler) finish the running step, so the
        # saved state is never half an update
        previous = {
            signum: signal.signal(signum, stop_after_this_step)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        failed = True
        try:
            while self.step < self.total_steps and not stopping:
                epoch, skip = divmod(self.step, self.batches_per_epoch)
                for batch in self._loader(epoch, skip):
                    if self.step >= self.total_steps or stopping:
                        break
                    tick = time.perf_counter()
                    lr = learning_rate(self.step, self.schedule_steps, schedule)
                    for optimizer in self.optimizers:
                        for group in optimizer.param_groups:
                            group["lr"] = lr
                    torch.manual_seed(step_seed(self.run.seed, self.step, self.context.rank))
                    batch = {k: v.to(self.context.device) for k, v in batch.items()}
                    scalars = self._global_mean(self.step_fn(batch, self.step))
                    self.step += 1
                    rate = schedule.batch_size / max(time.perf_counter() - tick, 1e-9)
                    bar.update(1)
                    bar.set_postfix(loss=f"{scalars.get('loss/total', 0.0):.3g}", sps=f"{rate:.1f}")
                    if self.context.is_main and (
                        self.step % self.run.log_every == 0 or self.step == self.total_steps
                    ):
                        row = {"step": self.step, "epoch": epoch, "lr": lr, "samples_per_s": rate}
                        row.update(scalars)
                        with log_path.open("a", encoding="utf-8") as log:
                            log.write(json.dumps(row) + "\n")
                    due = time.monotonic() - last_save > 60.0 * self.run.checkpoint_minutes
                    # every process must take the same decisions, or the next collective hangs
                    due, stopping = self._agree(due, interrupted is not None)
                    if due and not stopping:
                        self.save()
                        last_save = time.monotonic()
            failed = False
        except HandfaceError as error:
            # a sample broken since the run began (a label file gone or cut short): the state
            # after the last completed step is consistent, so keep it for --resume
            message = data_error_message(error)
            if self.step > 0 and self.context.world == 1:
                self.save()
                message += (f"; the run is saved at step {self.step}: fix or remove that "
                            "sample, then continue with --resume")  # fmt: skip
            raise InputError(message) from None
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if failed:
                bar.leave = False  # the error's one line stands alone, not under a half bar
            bar.close()
            if failed:
                self._discard_unstarted()
        # the state after the last completed step is consistent: save it, also on Ctrl-C
        self.save()
        if stopping:  # the command line exits with 130 (Ctrl-C) or 143 (SIGTERM)
            raise interrupt.Terminated if interrupted == signal.SIGTERM else KeyboardInterrupt
        return self.step


def data_error_message(error: BaseException) -> str:
    """The one line of a data error, also when a ``DataLoader`` worker raised it (PyTorch then
    re-raises it with the worker's whole traceback as its message: its last line is the
    original ``module.Error: message``)."""
    text = str(error)
    if "Original Traceback" not in text:
        return text
    last = next((line for line in reversed(text.splitlines()) if line.strip()), text)
    name = type(error).__name__
    return last.split(f"{name}: ", 1)[1] if f"{name}: " in last else last.strip()


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
