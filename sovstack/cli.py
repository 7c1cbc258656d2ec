"""The `sovstack` command: a thin shell over the collection's playbooks and the test rig."""

from __future__ import annotations

import argparse
import difflib
import functools
import hashlib
import os
import re
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml
from docker.errors import DockerException

from sovstack import __version__, rig
from sovstack.errors import SovstackError
from sovstack.images import DEFAULT_SUITE
from sovstack.paths import inventory_dir, state_home
from sovstack.registry import LOCK_NAME, Archive, Lock, Registry, offline_lock, save_archive, subset_archive


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


def engine_list(text: str) -> str:
    """--engine: one engine, or one per host (their count is checked against --hosts by rig up)."""
    try:
        rig.parse_engines(text, len(text.split(",")))
    except SovstackError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--engine {text}: ")) from None
    return text


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
    state = rig.up(args.name, args.hosts, args.engine, args.subnet, say, suite=args.suite)
    print(
        f"\nrig {state.name!r} is up: {len(state.hosts)} Debian {state.suite} hosts on {state.subnet},"
        f" engine {state.engine}"
    )
    for host in state.hosts:
        print(f"  {host.name:8} {host.address:15} {host.engine:7} container {host.container}")
    inventory = rig.inventory_path(state.name)
    print(f"inventory: {inventory}")
    print(
        f"registry: {state.hosts[0].address}:{rig.REGISTRY_PORT}"
        " (plain HTTP, once `sovstack registry` runs it)"
    )
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
    print(f"rig {state.name!r}: Debian {state.suite}, {state.subnet}, engine {state.engine}")
    print(f"  image {state.image}")
    healthy = True
    engines = {host.name: host.engine for host in state.hosts}
    for host in hosts:
        ok = host.state == "running" and host.ssh
        healthy = healthy and ok
        print(
            f"  {host.name:8} {host.address:15} {engines[host.name]:7} {host.state:10} "
            f"ssh {'ok' if host.ssh else 'DOWN'}"
        )
    print(f"inventory: {rig.inventory_path(state.name)}")
    return 0 if healthy else 1


def inventory_of(args: argparse.Namespace) -> Path:
    """-i INVENTORY, default the rig's."""
    return Path(args.inventory) if args.inventory else rig.inventory_path(rig.DEFAULT_NAME)


def cmd_playbook(args: argparse.Namespace) -> int:
    from sovstack.runner import run_playbook

    inventory = inventory_of(args)
    extravars: dict[str, Any] = {}
    for group in args.extra_vars or []:
        extravars.update(group)
    services = getattr(args, "services", None)
    if services:
        extravars["sovstack_services"] = services
    if getattr(args, "stop_members", False):
        extravars["mariadb_recover_stop_members"] = True
    needs_secrets = args.playbook in SECRET_PLAYBOOKS
    result = run_playbook(
        args.playbook,
        inventory,
        limit=args.limit,
        extravars=extravars,
        require_secrets=needs_secrets,
        vault_password_file=vault_password_of(args),
    )
    if result.rc == 0 and args.playbook in ("deploy", "reconfigure"):
        clouds = inventory_dir(inventory) / "clouds.yaml"
        if clouds.is_file():
            print("the cloud answers at its VIP; use it with:")
            print(f"  export OS_CLIENT_CONFIG_FILE={clouds} OS_CLOUD=sovstack")
            print("  openstack token issue")
    return 0 if result.rc == 0 else 1


# The commands that run a playbook of the collection: (command, playbook, help).
PLAYBOOK_COMMANDS = [
    (
        "bootstrap",
        "bootstrap",
        "prepare hosts: packages, time, sysctl, /etc/hosts, service user, container engine",
    ),
    (
        "prechecks",
        "prechecks",
        "check the topology and every host, change nothing, report every problem by host",
    ),
    (
        "registry",
        "registry",
        "run the image registry on the first control host (playbook sovstack.cloud.registry)",
    ),
    (
        "deploy",
        "deploy",
        "deploy every service in dependency order, after the prechecks (playbook sovstack.cloud.deploy)",
    ),
    (
        "reconfigure",
        "reconfigure",
        "apply changed settings: restart only the containers whose configuration changed",
    ),
    (
        "recover-db",
        "recover_db",
        "start a fully stopped database cluster again from its most advanced member",
    ),
    ("rotate-keys", "rotate_keys", "rotate keystone's fernet keys and copy them to every keystone host"),
]
# Playbooks that run the services: every secret must be set first.
SECRET_PLAYBOOKS = ("prechecks", "deploy", "reconfigure", "recover_db", "rotate_keys")


