"""``handface train``: build the network, data, objective and discriminators, and run them.

Example (one process; ``torchrun --nproc_per_node=2 -m handface train ...`` for DDP):

```
handface synth --out data --num 20000 --size 256
handface train --config dice-small --data data --out runs/dice-small
handface train --config dice-small --data data --out runs/dice-small --resume
```

One step (:class:`DiceStep`): forward the batch, the weighted objective of
:mod:`handface.dice.objective` (with the discriminators' generator term), backward, clip,
AdamW; then one discriminator step on the same batch: the ground-truth parameters of the
synthetic samples (drawn from the generator's pose/expression/shape priors — there is no
Anny parameter dataset) are "real", the regressed ones "fake".
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from handface.dice.config import DiceConfig, get_config
from handface.dice.crops import CropConfig
from handface.dice.dataset import AugmentConfig, DiceDataConfig, DiceTrainingSet
from handface.dice.discriminator import DiceDiscriminators
from handface.dice.model import DiceNet
from handface.dice.objective import DiceObjective, LossWeights
from handface.dice.sync_norm import convert_to_global_batchnorm
from handface.dice.trainer import (
    DistributedContext,
    RunConfig,
    ScheduleConfig,
    Trainer,
    distributed_context,
)
from handface.dice.wild import MixedDataset, WildImageSet
from handface.errors import InputError
from handface.io.files import output_lock, refuse_unwritable
from handface.losses import discriminator_loss
from handface.models.base import HandParams, HeadParams


@dataclass
class TrainOptions:
    """Everything a training run needs (the fields of ``handface train``)."""

    data: Path | list[Path]
    """One or more synthetic datasets written by ``handface synth`` (trained on as one)."""
    out: Path
    """The run folder (checkpoint.pt, model.pt, log.jsonl, loss_curve.png, config.json)."""
    wild: Path | None = None
    """A folder of unlabelled photos for weak supervision (:mod:`handface.dice.wild`)."""
    config: str = "dice-small"
    """Network preset: ``dice`` (the paper) or ``dice-small`` (for CPUs)."""
    resume: bool = False
    """Continue the run in ``out`` from its checkpoint (bit for bit)."""
    init_from: Path | None = None
    """Start from the network weights of an earlier run (``model.pt``/``checkpoint.pt`` of the
    same preset; parts it lacks start fresh, see :func:`initialise_from`)."""
    overwrite: bool = False
    """Start afresh even if ``out`` holds a run."""
    train_only: tuple[str, ...] | None = None
    """Train only these parts of the network (names of :class:`DiceNet`'s modules, as
    ``("interaction",)``); the others keep their weights and batch-norm statistics
    (:func:`freeze_all_but`). None trains everything."""
    seed: int = 0
    augment: bool = True
    """Random crops, rotations, colour, blur, noise, JPEG and occluders."""
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    weights: LossWeights = field(default_factory=LossWeights)
    checkpoint_minutes: float = 5.0
    log_every: int = 10
    num_workers: int = 0
    """DataLoader workers (each loads and augments images in its own process)."""
    progress: bool = True
    network: dict | None = None
    """Overrides of the preset's fields (``{"mask_ratio": 0.0}``), for experiments and tests."""


