"""Image backbones of DICE: images -> a 7 x 7 grid of feature tokens.

* :class:`HRNet`: the high-resolution network (Wang et al. 2019) with its classification head,
  as DICE and METRO use it (HRNet-W64: 2048 channels on a 7 x 7 grid at 224 px). Written here
  from the architecture's description; no pretrained weights are loaded (torchvision and timm
  are unavailable, and nothing is downloaded).
* :class:`SmallCNN`: a residual CNN of four stride-2 stages for ``dice-small``.
* :class:`~handface.dice.mediapipe_backbone.MediaPipeBackbone` (its own module): MediaPipe's
  hand landmark network, pretrained on real photos, cut at its 7 x 7 stage.

All map ``(B, 3, H, W)`` to ``(B, 49, C)`` (row-major over the 7 x 7 grid); other input sizes
are average-pooled to the same grid.

Example:
    >>> net = SmallCNN(width=8, out_channels=32)
    >>> net(torch.zeros(2, 3, 224, 224)).shape
    torch.Size([2, 49, 32])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor, nn

from handface.dice.config import DiceConfig

GRID = 7
"""Side of the feature grid: 49 tokens."""


def _conv_bn(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, relu: bool = True
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3 x 3 convolutions with a residual connection (projected when the shape changes)."""

    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv_bn(cin, cout, 3, stride), _conv_bn(cout, cout, 3, 1, relu=False)
        )
        self.skip = (
            nn.Identity() if stride == 1 and cin == cout else _conv_bn(cin, cout, 1, stride, False)
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.skip(x))


