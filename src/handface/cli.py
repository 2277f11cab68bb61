"""The ``handface`` command line: one entry point, one subcommand per job (tyro).

Thin by design: every subcommand parses its options into a dataclass and calls library code.
User mistakes (:class:`handface.errors.HandfaceError`) are printed as one line on stderr with
exit code 2, never as a traceback.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from handface.errors import HandfaceError

DESCRIPTION = "handface: 3D hand-face interaction capture (meshes, contact, deformation) on a CPU."


@dataclass
class Bench:
    """Measure a speed or quality figure and print it (JSON with --json).

    Benchmarks: geometry (signed distance of a hand against the head), render (rasterizer
    forward + backward), landmarks (embedded landmarks against MediaPipe on held-out renders).
    """

    name: tyro.conf.Positional[str]
    """Which benchmark to run: geometry, render or landmarks."""
    json: bool = False
    """Print one JSON object instead of a table."""

    def main(self) -> None:
        from handface import bench

        figures = bench.run(self.name)
        if self.json:
            print(json.dumps(figures))
        else:
            width = max(len(key) for key in figures)
            for key, value in figures.items():
                print(
                    f"{key:<{width}}  {value:.4g}"
                    if isinstance(value, float)
                    else f"{key:<{width}}  {value}"
                )


@dataclass
class Demo:
    """Render the Anny head with a right hand resting on its cheek; write the image and meshes."""

    out: Path = Path("outputs/demo")
    """Output folder (created; must not exist unless --overwrite)."""
    size: int = 512
    """Image width and height in pixels."""
    overwrite: bool = False
    """Replace the output folder if it already exists."""

    def main(self) -> None:
        from handface.demo import run_demo

        written = run_demo(self.out, size=self.size, overwrite=self.overwrite)
        print(f"demo written to {self.out.resolve()}:")
        for path in written:
            print(f"  {path}")


Command = (
    Annotated[Bench, tyro.conf.subcommand("bench")] | Annotated[Demo, tyro.conf.subcommand("demo")]
)


def entrypoint(argv: list[str] | None = None) -> None:
    """Run the CLI (``handface ...`` and ``python -m handface ...``)."""
    command = tyro.cli(Command, args=argv, description=DESCRIPTION)
    try:
        command.main()
    except HandfaceError as error:
        print(f"handface: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