class DiceStep:
    """One optimisation step of network and discriminators (see the module docstring)."""

    def __init__(
        self,
        net: torch.nn.Module,
        discriminators: torch.nn.Module,
        objective: DiceObjective,
        optimizer: torch.optim.Optimizer,
        disc_optimizer: torch.optim.Optimizer,
        grad_clip: float,
        frozen: list[torch.nn.Module] | None = None,
    ) -> None:
        self.net = net
        self.frozen = frozen or []
        self.discriminators = discriminators
        self.objective = objective
        self.optimizer = optimizer
        self.disc_optimizer = disc_optimizer
        self.grad_clip = grad_clip

    def __call__(self, batch: dict[str, Tensor], step: int) -> dict[str, float]:  # noqa: ARG002
        self.net.train()
        for module in self.frozen:  # no batch-norm statistics or dropout in fixed parts
            module.eval()
        self.optimizer.zero_grad(set_to_none=True)
        out = self.net(batch["image"])
        terms = self.objective(out, batch, self.discriminators)
        terms["loss/total"].backward()
        # the norm of the whole (process-averaged) gradient, logged; clipped when grad_clip > 0
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.net.parameters(), self.grad_clip if self.grad_clip > 0 else float("inf")
        )
        self.optimizer.step()

        # discriminator step: ground-truth parameters are real, regressed ones fake; one
        # forward through the (possibly distributed) module for both, so DDP syncs it
        self.disc_optimizer.zero_grad(set_to_none=True)
        fake_face, fake_hand = out.head_params.detach(), out.hand_params.detach()
        real_face = HeadParams(
            expression=batch["head_expression"],
            shape=batch["head_shape"],
            # jaw and neck are not labelled: the discriminator judges expression and shape
            jaw=fake_face.jaw,
            neck=fake_face.neck,
        )
        real_hand = HandParams(articulation=batch["hand_articulation"], shape=batch["hand_shape"])
        face_logits, hand_logits = self.discriminators(
            _stack_head(real_face, fake_face), _stack_hand(real_hand, fake_hand)
        )
        size = batch["image"].shape[0]
        face_valid = batch["face_params_valid"] > 0
        loss = discriminator_loss(face_logits[:size][face_valid], face_logits[size:][face_valid])
        keep = (batch["has_hand"] * batch["hand_params_valid"]) > 0
        if bool(keep.any()):
            loss = loss + discriminator_loss(hand_logits[:size][keep], hand_logits[size:][keep])
        else:
            loss = loss + 0.0 * hand_logits.sum()  # every parameter takes part, for DDP
        loss.backward()
        self.disc_optimizer.step()
        scalars = {k: float(v.detach()) for k, v in terms.items()}
        scalars["loss/discriminator"] = float(loss.detach())
        scalars["grad_norm"] = float(grad_norm)
        return scalars


def _stack_head(a: HeadParams, b: HeadParams) -> HeadParams:
    return HeadParams(
        **{
            k: torch.cat([getattr(a, k), getattr(b, k)])
            for k in ("expression", "shape", "jaw", "neck")
        }
    )


def _stack_hand(a: HandParams, b: HandParams) -> HandParams:
    return HandParams(
        articulation=torch.cat([a.articulation, b.articulation]),
        shape=torch.cat([a.shape, b.shape]),
    )


def build_network(config: DiceConfig, head_model=None, hand_model=None) -> DiceNet:
    """A :class:`DiceNet` on the given models (default: the Anny head and right hand)."""
    from handface.models.defaults import default_hand_model, default_head_model

    head_model = head_model or default_head_model()
    hand_model = hand_model or default_hand_model("right")
    return DiceNet(config, head_model, hand_model)


def network_config(options: TrainOptions) -> DiceConfig:
    config = get_config(options.config)
    if options.network:
        unknown = set(options.network) - set(asdict(config))
        if unknown:
            raise InputError(f"unknown network fields {sorted(unknown)}")
        config = config.replace(**options.network)
    return config


def initialise_from(net: DiceNet, path: Path) -> list[str]:
    """Load an earlier run's network weights into ``net`` (fine-tuning); returns the names of
    the modules the file lacks, which keep their fresh initialisation (heads added since).

    The file must hold the same preset with the same sizes; anything else is a one-line error.
    """
    from handface.dice.trainer import load_checkpoint

    state = load_checkpoint(path)
    if "model" not in state:
        raise InputError(f"--init-from {path} holds no DICE network weights (no 'model' entry)")
    saved = state.get("config")
    if saved is not None and saved.get("name") != net.config.name:
        raise InputError(
            f"--init-from {path} is a {saved.get('name')} network, this run trains "
            f"{net.config.name}; pass --config {saved.get('name')}"
        )
    own = net.state_dict()
    unexpected = sorted(set(state["model"]) - set(own))
    wrong = sorted(k for k, v in state["model"].items() if k in own and v.shape != own[k].shape)
    if unexpected or wrong:
        first = (unexpected or wrong)[0]
        raise InputError(f"--init-from {path} does not fit the {net.config.name} network ({first})")
    missing = net.load_state_dict(
        {k: v.to(own[k].dtype) for k, v in state["model"].items()}, strict=False
    ).missing_keys
    return sorted({key.split(".")[0] for key in missing})


