"""The `dreamlab` command: a thin front end over train/, config/ and evaluation.

Every expected failure is one `dreamlab: error:` line and an exit code: 2 for what the user typed
(a bad config or option), 1 for what failed at run time (a damaged checkpoint, a non-finite loss,
a disk that is full or read-only).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

EXIT_CONFIG = 2


def _fail(message: str, code: int = 1) -> int:
    print(f"dreamlab: error: {message}", file=sys.stderr)
    return code


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Warnings raised inside print as one `dreamlab: warning:` line each (not file, line and source)."""
    with warnings.catch_warnings():
        warnings.showwarning = lambda message, *_args, **_kwargs: print(f"dreamlab: warning: {message}",
                                                                         file=sys.stderr)
        yield


def cmd_train(args: argparse.Namespace) -> int:
    from dreamlab import train  # the Python API's train: the same run, curves.png included
    from dreamlab.config.load import ConfigError
    from dreamlab.track.run_dir import StorageError
    from dreamlab.train.checkpoint import CheckpointError
    from dreamlab.train.loop import NonFiniteError

    try:
        result = train(args.overrides, quiet=args.quiet)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except (CheckpointError, NonFiniteError, StorageError, ValueError) as exc:
        return _fail(str(exc))
    if result.summary.get("stop_signal") is not None:
        return 128 + int(result.summary["stop_signal"])  # stopped cleanly, checkpoint written
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from dreamlab.config.load import ConfigError, load

    try:
        print(OmegaConf.to_yaml(load(args.overrides)[0]), end="")
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from dreamlab.config.load import ConfigError
    from dreamlab.train.checkpoint import CheckpointError
    from dreamlab.train.evaluate import evaluate_run

    try:
        video = None
        if args.video is not None:
            video = Path(args.video) if args.video else Path(args.run) / "videos" / f"eval_{args.checkpoint}.mp4"
        with _warnings_as_lines():  # e.g. non-finite weights: the return below means nothing
            metrics, returns = evaluate_run(Path(args.run), args.checkpoint, args.episodes, video=video,
                                            video_episodes=args.video_episodes)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except (CheckpointError, ValueError, OSError) as exc:
        return _fail(str(exc))
    if video is not None:
        print(f"video: {video}")
    print(f"{args.run} [{args.checkpoint}] {len(returns)} episodes: "
          f"return {metrics['eval/return_mean']:.2f} +- {metrics['eval/return_std']:.2f} "
          f"(length {metrics['eval/length_mean']:.1f})")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from dreamlab.analyze.command import compare, parse_map, recorded_primary_metric, split_list
    from dreamlab.analyze.runs import RunSourceError
    from dreamlab.analyze.summarize import CompareError, Options

    try:
        options = Options(metric=args.metric or recorded_primary_metric(args.runs), threshold=args.threshold,
                          x=args.x, also=split_list(args.also), group_by=split_list(args.group_by),
                          baseline=args.baseline, expect=args.expect)
        text, _ = compare(args.runs, options, parse_map(split_list(args.map)), args.format,
                          Path(args.plot) if args.plot else None)
    except (CompareError, RunSourceError) as exc:
        return _fail(str(exc))
    print(text, end="")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from dreamlab.sweep.command import SweepError, sweep

    try:
        return sweep(args.overrides, parallel=args.parallel, backend=args.backend, address=args.address,
                     name=args.name)
    except SweepError as exc:
        return _fail(str(exc), EXIT_CONFIG)


