"""The `sovstack` command: a thin shell over the collection's playbooks and the test rig."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml
from docker.errors import DockerException

from sovstack import __version__, rig
from sovstack.errors import SovstackError


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `sovstack: error: ...` and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"sovstack: error: {message}\n")


def say(text: str) -> None:
    print(text, flush=True)


def host_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= value <= rig.MAX_HOSTS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {rig.MAX_HOSTS}, got {value}")
    return value


def extra_var(text: str) -> dict[str, Any]:
    """-e KEY=VALUE, or -e @FILE for a YAML file of variables."""
    if text.startswith("@"):
        try:
            data = yaml.safe_load(Path(text[1:]).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise argparse.ArgumentTypeError(f"cannot read variables from {text[1:]}: {exc}") from None
        if not isinstance(data, dict):
            raise argparse.ArgumentTypeError(f"{text[1:]} does not hold a mapping of variables")
        return data
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE or @FILE")
    return {key: value}


def cmd_rig_up(args: argparse.Namespace) -> int:
    state = rig.up(args.name, args.hosts, args.engine, args.subnet, say)
    print(f"\nrig {state.name!r} is up: {len(state.hosts)} hosts on {state.subnet}, engine {state.engine}")
    for host in state.hosts:
        print(f"  {host.name:8} {host.address:15} container {host.container}")
    inventory = rig.inventory_path(state.name)
    print(f"inventory: {inventory}")
    print(f"next: sovstack bootstrap -i {inventory}")
    return 0


def cmd_rig_down(args: argparse.Namespace) -> int:
    rig.down(args.name, args.keep_image, say)
    print(f"rig {args.name!r} is down")
    return 0


def cmd_rig_status(args: argparse.Namespace) -> int:
    state, hosts = rig.status(args.name)
    if state is None:
        print(f"rig {args.name!r} is not up")
        return 1
    print(f"rig {state.name!r}: {state.subnet}, engine {state.engine}, image {state.image}")
    healthy = True
    for host in hosts:
        ok = host.state == "running" and host.ssh
        healthy = healthy and ok
        print(f"  {host.name:8} {host.address:15} {host.state:10} ssh {'ok' if host.ssh else 'DOWN'}")
    print(f"inventory: {rig.inventory_path(state.name)}")
    return 0 if healthy else 1


def cmd_playbook(args: argparse.Namespace) -> int:
    from sovstack.runner import run_playbook

    inventory = Path(args.inventory) if args.inventory else rig.inventory_path(rig.DEFAULT_NAME)
    extravars: dict[str, Any] = {}
    for group in args.extra_vars or []:
        extravars.update(group)
    result = run_playbook(args.playbook, inventory, limit=args.limit, extravars=extravars)
    return 0 if result.rc == 0 else 1


def build_parser() -> Parser:
    parser = Parser(prog="sovstack", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sovstack {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rig_parser = commands.add_parser("rig", help="the local test rig: hosts in containers on this machine")
    rig_commands = rig_parser.add_subparsers(dest="rig_command", required=True, metavar="ACTION")
    up = rig_commands.add_parser("up", help="make (or keep) the rig's hosts, network and inventory")
    up.add_argument("--hosts", type=host_count, default=3, help="number of hosts (default 3)")
    up.add_argument(
        "--engine",
        choices=rig.ENGINES,
        default="docker",
        help="container engine the hosts' services run on, written to the inventory (default docker)",
    )
    up.add_argument("--subnet", help=f"IPv4 network of the rig (default {rig.DEFAULT_SUBNET})")
    up.set_defaults(func=cmd_rig_up)
    down = rig_commands.add_parser("down", help="remove everything the rig made, and nothing else")
    down.add_argument("--keep-image", action="store_true", help="keep the host image for the next `up`")
    down.set_defaults(func=cmd_rig_down)
    status = rig_commands.add_parser("status", help="show the rig's hosts; exit 1 unless all answer")
    status.set_defaults(func=cmd_rig_status)
    for sub in (up, down, status):
        sub.add_argument("--name", default=rig.DEFAULT_NAME, help="rig name (default rig)")

    bootstrap = commands.add_parser(
        "bootstrap", help="prepare hosts: packages, time, sysctl, /etc/hosts, service user, container engine"
    )
    bootstrap.set_defaults(func=cmd_playbook, playbook="bootstrap")
    prechecks = commands.add_parser(
        "prechecks",
        help="check the topology and every host, change nothing, report every problem by host",
    )
    prechecks.set_defaults(func=cmd_playbook, playbook="prechecks")
    for sub in (bootstrap, prechecks):
        sub.add_argument("-i", "--inventory", help="inventory (default: the rig's)")
        sub.add_argument("-l", "--limit", help="only these hosts or groups (an Ansible pattern)")
        sub.add_argument(
            "-e", "--extra-vars", type=extra_var, action="append", metavar="KEY=VALUE", help="set a variable"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SovstackError as exc:
        print(f"sovstack: error: {exc}", file=sys.stderr)
        return 1
    except DockerException as exc:
        print(f"sovstack: error: container engine: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sovstack: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