class Bottleneck(nn.Module):
    """1 x 1 -> 3 x 3 -> 1 x 1 convolutions, ``planes * 4`` output channels, residual."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.body = nn.Sequential(
            _conv_bn(cin, planes, 1),
            _conv_bn(planes, planes, 3, stride),
            _conv_bn(planes, cout, 1, relu=False),
        )
        self.skip = (
            nn.Identity() if stride == 1 and cin == cout else _conv_bn(cin, cout, 1, stride, False)
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.skip(x))


class HighResolutionModule(nn.Module):
    """Parallel branches of basic blocks followed by an exchange unit that fuses all scales.

    Branch ``i`` runs at ``1 / 2**i`` of the highest resolution with ``channels[i]``. In the
    exchange, output ``i`` sums every input ``j``: upsampled (1 x 1 conv + nearest) from lower
    resolutions, downsampled by ``i - j`` stride-2 3 x 3 convolutions from higher ones.
    """

    def __init__(self, channels: Sequence[int], blocks: int, fuse_outputs: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(c, c) for _ in range(blocks)]) for c in channels
        )
        self.fuse = nn.ModuleList()
        for i in range(fuse_outputs):
            row = nn.ModuleList()
            for j, cj in enumerate(channels):
                if j == i:
                    row.append(nn.Identity())
                elif j > i:
                    row.append(
                        nn.Sequential(
                            _conv_bn(cj, channels[i], 1, relu=False),
                            nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                        )
                    )
                else:
                    steps = [_conv_bn(cj, cj, 3, 2) for _ in range(i - j - 1)]
                    steps.append(_conv_bn(cj, channels[i], 3, 2, relu=False))
                    row.append(nn.Sequential(*steps))
            self.fuse.append(row)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        outputs = []
        for row in self.fuse:
            total = row[0](xs[0])
            for j in range(1, len(xs)):
                total = total + row[j](xs[j])
            outputs.append(self.relu(total))
        return outputs


class HRNet(nn.Module):
    """HRNet-W``width`` with the classification head's 7 x 7 feature map (HRNet-W64-C layout).

    Stem (two stride-2 3 x 3 convolutions, 64 channels) -> stage 1 (four bottlenecks, 256
    channels) -> stages 2-4 with 2, 3 and 4 branches (``W, 2W, 4W, 8W`` channels; 1, 4 and 3
    modules of four basic blocks per branch) -> head: a bottleneck per branch to 128, 256,
    512, 1024 channels, strided 3 x 3 convolutions that carry the high-resolution branch down
    and add the next one, and a 1 x 1 convolution to ``out_channels`` (2048) at 1/32 of the
    input.

    Example:
        >>> net = HRNet(width=8, out_channels=64)
        >>> net(torch.zeros(1, 3, 96, 96)).shape  # 3 x 3 at 1/32, pooled to the 7 x 7 grid
        torch.Size([1, 49, 64])
    """

    head_planes = (32, 64, 128, 256)

    def __init__(self, width: int = 64, out_channels: int = 2048, blocks: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(3, 64, 3, 2), _conv_bn(64, 64, 3, 2))
        layer1 = [Bottleneck(64, 64)] + [Bottleneck(256, 64) for _ in range(3)]
        self.layer1 = nn.Sequential(*layer1)
        channels = [width * 2**i for i in range(4)]
        self.transition1 = nn.ModuleList(
            [_conv_bn(256, channels[0]), _conv_bn(256, channels[1], 3, 2)]
        )
        self.stage2 = self._stage(channels[:2], modules=1, blocks=blocks)
        self.transition2 = _conv_bn(channels[1], channels[2], 3, 2)
        self.stage3 = self._stage(channels[:3], modules=4, blocks=blocks)
        self.transition3 = _conv_bn(channels[2], channels[3], 3, 2)
        self.stage4 = self._stage(channels, modules=3, blocks=blocks)
        self.incre = nn.ModuleList(
            Bottleneck(c, p) for c, p in zip(channels, self.head_planes, strict=True)
        )
        head = [p * Bottleneck.expansion for p in self.head_planes]
        self.downsample = nn.ModuleList(_conv_bn(head[i], head[i + 1], 3, 2) for i in range(3))
        self.final = _conv_bn(head[-1], out_channels, 1)
        self.out_channels = out_channels
        _init_weights(self)

    @staticmethod
    def _stage(channels: list[int], modules: int, blocks: int) -> nn.ModuleList:
        return nn.ModuleList(
            HighResolutionModule(channels, blocks, len(channels)) for _ in range(modules)
        )

    def forward(self, images: Float[Tensor, "B 3 H W"]) -> Float[Tensor, "B 49 C"]:
        x = self.layer1(self.stem(images))
        xs = [t(x) for t in self.transition1]
        for module in self.stage2:
            xs = module(xs)
        xs = xs + [self.transition2(xs[-1])]
        for module in self.stage3:
            xs = module(xs)
        xs = xs + [self.transition3(xs[-1])]
        for module in self.stage4:
            xs = module(xs)
        y = self.incre[0](xs[0])
        for i in range(3):
            y = self.incre[i + 1](xs[i + 1]) + self.downsample[i](y)
        return _tokens(self.final(y))


class SmallCNN(nn.Module):
    """Residual CNN: a stride-2 stem, four stride-2 stages (``w, 2w, 4w, 8w`` channels) and a
    1 x 1 projection to ``out_channels`` at 1/32 of the input (7 x 7 at 224 px)."""

    def __init__(self, width: int = 24, out_channels: int = 256, blocks: int = 1) -> None:
        super().__init__()
        self.stem = _conv_bn(3, width, 3, 2)
        stages, cin = [], width
        for i in range(4):
            cout = width * 2**i
            layers = [BasicBlock(cin, cout, stride=2)]
            layers += [BasicBlock(cout, cout) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.project = _conv_bn(cin, out_channels, 1)
        self.out_channels = out_channels
        _init_weights(self)

    def forward(self, images: Float[Tensor, "B 3 H W"]) -> Float[Tensor, "B 49 C"]:
        return _tokens(self.project(self.stages(self.stem(images))))


def _tokens(grid: Tensor) -> Tensor:
    if grid.shape[-2:] != (GRID, GRID):
        grid = torch.nn.functional.adaptive_avg_pool2d(grid, GRID)
    return grid.flatten(2).transpose(1, 2)


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_backbone(config: DiceConfig) -> nn.Module:
    """The backbone a config asks for."""
    if config.backbone == "hrnet":
        return HRNet(width=config.backbone_width, out_channels=config.feature_dim)
    if config.backbone == "cnn":
        return SmallCNN(
            width=config.backbone_width,
            out_channels=config.feature_dim,
            blocks=config.backbone_blocks,
        )
    if config.backbone == "mediapipe":
        from handface.dice.mediapipe_backbone import MediaPipeBackbone  # imports this module

        return MediaPipeBackbone(
            out_channels=config.feature_dim,
            hand_layer=config.backbone_layer,
            freeze_until=config.backbone_freeze,
        )
    raise ValueError(f"unknown backbone {config.backbone!r}")


def hrnet_num_parameters(width: int, out_channels: int = 2048, blocks: int = 4) -> int:
    """Trainable parameters of :class:`HRNet` counted from its layout, without building it.

    Example:
        >>> hrnet_num_parameters(8, 64) == sum(p.numel() for p in HRNet(8, 64).parameters())
        True
    """

    def conv_bn(cin: int, cout: int, k: int) -> int:
        return cin * cout * k * k + 2 * cout

    def basic(cin: int, cout: int) -> int:
        skip = 0 if cin == cout else conv_bn(cin, cout, 1)
        return conv_bn(cin, cout, 3) + conv_bn(cout, cout, 3) + skip

    def bottleneck(cin: int, planes: int) -> int:
        cout = 4 * planes
        skip = 0 if cin == cout else conv_bn(cin, cout, 1)
        return (
            conv_bn(cin, planes, 1) + conv_bn(planes, planes, 3) + conv_bn(planes, cout, 1) + skip
        )

    def module(channels: list[int]) -> int:
        total = sum(blocks * basic(c, c) for c in channels)
        for i, ci in enumerate(channels):
            for j, cj in enumerate(channels):
                if j > i:
                    total += conv_bn(cj, ci, 1)
                elif j < i:
                    total += (i - j - 1) * conv_bn(cj, cj, 3) + conv_bn(cj, ci, 3)
        return total

    c = [width * 2**i for i in range(4)]
    total = conv_bn(3, 64, 3) + conv_bn(64, 64, 3)
    total += bottleneck(64, 64) + 3 * bottleneck(256, 64)
    total += conv_bn(256, c[0], 3) + conv_bn(256, c[1], 3)
    total += module(c[:2])
    total += conv_bn(c[1], c[2], 3) + 4 * module(c[:3])
    total += conv_bn(c[2], c[3], 3) + 3 * module(c)
    planes = HRNet.head_planes
    total += sum(bottleneck(ci, p) for ci, p in zip(c, planes, strict=True))
    total += sum(conv_bn(4 * planes[i], 4 * planes[i + 1], 3) for i in range(3))
    total += conv_bn(4 * planes[-1], out_channels, 1)
    return total