def cmd_serve_env(args: argparse.Namespace) -> int:
    import os

    # rendering (pygame, for --pixels) needs no screen and no sound here: unset, SDL tries a display
    # and prints "XDG_RUNTIME_DIR is invalid or not set" at the first served frame; and SDL's own
    # SIGTERM handler would swallow a `kill` while a client's env is open
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")

    import gymnasium as gym

    from dreamlab.envs.pixels import PixelObservation
    from dreamlab.envs.remote.server import EnvServer

    if not args.pixels and (args.image_size != 64 or args.grayscale or args.keep_state):
        return _fail("serve-env: --image-size, --grayscale and --keep-state need --pixels", EXIT_CONFIG)

    def make() -> gym.Env:
        if not args.pixels:
            return gym.make(args.env_id)
        return PixelObservation(gym.make(args.env_id, render_mode="rgb_array"), args.image_size, args.grayscale,
                                args.keep_state)

    try:
        gym.spec(args.env_id)
        if args.image_size < 1:
            raise ValueError(f"--image-size {args.image_size}: expected a positive size")
        token = args.token or os.environ.get("DREAMLAB_ENV_TOKEN", "")
        if args.pixels:
            make().close()  # render mode and observation space checked now, not at the first client
        server = EnvServer(make, args.host, args.port, token, args.max_bytes, max_hello_bytes=args.max_hello_bytes,
                           read_timeout_s=args.read_timeout, idle_timeout_s=args.idle_timeout,
                           max_connections=args.max_connections)
    except (gym.error.Error, ValueError, OSError) as exc:
        return _fail(f"serve-env {args.env_id}: {exc}")
    print(f"serving {args.env_id} on {server.address}{' (token required)' if token else ''}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


class _TrainHelp(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        from dreamlab.config.load import format_help

        parser.print_usage()
        print("\nTrain an agent. Overrides use Hydra's grammar, e.g. agent=iqn env=cartpole seed=1 agent.lr=3e-4\n")
        print(format_help())
        parser.exit()


def _version() -> str:
    """The installed distribution's version (the package's own where it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("dreamlab")
    except metadata.PackageNotFoundError:
        from dreamlab import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamlab", description="World-model RL research on one spine.")
    parser.add_argument("--version", action="version", version=f"dreamlab {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train an agent (see `dreamlab train --help`)", add_help=False)
    train.add_argument("-h", "--help", action=_TrainHelp, nargs=0, help="list config groups and keys")
    train.add_argument("--quiet", action="store_true",
                       help="no progress display or summary (the run directory still prints)")
    train.add_argument("overrides", nargs="*", help="config overrides: key=value, +key=value, ~key, group=name")
    train.set_defaults(func=cmd_train)

    config = sub.add_parser("config", help="print the resolved config")
    config.add_argument("overrides", nargs="*")
    config.set_defaults(func=cmd_config)

    evaluate = sub.add_parser("eval", help="deterministic episodes from a saved run")
    evaluate.add_argument("run", help="run directory")
    evaluate.add_argument("--checkpoint", choices=["latest", "best"], default="latest")
    evaluate.add_argument("--episodes", type=int, default=None, help="default: the run's eval.episodes")
    evaluate.add_argument("--video", nargs="?", const="", default=None, metavar="MP4|GIF",
                          help="write episodes of the first eval env as a video, .mp4 or .gif by the suffix "
                               "(default RUN/videos/eval_<checkpoint>.mp4)")
    evaluate.add_argument("--video-episodes", type=int, default=1, metavar="N",
                          help="--video: record the first N episodes of the first eval env (default 1)")
    evaluate.set_defaults(func=cmd_eval)

    compare = sub.add_parser("compare", help="statistics, verdicts and plots over runs (see `dreamlab compare --help`)")
    compare.add_argument("runs", nargs="+", metavar="RUN_OR_DIR",
                         help="run directories, folders of runs, TensorBoard event folders, or mlflow:<tracking uri>")
    compare.add_argument("--metric", default=None, help="compared metric (default: the runs' run.primary_metric)")
    compare.add_argument("--threshold", type=float, default=None, help="success threshold (default: run.threshold)")
    compare.add_argument("--baseline", default=None, metavar="RUN_OR_GROUP", help="ratios and verdicts against this")
    compare.add_argument("--expect", default=None, metavar="'QUANTITY up|down'",
                         help="judge every group against the baseline on this (default: the runs' run.expect)")
    compare.add_argument("--group-by", action="append", default=[], metavar="KEYS",
                         help="config keys that define groups, e.g. run.name or agent.lr (default: config minus seed)")
    compare.add_argument("--x", choices=["env_steps", "wall", "updates"], default="env_steps",
                         help="x axis of the area under the curve and the plot")
    compare.add_argument("--also", action="append", default=[], metavar="METRICS",
                         help="side metrics whose last value is shown, comma separated")
    compare.add_argument("--map", action="append", default=[], metavar="THEIRS=OURS",
                         help="rename TensorBoard/MLflow tags, e.g. rollout/ep_rew_mean=eval/return_mean")
    compare.add_argument("--plot", default=None, metavar="PNG", help="write learning curves to this PNG")
    compare.add_argument("--format", choices=["table", "markdown", "json", "csv"], default="table")
    compare.set_defaults(func=cmd_compare)

    sweep = sub.add_parser("sweep", help="train the cartesian product of comma-separated override values")
    sweep.add_argument("overrides", nargs="+", help="e.g. agent.lr=1e-4,3e-4 seed=0,1,2 env=cartpole")
    sweep.add_argument("--parallel", type=int, default=1, help="trials run at once")
    sweep.add_argument("--backend", choices=["local", "ray"], default="local",
                       help="local subprocesses, or Ray Tune trials (the `ray` extra)")
    sweep.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray instance)")
    sweep.add_argument("--name", default=None, help="sweep directory name under run.dir (default: from the values)")
    sweep.set_defaults(func=cmd_sweep)

    serve = sub.add_parser("serve-env", help="serve a Gymnasium env to remote trainers "
                                             "(trainers set env=remote env.address=HOST:PORT)")
    serve.add_argument("env_id", metavar="ENV_ID", help="a Gymnasium id, e.g. CartPole-v1")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (beyond loopback needs --token)")
    serve.add_argument("--port", type=int, default=5555, help="TCP port (0: any free port)")
    serve.add_argument("--token", default="", help="shared token clients must present (or $DREAMLAB_ENV_TOKEN)")
    serve.add_argument("--max-bytes", type=int, default=64 << 20, help="largest accepted message in bytes")
    serve.add_argument("--max-hello-bytes", type=int, default=4096,
                       help="largest accepted message before a successful hello (an unauthenticated client)")
    serve.add_argument("--read-timeout", type=float, default=10.0,
                       help="seconds a client has to finish its hello from connecting, and to send one "
                            "message once begun (or read one reply)")
    serve.add_argument("--idle-timeout", type=float, default=600.0,
                       help="seconds a connection may wait between messages before it is closed; the "
                            "client reconnects (0: no limit)")
    serve.add_argument("--max-connections", type=int, default=64,
                       help="connections served at once; one more is answered 'busy' and closed")
    serve.add_argument("--pixels", action="store_true",
                       help="serve rendered frames as `image`, resized here (like env.pixels=true; the "
                            "learner's env.action_repeat still renders every served step)")
    serve.add_argument("--image-size", type=int, default=64, help="--pixels: frame size")
    serve.add_argument("--grayscale", action="store_true", help="--pixels: one luminance channel")
    serve.add_argument("--keep-state", action="store_true", help="--pixels: keep the state vector as `state`")
    serve.set_defaults(func=cmd_serve_env)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # overrides after an option (`train --quiet a=1 b=2`): argparse leaves all but the first
        if not hasattr(args, "overrides") or any(item.startswith("-") for item in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