@functools.cache
def deploy_services() -> tuple[str, ...]:
    """The services of the catalog (roles/NAME/meta/service.yml), in deploy order; read once
    per command (the parser's help and --services both need them)."""
    from sovstack.paths import collection_module

    catalog = collection_module("catalog")
    try:
        return tuple(catalog.load())
    except catalog.CatalogError as exc:
        raise SovstackError(f"{exc}: reinstall sovstack") from None


def service_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = deploy_services()
    for name in names:
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            raise argparse.ArgumentTypeError(
                f"unknown service {name!r}{f' (did you mean {hint[0]!r}?)' if hint else ''}:"
                f" the services are {', '.join(known)}"
            )
    return names


def vault_password_of(args: argparse.Namespace) -> Path | None:
    """--vault-password-file FILE, which must exist (None: $ANSIBLE_VAULT_PASSWORD_FILE, if set)."""
    password = Path(args.vault_password_file) if args.vault_password_file else None
    if password is not None and not password.is_file():
        raise SovstackError(f"--vault-password-file {password}: no such file")
    return password


def secrets_inventory(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The inventory and the vault password file of a `secrets` action."""
    return inventory_of(args), vault_password_of(args)


def cmd_secrets_generate(args: argparse.Namespace) -> int:
    from sovstack import secrets

    inventory, password = secrets_inventory(args)
    names = secrets.generate(inventory, password)
    print(f"secrets: wrote {len(names)} secrets to {secrets.secrets_path(inventory)} (mode 0600)")
    return 0


def cmd_secrets_merge(args: argparse.Namespace) -> int:
    from sovstack import secrets

    inventory, password = secrets_inventory(args)
    added = secrets.merge(inventory, password)
    path = secrets.secrets_path(inventory)
    if not added:
        print(f"secrets: nothing to add; {path} has all {len(secrets.load_spec())}")
        return 0
    kept = secrets.count(inventory, password) - len(added)
    print(f"secrets: added {len(added)} ({', '.join(added)}) to {path}; {kept} kept unchanged")
    return 0


def images_dir() -> Path:
    return state_home() / "images"


def lock_path(args: argparse.Namespace) -> Path:
    return Path(args.lock) if args.lock else images_dir() / LOCK_NAME


def registry_address(text: str) -> str:
    if not re.match(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST or HOST:PORT")
    return text


def registry_of(args: argparse.Namespace) -> Registry:
    """The registry named on the command line; its login from the environment (never an argument)."""
    ca = Path(args.registry_ca) if args.registry_ca else None
    if ca is not None and not ca.is_file():
        raise SovstackError(f"--registry-ca {ca}: no such file")
    return Registry(
        args.registry,
        insecure=args.insecure,
        ca=ca,
        username=os.environ.get("SOVSTACK_REGISTRY_USER") or None,
        password=os.environ.get("SOVSTACK_REGISTRY_PASSWORD") or None,
    )


def cmd_images_build(args: argparse.Namespace) -> int:
    from sovstack import images

    defs = images.load_definitions()
    names = images.select(defs, args.only)
    options = images.BuildOptions.make(args.suite, args.apt_source, rig.apt_mirror())
    if args.push and not args.registry:
        raise SovstackError("--push needs --registry HOST:PORT")
    client = rig.connect_engine(say, start=True)
    assert client is not None
    started = time.monotonic()
    builder = images.Builder(
        client, defs, options, say, workdir=images_dir(), jobs=args.jobs, rebuild=args.rebuild
    )
    results = builder.build(names)
    images.record_built(images_dir(), options.suite, results, say)
    if "registry" in names:
        tag = builder.tag("registry")
        image_id = client.images.get(tag).id
        images.registry_archive(
            images_dir(), tag, image_id, lambda path: save_archive(client, [tag], path, say)
        )
    built = [r for r in results if r.built]
    print(
        f"\n{len(built)} built, {len(results) - len(built)} up to date, in {time.monotonic() - started:.1f} s"
        f", from {images.release(options.suite)}"
    )
    for result in results:
        print(f"  {result.name:22} {result.tag}{'' if result.built else '  (up to date)'}")
    if args.push:
        return push(client, args, [r.name for r in results])
    return 0


def push(client: Any, args: argparse.Namespace, names: list[str] | None) -> int:
    from sovstack import images

    registry = registry_of(args)
    registry.ping()
    suite, tags = images.built_tags(client, images_dir(), names)
    lock_file = lock_path(args)
    lock = Lock.load(lock_file) if lock_file.is_file() else Lock(args.registry, args.namespace, {})
    if lock.registry != args.registry or lock.namespace != args.namespace:
        lock = Lock(args.registry, args.namespace, {})  # pins of another registry do not carry over
    others = sorted(n for n, e in lock.images.items() if e.get("suite", "") != suite and n not in tags)
    if others:
        raise SovstackError(
            f"{lock_file} pins images of {lock.suite} ({', '.join(others[:5])}"
            f"{', ...' if len(others) > 5 else ''}) and these are {suite}'s: one lock holds one suite."
            f" Push the whole {suite} set (without --only), or give another --lock"
        )
    todo = {}
    for name, tag in tags.items():
        entry = lock.images.get(name, {})
        if (
            entry.get("tag") == tag.rsplit(":", 1)[1]
            and entry.get("id") == client.images.get(tag).id
            and registry.manifest_digest(f"{args.namespace}/{name}", entry["digest"]) == entry["digest"]
        ):
            say(f"push {name}: up to date in {args.registry} ({entry['digest'][:19]}...)")
        else:
            todo[name] = tag
    if todo:
        with tempfile.TemporaryDirectory(prefix="sovstack-push-", dir="/var/tmp") as tmp:
            archive_path = Path(tmp) / "images.tar"
            save_archive(client, list(todo.values()), archive_path, say)
            with Archive(archive_path) as archive:
                entries = archive.push(registry, args.namespace, say)
        lock.images.update(entries)
        lock.dump(lock_file)
        for name, tag in todo.items():
            images.write_sbom(client, name, tag, entries[name]["image"], lock_file.parent / "sbom")
    print(f"lock: {lock_file} ({len(lock.images)} images pinned, {len(todo)} pushed now)")
    print(f"SBOMs: {lock_file.parent / 'sbom'}")
    return 0


def cmd_images_push(args: argparse.Namespace) -> int:
    if not args.registry:
        raise SovstackError("images push needs --registry HOST:PORT")
    client = rig.connect_engine(say, start=False)
    if client is None:
        raise SovstackError(
            "no container engine answers here: the images are built on this machine's dockerd"
        )
    return push(client, args, args.only)


def cmd_images_verify(args: argparse.Namespace) -> int:
    lock_file = lock_path(args)
    lock = Lock.load(lock_file)
    if not (args.registry or lock.registry):
        raise SovstackError(f"{lock_file} names no registry: give --registry HOST:PORT")
    if not args.registry:
        args.registry = lock.registry
    registry = registry_of(args)
    problems = lock.verify(registry)
    if problems:
        print(f"{lock_file} disagrees with registry {registry.address}:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"{lock_file}: all {len(lock.images)} images are in {registry.address} with the pinned digests")
    return 0


def cmd_images_export(args: argparse.Namespace) -> int:
    from sovstack import images

    client = rig.connect_engine(say, start=False)
    if client is None:
        raise SovstackError(
            "no container engine answers here: the images are built on this machine's dockerd"
        )
    _, tags = images.built_tags(client, images_dir(), args.only)
    target = Path(args.file)
    with tempfile.TemporaryDirectory(prefix="sovstack-export-", dir=target.parent) as tmp:
        saved = Path(tmp) / "images.tar"
        save_archive(client, list(tags.values()), saved, say)
        with Archive(saved) as archive:
            lock = offline_lock(archive, args.namespace)
        sbom_dir = Path(tmp) / "sbom"
        for name, tag in tags.items():
            images.write_sbom(client, name, tag, lock.images[name]["image"], sbom_dir)
        lock.dump(Path(tmp) / LOCK_NAME)
        with tarfile.open(saved, "a:") as out:
            out.add(Path(tmp) / LOCK_NAME, arcname=f"sovstack/{LOCK_NAME}")
            out.add(sbom_dir, arcname="sovstack/sbom")
        saved.replace(target)
    print(
        f"exported {len(tags)} images with their lock and SBOMs to {target}"
        f" ({target.stat().st_size / 1e9:.2f} GB)"
    )
    return 0


def cmd_images_import(args: argparse.Namespace) -> int:
    from sovstack import images

    source = Path(args.file)
    lock_file = lock_path(args)
    with Archive(source) as archive:
        try:
            shipped = yaml.safe_load(archive.read(f"sovstack/{LOCK_NAME}"))
        except (KeyError, yaml.YAMLError):
            raise SovstackError(
                f"{source} has no sovstack/{LOCK_NAME}: make it with `sovstack images export`"
            ) from None
        expected = offline_lock(archive, shipped.get("namespace", "sovstack"))
        for name, entry in shipped.get("images", {}).items():
            if name not in expected.images or expected.images[name]["digest"] != entry.get("digest"):
                raise SovstackError(
                    f"{source}: image {name} does not match its lock entry {entry.get('digest')}:"
                    " the file is damaged"
                )
        if "registry" in archive.images:
            registry_image = archive.images["registry"]
            image_id = "sha256:" + hashlib.sha256(registry_image.config).hexdigest()
            path = images.registry_archive(
                images_dir(),
                registry_image.tag,
                image_id,
                lambda p: subset_archive(archive, ["registry"], p),
            )
            say(f"registry image: {path} (for the registry playbook)")
        sbom_dir = lock_file.parent / "sbom"
        sbom_dir.mkdir(parents=True, exist_ok=True)
        for member in archive.tar.getmembers():
            if member.isfile() and member.name.startswith("sovstack/sbom/"):
                (sbom_dir / Path(member.name).name).write_bytes(archive.read(member.name))
        if not args.registry:
            print(f"{len(archive.images)} images checked in {source}; next: run the registry playbook, then")
            print(f"  sovstack images import {source} --registry HOST:PORT")
            return 0
        namespace = expected.namespace
        entries = archive.push(registry_of(args), namespace, say)
    for name, entry in entries.items():
        if entry["digest"] != expected.images[name]["digest"]:
            raise SovstackError(
                f"registry {args.registry} stored {name} as {entry['digest']}, not as exported"
            )
    Lock(args.registry, namespace, entries).dump(lock_file)
    print(f"imported {len(entries)} images into {args.registry}; lock: {lock_file}")
    return 0


def image_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def job_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= value <= 16:
        raise argparse.ArgumentTypeError(f"must be between 1 and 16, got {value}")
    return value


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
        type=engine_list,
        default="docker",
        metavar="ENGINE[,ENGINE...]",
        help="container engine the hosts' services run on, docker or podman, written to the inventory: "
        "one for every host, or one per host in order, e.g. docker,podman,docker (default docker)",
    )
    up.add_argument("--subnet", help=f"IPv4 network of the rig (default {rig.DEFAULT_SUBNET})")
    up.add_argument(
        "--suite",
        choices=rig.HOST_SUITES,
        help=f"the hosts' Debian release (default {rig.DEFAULT_HOST_SUITE}; a rig keeps its own)",
    )
    up.set_defaults(func=cmd_rig_up)
    down = rig_commands.add_parser("down", help="remove everything the rig made, and nothing else")
    down.add_argument("--keep-image", action="store_true", help="keep the host image for the next `up`")
    down.set_defaults(func=cmd_rig_down)
    status = rig_commands.add_parser("status", help="show the rig's hosts; exit 1 unless all answer")
    status.set_defaults(func=cmd_rig_status)
    for sub in (up, down, status):
        sub.add_argument("--name", default=rig.DEFAULT_NAME, help="rig name (default rig)")

    playbook_commands = {}
    for command, playbook, text in PLAYBOOK_COMMANDS:
        sub = commands.add_parser(command, help=text)
        sub.set_defaults(func=cmd_playbook, playbook=playbook)
        playbook_commands[command] = sub
    for command in ("deploy", "reconfigure"):
        playbook_commands[command].add_argument(
            "--services",
            type=service_names,
            metavar="NAMES",
            help=f"only these, comma-separated: {', '.join(deploy_services())}",
        )
    playbook_commands["recover-db"].add_argument(
        "--stop-members",
        action="store_true",
        help="stop the members that still run but are in no primary component (restart loops,"
        " non-primary) before recovering; without it recover-db refuses while any runs",
    )
    for sub in playbook_commands.values():
        sub.add_argument("-i", "--inventory", help="inventory (default: the rig's)")
        sub.add_argument("-l", "--limit", help="only these hosts or groups (an Ansible pattern)")
        sub.add_argument(
            "-e", "--extra-vars", type=extra_var, action="append", metavar="KEY=VALUE", help="set a variable"
        )
        sub.add_argument(
            "--vault-password-file",
            metavar="FILE",
            help="ansible-vault password file, for the checks and for Ansible "
            "(default $ANSIBLE_VAULT_PASSWORD_FILE)",
        )
    secrets_parser = commands.add_parser(
        "secrets", help="the cloud's passwords in the inventory: generate them, add new ones on upgrade"
    )
    secrets_commands = secrets_parser.add_subparsers(dest="secrets_command", required=True, metavar="ACTION")
    generate = secrets_commands.add_parser(
        "generate", help="write every secret, strong random, to group_vars/all/secrets.yml (mode 0600)"
    )
    generate.set_defaults(func=cmd_secrets_generate)
    merge = secrets_commands.add_parser(
        "merge", help="add the secrets the file lacks; never change an existing one"
    )
    merge.set_defaults(func=cmd_secrets_merge)
    for sub in (generate, merge):
        sub.add_argument("-i", "--inventory", help="inventory (default: the rig's)")
        sub.add_argument(
            "--vault-password-file",
            metavar="FILE",
            help="ansible-vault password file: the secrets file is (or is written) encrypted "
            "(default $ANSIBLE_VAULT_PASSWORD_FILE)",
        )
    images_parser = commands.add_parser("images", help="the service images: build, push, export, import")
    images_commands = images_parser.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    build = images_commands.add_parser("build", help="build the images that are missing or changed")
    build.add_argument("--suite", help=f"Debian suite (default {DEFAULT_SUITE})")
    build.add_argument(
        "--apt-source",
        action="append",
        metavar="LINE",
        help="an apt source line for the images, repeatable; replaces the default "
        "(this machine's Debian mirror: SUITE, SUITE-updates, SUITE-security)",
    )
    build.add_argument("--jobs", type=job_count, default=2, help="images built at the same time (default 2)")
    build.add_argument(
        "--rebuild",
        action="store_true",
        help="build the selected images again even when they are up to date, from a fresh "
        "debootstrap: takes in the package updates of the mirror",
    )
    build.add_argument("--push", action="store_true", help="then push them to --registry and write the lock")
    build.set_defaults(func=cmd_images_build)
    push_parser = images_commands.add_parser(
        "push", help="push the built images and pin them in the lock file"
    )
    push_parser.set_defaults(func=cmd_images_push)
    verify = images_commands.add_parser("verify", help="check that the registry holds every pinned digest")
    verify.set_defaults(func=cmd_images_verify)
    export = images_commands.add_parser("export", help="write the built images, a lock and SBOMs to one file")
    export.add_argument("file", metavar="FILE")
    export.set_defaults(func=cmd_images_export)
    import_parser = images_commands.add_parser(
        "import", help="check an exported file, and push its images to --registry"
    )
    import_parser.add_argument("file", metavar="FILE")
    import_parser.set_defaults(func=cmd_images_import)
    for sub, which in (
        (build, "these images (comma separated) and their parents"),
        (push_parser, "only these images (comma separated)"),
        (export, "only these images (comma separated)"),
    ):
        sub.add_argument("--only", type=image_names, metavar="NAMES", help=which)
    for sub in (build, push_parser, verify, import_parser):
        sub.add_argument("--registry", type=registry_address, help="the registry, HOST:PORT")
        sub.add_argument("--insecure", action="store_true", help="the registry speaks plain HTTP")
        sub.add_argument("--registry-ca", metavar="FILE", help="CA certificate (PEM) of the registry")
    for sub in (build, push_parser, verify, import_parser):
        sub.add_argument(
            "--lock", metavar="FILE", help=f"the lock file (default $SOVSTACK_HOME/images/{LOCK_NAME})"
        )
    for sub in (build, push_parser, export, import_parser):
        sub.add_argument(
            "--namespace", default="sovstack", help="repository prefix in the registry (default sovstack)"
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
