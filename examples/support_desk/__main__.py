"""`python -m examples.support_desk serve --port 8081 --flags-file dev.flagd.json --build good --simulate-rps 20`,
or `python -m examples.support_desk stack` for dev, staging, pilot and production at once."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
from pathlib import Path

from examples.support_desk.config import (
    BUILDS,
    ENV_API_TOKEN,
    ENV_BUILD,
    ENV_FLAGS_FILE,
    ENV_SIMULATE_RPS,
    DeskConfig,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m examples.support_desk", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the Support Desk API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8081)
    serve.add_argument(
        "--flags-file",
        type=Path,
        default=os.environ.get(ENV_FLAGS_FILE) or None,
        help=f"flagd JSON file to read flags from (env {ENV_FLAGS_FILE}); created with the default flags if missing",
    )
    serve.add_argument(
        "--build",
        choices=BUILDS,
        default=os.environ.get(ENV_BUILD, "good"),
        help=f"env {ENV_BUILD}",
    )
    serve.add_argument(
        "--simulate-rps",
        type=float,
        default=float(os.environ.get(ENV_SIMULATE_RPS) or 0),
        help=f"synthetic requests per second, 0 = off (env {ENV_SIMULATE_RPS})",
    )
    serve.add_argument(
        "--sla-overdue-rate", type=float, default=0.02, help="share of simulated SLA misses"
    )
    serve.add_argument(
        "--flag-poll-ms", type=int, default=200, help="how often the flags file is checked"
    )
    serve.add_argument(
        "--seed", type=int, default=None, help="seed for simulated latencies and outcomes"
    )
    serve.add_argument("--log-level", default="warning")
    stack = commands.add_parser(
        "stack",
        help="serve dev, staging, pilot and production at the sample plan's SUPPORT_DESK_<ENV>_URL "
        "(default 127.0.0.1:8081-8084), reading Release Warden's flag files",
    )
    stack.add_argument("--build", choices=BUILDS, default="good")
    stack.add_argument(
        "--flags-dir",
        type=Path,
        default=None,
        help="where <env>.flagd.json are (default: Release Warden's, WARDEN_FLAGS_DIR or <WARDEN_STATE_DIR>/flags)",
    )
    stack.add_argument(
        "--simulate-rps",
        type=float,
        default=None,
        help="synthetic requests per second in each environment (default 5 in dev and staging, 40 in pilot and production)",
    )
    stack.add_argument("--seed", type=int, default=None)
    where = stack.add_mutually_exclusive_group()
    where.add_argument(
        "--detach",
        action="store_true",
        help="run in the background; return once every environment answers /healthz",
    )
    where.add_argument("--stop", action="store_true", help="stop the stack --detach started")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "stack":
        from examples.support_desk.stack import detach, run_stack, stop_detached

        if args.stop:
            return stop_detached()
        if args.detach:
            forwarded = ["--build", args.build]
            if args.flags_dir is not None:
                forwarded += ["--flags-dir", str(args.flags_dir)]
            if args.simulate_rps is not None:
                forwarded += ["--simulate-rps", str(args.simulate_rps)]
            if args.seed is not None:
                forwarded += ["--seed", str(args.seed)]
            return detach(forwarded)
        return run_stack(
            build=args.build,
            flags_dir=args.flags_dir,
            simulate_rps=args.simulate_rps,
            seed=args.seed,
        )
    import uvicorn

    from examples.support_desk.app import create_app
    from examples.support_desk.flags import seed_flag_file

    # `kill -USR1 <pid>` dumps every thread's stack to stderr: how to see what a stuck desk is doing.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.flags_file is not None:
        seed_flag_file(args.flags_file)
    try:
        config = DeskConfig(
            build=args.build,
            flags_file=args.flags_file,
            simulate_rps=args.simulate_rps,
            flag_poll_ms=args.flag_poll_ms,
            api_token=os.environ.get(ENV_API_TOKEN) or None,
            sla_overdue_rate=args.sla_overdue_rate,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"support-desk: {exc}", file=sys.stderr)  # noqa: T201 - command-line error
        return 2
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
