"""`kbroker serve [server.properties] [--override key=value ...]` — start a broker, as kafka-server-start does.
`kbroker cluster --brokers 3` — start a cluster of brokers in this one process for local development
(nodes 1..N on localhost:9092, 9093, ...; data in $XDG_DATA_HOME/kbroker/cluster/broker-N), coordinated
by an in-memory tree with ZooKeeper's semantics: nothing else to install or run. Replication factors
default to min(3, N), as a real cluster of that size would be set up.

Configuration uses Kafka's names and a server.properties-style file. Unless told otherwise kbroker
listens on localhost:9092 and keeps its data in $XDG_DATA_HOME/kbroker (~/.local/share/kbroker), so a
plain `kbroker serve` is a working development broker that keeps its data across restarts.
SIGINT and SIGTERM stop it cleanly.

At start the process's soft limit on open files is raised to its hard limit, as the JVM does for
Kafka on Linux (HotSpot's MaxFDLimit): every partition holds a few descriptors open, and the common
soft limit of 1,024 would otherwise cap a broker at a few hundred partitions.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import time
from pathlib import Path

from . import __version__

log = logging.getLogger("kbroker")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "kbroker"


# Where kbroker's defaults differ from Kafka's: a standalone broker (no controller quorum) listening on
# localhost, with a data directory that survives reboots instead of /tmp/kafka-logs.
STANDALONE_DEFAULTS = {"process.roles": "broker", "node.id": "1", "listeners": "PLAINTEXT://localhost:9092"}


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kbroker", description="A Kafka-compatible broker.")
    parser.add_argument("--version", action="version", version=f"kbroker {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a broker")
    serve.add_argument("properties", nargs="?", type=Path, help="a server.properties file")
    serve.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                       help="set a config, overriding the properties file (repeatable)")
    cluster = commands.add_parser("cluster", help="run a cluster of brokers in this process (local development)")
    cluster.add_argument("--brokers", type=int, default=3, help="how many brokers (default 3)")
    cluster.add_argument("--port", type=int, default=9092, help="the first broker's port (default 9092)")
    cluster.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                         help="set a config on every broker (repeatable)")
    return parser.parse_args(argv)


def raise_open_files_limit() -> tuple[int, int]:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; returns (before, after)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as exc:  # some sandboxes refuse; the broker still starts
            log.warning("could not raise the open files limit from %d to %d: %s", soft, hard, exc)
            return soft, soft
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _collect_garbage_again() -> None:
    """End of start: what is allocated by now (modules, classes, config tables, the broker) lives as
    long as the process, so it is frozen out of later collections, and the collector is on again."""
    gc.freeze()
    gc.enable()


async def _serve_until_signalled(config) -> None:
    import trio

    from .broker import Broker

    broker = Broker(config)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(broker.serve)
            _collect_garbage_again()  # before the first connection is accepted
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                if signum == signal.SIGTERM:  # in a cluster: leadership moves away first
                    with trio.move_on_after(30):
                        await broker.shut_down_gracefully()
                nursery.cancel_scope.cancel()
                break
    log.info("kbroker stopped")


async def _serve_cluster_until_signalled(configs) -> None:
    import trio

    from .broker import Broker
    from .coordination import MemoryTree

    tree = MemoryTree()

    async def session():
        return tree.session()

    brokers = [Broker(config, coordination=session) for config in configs]
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            for broker in brokers:
                await nursery.start(broker.serve)
            log.info("cluster of %d brokers serving on %s", len(brokers), ",".join(b.bootstrap for b in brokers))
            _collect_garbage_again()
            async for signum in signals:
                log.info("received %s, shutting down", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break
    log.info("kbroker cluster stopped")


def cluster_replication_defaults(brokers: int) -> dict[str, str]:
    """Replication factors a cluster of ``brokers`` is set up with: min(3, brokers), internal topics included."""
    factor = str(min(3, brokers))
    return {"offsets.topic.replication.factor": factor, "transaction.state.log.replication.factor": factor,
            "default.replication.factor": factor}


def _cluster_configs(args):
    from .config import load_broker_config

    configs = []
    for node_id in range(1, args.brokers + 1):
        builtin = {**STANDALONE_DEFAULTS, "node.id": str(node_id),
                   "listeners": f"PLAINTEXT://localhost:{args.port + node_id - 1}",
                   "log.dir": str(default_data_dir() / "cluster" / f"broker-{node_id}"),
                   **cluster_replication_defaults(args.brokers)}
        configs.append(load_broker_config(None, args.override, builtin_settings=builtin))
    return configs


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    # Starting imports trio and kbroker (~100 ms) and allocates objects that stay alive as long as the
    # process: the collector would scan them again and again, finding no garbage, for ~5% of the start
    # time. So it is off until the broker serves (_collect_garbage_again), and trio is imported after.
    gc.disable()
    try:
        return _configure_and_serve(args, started)
    finally:
        gc.enable()


def _configure_and_serve(args: argparse.Namespace, started: float) -> int:
    import trio

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(message)s (%(name)s)")
    from .config import ConfigError, load_broker_config

    if args.command == "cluster":
        try:
            configs = _cluster_configs(args)
        except (ConfigError, OSError) as exc:
            print(f"kbroker: {exc}", file=sys.stderr)
            return 2
        raise_open_files_limit()
        trio.run(_serve_cluster_until_signalled, configs)
        return 0
    try:
        config = load_broker_config(args.properties, args.override,
                                    builtin_settings={**STANDALONE_DEFAULTS, "log.dir": str(default_data_dir())})
    except (ConfigError, OSError) as exc:
        print(f"kbroker: {exc}", file=sys.stderr)
        return 2
    if config.warning():
        log.warning(config.warning())
    before, after = raise_open_files_limit()
    if after != before:
        log.info("open files limit raised from %d to %d", before, after)
    log.debug("configuration loaded in %.3fs", time.monotonic() - started)
    trio.run(_serve_until_signalled, config)
    return 0