def freeze_all_but(net: DiceNet, names: tuple[str, ...]) -> list[torch.nn.Module]:
    """Fix the weights of every module of ``net`` not named in ``names``; returns those
    modules (the caller keeps them in eval mode while training).

    Example:
        >>> frozen = freeze_all_but(net, ("interaction",))  # doctest: +SKIP
    """
    children = dict(net.named_children())
    unknown = sorted(set(names) - set(children))
    if unknown or not names:
        raise InputError(
            f"--train-only {' '.join(unknown) or '(nothing)'}: name one or more of "
            f"{', '.join(sorted(children))}"
        )
    frozen = [module for name, module in children.items() if name not in names]
    for module in frozen:
        module.requires_grad_(False)
    return frozen


def train(options: TrainOptions, head_model=None, hand_model=None) -> Path:
    """Run (or resume) a training run; returns the run folder."""
    folders = [options.data] if isinstance(options.data, str | Path) else list(options.data)
    for folder in folders:
        if not Path(folder).is_dir():
            raise InputError(f"--data {folder} is not a folder; create one with handface synth")
    refuse_unwritable(Path(options.out))  # before the network is built and the data read
    config = network_config(options)
    with distributed_context() as context:
        # one run per folder: a second `handface train --out` into it is refused at once
        with output_lock(Path(options.out)) if context.is_main else contextlib.nullcontext():
            _run(options, config, context, head_model, hand_model)
    return Path(options.out)


def _run(
    options: TrainOptions,
    config: DiceConfig,
    context: DistributedContext,
    head_model,
    hand_model,
) -> None:
    torch.manual_seed(options.seed)
    net = build_network(config, head_model, hand_model)
    if options.init_from is not None:
        fresh = initialise_from(net, Path(options.init_from))
        if context.is_main and options.progress:
            print(
                f"initialised from {options.init_from}"
                + (f"; untrained parts: {', '.join(fresh)}" if fresh else "")
            )
    frozen = freeze_all_but(net, options.train_only) if options.train_only is not None else []
    net = net.to(context.device)
    discriminators = DiceDiscriminators(
        net.head_model, net.hand_model, config.discriminator_hidden
    ).to(context.device)
    crop = CropConfig(size=config.input_size)
    augment = AugmentConfig() if options.augment else None
    data = DiceTrainingSet(
        options.data,
        net.sampling.mirror,
        net.hand_model.num_vertices,
        DiceDataConfig(crop=crop, augment=augment, seed=options.seed),
    )
    if options.wild is not None:
        wild = WildImageSet(
            options.wild, net.sampling.mirror, net.head_model.num_vertices,
            net.hand_model.num_vertices, len(net.head_model.shape_labels), crop, augment,
            seed=options.seed, progress=options.progress and context.is_main,
        )  # fmt: skip
        data = MixedDataset(data, wild)
    schedule = options.schedule
    optimizer = torch.optim.AdamW(
        [p for p in net.parameters() if p.requires_grad],
        lr=schedule.lr,
        weight_decay=schedule.weight_decay,
    )
    disc_optimizer = torch.optim.AdamW(
        discriminators.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay
    )
    objective = DiceObjective(net, options.weights)
    model, disc = net, discriminators
    if context.world > 1:
        # batch norm over the global batch, so N processes train what one process would
        if context.device.type == "cuda":
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        else:
            net = convert_to_global_batchnorm(net)
        # the learned mask token takes no part when no token is masked (mask_ratio 0)
        model = DistributedDataParallel(net, find_unused_parameters=config.mask_ratio == 0)
        disc = DistributedDataParallel(discriminators)
    step = DiceStep(model, disc, objective, optimizer, disc_optimizer, schedule.grad_clip, frozen)
    run = RunConfig(
        out=Path(options.out),
        seed=options.seed,
        checkpoint_minutes=options.checkpoint_minutes,
        log_every=options.log_every,
        num_workers=options.num_workers,
        resume=options.resume,
        overwrite=options.overwrite,
        progress=options.progress,
        schedule=schedule,
    )

    def export() -> dict:
        return {"config": asdict(config), "model": net.state_dict(), "format": "handface-dice-1"}

    trainer = Trainer(
        run,
        data,
        {
            "model": net,
            "discriminators": discriminators,
            "optimizer": optimizer,
            "disc_optimizer": disc_optimizer,
        },
        step,
        [optimizer, disc_optimizer],
        context,
        extra_config={"network": asdict(config), "weights": asdict(options.weights)},
        export=export,
    )
    trainer.fit()
