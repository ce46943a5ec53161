"""The `modelserve` command line: `modelserve <subcommand>`, also `python -m modelserve`.

Each subcommand is one entry of `SUBCOMMANDS`: a function adding its arguments to its parser and a
function running it. Subcommands import what they need when they run, so `modelserve crd` never
imports kopf and `modelserve run` never builds a CRD.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelserve import __version__, commands


@dataclass(frozen=True)
class Subcommand:
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --- modelserve crd ------------------------------------------------------------------------------


def _configure_crd(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--docs",
        action="store_true",
        help="generate the API reference (docs/api.md) instead of the CRD",
    )
    parser.add_argument(
        "-o",
        "--output",
        help="file to write ('-' for stdout); default crds/modelserve.dev_modeldeployments.yaml, "
        "or docs/api.md with --docs, relative to the current directory (the repository root)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and print a diff if the file differs from what would be generated",
    )


def _run_crd(args: argparse.Namespace) -> int:
    from modelserve import crd

    text = crd.render_docs() if args.docs else crd.render_yaml()
    output = args.output or (crd.DOCS_PATH if args.docs else crd.CRD_PATH)
    if output == "-":
        if args.check:
            print("modelserve crd: --check needs a file, not '-'", file=sys.stderr)
            return 2
        sys.stdout.write(text)
        return 0
    path = Path(output)
    if args.check:
        current = path.read_text() if path.exists() else ""
        if current == text:
            return 0
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"{path} (checked in)",
            tofile=f"{path} (generated)",
        )
        sys.stdout.writelines(diff)
        what = "the API reference" if args.docs else "the CRD"
        flag = " --docs" if args.docs else ""
        print(
            f"\n{path} is out of date with {what} generated from modelserve.api; run `modelserve crd{flag}`",
            file=sys.stderr,
        )
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path} ({len(text.encode())} bytes)", file=sys.stderr)
    return 0


# The subcommands, by name. `run` (the operator) and `render` (the children of a ModelDeployment as
# YAML) are added here the same way: a configure function and a run function returning an exit code.
SUBCOMMANDS: dict[str, Subcommand] = {
    "run": Subcommand(
        help="run the operator (kopf) against the cluster of KUBECONFIG or the pod's service account",
        configure=commands.configure_run,
        run=commands.run,
    ),
    "render": Subcommand(
        help="print the children the operator would create for a ModelDeployment manifest",
        configure=commands.configure_render,
        run=commands.render,
    ),
    "activator": Subcommand(
        help="run the activator: holds requests for models scaled to zero and wakes them through KEDA",
        configure=commands.configure_activator,
        run=commands.activator,
    ),
    "crd": Subcommand(
        help="generate the ModelDeployment CRD (crds/) or, with --docs, its API reference (docs/api.md)",
        configure=_configure_crd,
        run=_run_crd,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelserve",
        description="modelserve-operator: one ModelDeployment in, a TensorFlow Serving deployment out.",
    )
    parser.add_argument("--version", action="version", version=f"modelserve-operator {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        command.configure(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return SUBCOMMANDS[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
