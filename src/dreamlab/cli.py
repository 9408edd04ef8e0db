"""The `dreamlab` command: a thin front end over train/, config/ and evaluation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_CONFIG = 2


def _fail(message: str, code: int = 1) -> int:
    print(f"dreamlab: error: {message}", file=sys.stderr)
    return code


def cmd_train(args: argparse.Namespace) -> int:
    from dreamlab.config.load import ConfigError
    from dreamlab.train.checkpoint import CheckpointError
    from dreamlab.train.loop import NonFiniteError
    from dreamlab.train.run import train

    try:
        result = train(args.overrides, quiet=args.quiet)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except (CheckpointError, NonFiniteError, ValueError) as exc:
        return _fail(str(exc))
    if result.summary.get("stop_signal") is not None:
        return 128 + int(result.summary["stop_signal"])  # stopped cleanly, checkpoint written
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from dreamlab.config.load import ConfigError, compose

    try:
        print(OmegaConf.to_yaml(compose(args.overrides)), end="")
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from dreamlab.config.load import ConfigError
    from dreamlab.train.checkpoint import CheckpointError
    from dreamlab.train.evaluate import evaluate_run

    try:
        metrics, returns = evaluate_run(Path(args.run), args.checkpoint, args.episodes)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except (CheckpointError, ValueError) as exc:
        return _fail(str(exc))
    print(f"{args.run} [{args.checkpoint}] {len(returns)} episodes: "
          f"return {metrics['eval/return_mean']:.2f} +- {metrics['eval/return_std']:.2f} "
          f"(length {metrics['eval/length_mean']:.1f})")
    return 0


class _TrainHelp(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        from dreamlab.config.load import format_help

        parser.print_usage()
        print("\nTrain an agent. Overrides use Hydra's grammar, e.g. agent=iqn env=cartpole seed=1 agent.lr=3e-4\n")
        print(format_help())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamlab", description="World-model RL research on one spine.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train an agent (see `dreamlab train --help`)", add_help=False)
    train.add_argument("-h", "--help", action=_TrainHelp, nargs=0, help="list config groups and keys")
    train.add_argument("--quiet", action="store_true", help="no progress bar (also without a TTY)")
    train.add_argument("overrides", nargs="*", help="config overrides: key=value, +key=value, ~key, group=name")
    train.set_defaults(func=cmd_train)

    config = sub.add_parser("config", help="print the resolved config")
    config.add_argument("overrides", nargs="*")
    config.set_defaults(func=cmd_config)

    evaluate = sub.add_parser("eval", help="deterministic episodes from a saved run")
    evaluate.add_argument("run", help="run directory")
    evaluate.add_argument("--checkpoint", choices=["latest", "best"], default="latest")
    evaluate.add_argument("--episodes", type=int, default=None, help="default: the run's eval.episodes")
    evaluate.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
