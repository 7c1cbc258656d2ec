"""The image pipeline: service images built from Debian packages, layer on layer.

The family is defined in images/images.yml. The root is made with debootstrap (no registry
needed), every other image in a container from its parent that installs its packages and is
committed with the image's entry point, user, healthcheck and labels. An image is tagged
``sovstack/NAME:HASH`` where HASH covers its definition, its files and its parent's HASH, so
an image is rebuilt exactly when it or an ancestor changed.

The set is built from one Debian suite (DEFAULT_SUITE unless `--suite` names another). The
suite is part of every tag (``sovstack/NAME:SUITE-HASH``), of its labels, the lock and the
SBOMs, so that images of two suites never share a tag or a digest.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml
from docker.types import Mount

from sovstack.errors import SovstackError
from sovstack.paths import collection_root, state_home

REPO = "sovstack"
# Debian 13: OpenStack 2025.1. bookworm (Debian 12, OpenStack Zed) stays buildable with
# --suite, to patch a cloud that runs it.
DEFAULT_SUITE = "trixie"
ENTRYPOINT = ["/usr/local/bin/sovstack-start"]
PACKAGES_FILE = "/usr/share/sovstack/packages.tsv"
LABEL_NAME = "sovstack.image.name"
LABEL_DEFINITION = "sovstack.image.definition"
LABEL_SUITE = "sovstack.image.suite"
# What each suite brings, for messages and docs; another suite builds too, unnamed here.
RELEASES = {
    "bookworm": "Debian 12, OpenStack Zed 2022.2",
    "trixie": "Debian 13, OpenStack 2025.1 Epoxy",
}
SUITE_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
FIELDS = {
    "description": str,
    "parent": str,
    "abstract": bool,
    "packages": list,
    "main": str,
    "users": list,
    "user": str,
    "config": str,
    "command": list,
    "healthcheck": list,
    "version": list,
    "script": str,
    "files": bool,
}
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
SECONDS = 1_000_000_000  # the engine counts healthcheck durations in nanoseconds

Say = Callable[[str], None]


@dataclass(frozen=True)
class ImageDef:
    name: str
    description: str = ""
    parent: str | None = None
    abstract: bool = False
    packages: tuple[str, ...] = ()
    main: str | None = None
    users: tuple[tuple[str, int, str], ...] = ()
    user: str = "root"
    config: str | None = None
    command: tuple[str, ...] = ()
    healthcheck: tuple[str, ...] = ()
    version: tuple[str, ...] = ()
    script: str = ""
    files: bool = False

    def record(self) -> dict[str, Any]:
        """What the definition hash covers."""
        return {key: getattr(self, key) for key in FIELDS}


def definitions_path() -> Path:
    return collection_root() / "images" / "images.yml"


def load_definitions(path: Path | None = None) -> dict[str, ImageDef]:
    """Read and check images.yml; errors name the file, the image and the key."""
    path = path or definitions_path()
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SovstackError(f"{path}: cannot read the image definitions: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), dict) or not data["images"]:
        raise SovstackError(f"{path}: expected a mapping `images:` of image definitions")
    defs: dict[str, ImageDef] = {}
    for name, raw in data["images"].items():
        where = f"{path}: images.{name}"
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise SovstackError(f"{where}: an image name is lower case letters, digits and dashes")
        if not isinstance(raw, dict):
            raise SovstackError(f"{where}: expected a mapping")
        for key, value in raw.items():
            if key not in FIELDS:
                raise SovstackError(f"{where}.{key}: unknown key{did_you_mean(str(key), FIELDS)}")
            if not isinstance(value, FIELDS[key]):
                raise SovstackError(f"{where}.{key}: expected a {FIELDS[key].__name__}")
        users = []
        for entry in raw.get("users", []):
            if not (isinstance(entry, dict) and {"name", "id", "home"} == set(entry)):
                raise SovstackError(f"{where}.users: each user is {{name, id, home}}")
            users.append((str(entry["name"]), int(entry["id"]), str(entry["home"])))
        image = ImageDef(
            name=name,
            description=raw.get("description", ""),
            parent=raw.get("parent"),
            abstract=raw.get("abstract", False),
            packages=tuple(str(p) for p in raw.get("packages", [])),
            main=raw.get("main"),
            users=tuple(users),
            user=raw.get("user", "root"),
            config=raw.get("config"),
            command=tuple(str(a) for a in raw.get("command", [])),
            healthcheck=tuple(str(a) for a in raw.get("healthcheck", [])),
            version=tuple(str(a) for a in raw.get("version", [])),
            script=raw.get("script", ""),
            files=raw.get("files", False),
        )
        if not image.abstract and not (image.command and image.healthcheck):
            raise SovstackError(f"{where}: a service image needs `command` and `healthcheck`")
        if not image.version:
            raise SovstackError(f"{where}: `version` is missing (the command that prints its version)")
        if image.files and not (path.parent / "files" / name).is_dir():
            raise SovstackError(f"{where}.files: {path.parent / 'files' / name} does not exist")
        defs[name] = image
    roots = [d.name for d in defs.values() if d.parent is None]
    if len(roots) != 1:
        raise SovstackError(f"{path}: exactly one image has no parent (the debootstrap root), not {roots}")
    for image in defs.values():
        if image.parent is not None and image.parent not in defs:
            raise SovstackError(
                f"{path}: images.{image.name}.parent: no image {image.parent!r}"
                f"{did_you_mean(image.parent, defs)}"
            )
    for image in defs.values():  # every chain of parents ends at the root
        seen = {image.name}
        current = image
        while current.parent is not None:
            if current.parent in seen:
                raise SovstackError(f"{path}: images.{image.name}: its parents form a loop")
            seen.add(current.parent)
            current = defs[current.parent]
    return defs


def release(suite: str) -> str:
    """A suite with what it brings: `trixie (Debian 13, OpenStack 2025.1 Epoxy)`."""
    return f"{suite} ({RELEASES[suite]})" if suite in RELEASES else suite


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def main_package(defs: dict[str, ImageDef], name: str) -> str:
    """The package whose version labels the image: `main`, its first package, or its parent's."""
    image = defs[name]
    if image.main or image.packages:
        return image.main or image.packages[0]
    return main_package(defs, image.parent) if image.parent else "base-files"


def ancestry(defs: dict[str, ImageDef], name: str) -> list[str]:
    """The image and its parents, root first."""
    chain = [name]
    while (parent := defs[chain[-1]].parent) is not None:
        chain.append(parent)
    return chain[::-1]


def select(defs: dict[str, ImageDef], only: Iterable[str] | None) -> list[str]:
    """The images to build, in build order: all, or the named ones with their parents."""
    if not only:
        wanted = set(defs)
    else:
        wanted = set()
        for name in only:
            if name not in defs:
                raise SovstackError(
                    f"unknown image {name!r}{did_you_mean(name, defs)}: see images/images.yml"
                )
            wanted.update(ancestry(defs, name))
    depth = {name: len(ancestry(defs, name)) for name in wanted}
    return sorted(wanted, key=lambda n: (depth[n], n))


@dataclass(frozen=True)
class AptSource:
    line: str
    uri: str
    suite: str

    @classmethod
    def parse(cls, line: str) -> AptSource:
        words = line.split()
        if words and words[0] == "deb" and len(words) > 1 and words[1].startswith("["):
            while len(words) > 1 and not words[1].endswith("]"):
                words.pop(1)
            words.pop(1)
        if len(words) < 4 or words[0] != "deb" or not re.match(r"^https?://", words[1]):
            raise SovstackError(
                f"apt source {line!r} is not `deb [OPTIONS] http(s)://URI SUITE COMPONENT...`"
            )
        return cls(line=line.strip(), uri=words[1].rstrip("/"), suite=words[2])


@dataclass(frozen=True)
class BuildOptions:
    suite: str = DEFAULT_SUITE
    apt_sources: tuple[AptSource, ...] = ()

    @classmethod
    def make(cls, suite: str | None, lines: Iterable[str] | None, mirror: str) -> BuildOptions:
        if lines:
            sources = tuple(AptSource.parse(line) for line in lines)
            suite = suite or sources[0].suite  # the sources name the suite when --suite does not
        suite = suite or DEFAULT_SUITE
        if not SUITE_RE.match(suite):
            raise SovstackError(f"--suite {suite!r} is not a Debian suite name (such as trixie or bookworm)")
        if not lines:
            security = mirror + "-security" if mirror.endswith("/debian") else None
            defaults = [f"deb {mirror} {suite} main", f"deb {mirror} {suite}-updates main"]
            if security:
                defaults.append(f"deb {security} {suite}-security main")
            sources = tuple(AptSource.parse(line) for line in defaults)
        return cls(suite=suite, apt_sources=sources)

    @property
    def mirror(self) -> str:
        """Where debootstrap fetches the root from: the first source."""
        return self.apt_sources[0].uri

    def record(self) -> dict[str, Any]:
        return {"suite": self.suite, "sources": [s.line for s in self.apt_sources]}


def files_digest(directory: Path) -> str:
    """A digest of a files tree: paths, modes and contents."""
    digest = hashlib.sha256()
    if directory.is_dir():
        for path in sorted(directory.rglob("*")):
            rel = path.relative_to(directory).as_posix()
            digest.update(f"{rel}\0{path.lstat().st_mode:o}\0".encode())
            if path.is_symlink():
                digest.update(str(path.readlink()).encode())
            elif path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


def definition_hashes(defs: dict[str, ImageDef], options: BuildOptions, files_root: Path) -> dict[str, str]:
    hashes: dict[str, str] = {}

    def of(name: str) -> str:
        if name not in hashes:
            image = defs[name]
            record: dict[str, Any] = {"builder": builder_digest(), "image": image.record()}
            record["parent"] = of(image.parent) if image.parent else options.record()
            if image.files:
                record["files"] = files_digest(files_root / name)
            text = json.dumps(record, sort_keys=True).encode()
            hashes[name] = hashlib.sha256(text).hexdigest()[:16]
        return hashes[name]

    for name in defs:
        of(name)
    return hashes


def tag_of(name: str, digest: str, suite: str) -> str:
    return f"{REPO}/{name}:{suite}-{digest}"


def check_sources(options: BuildOptions, timeout: float = 15.0) -> None:
    """Each apt source answers for its suite; else an error naming the source."""
    for source in options.apt_sources:
        url = f"{source.uri}/dists/{source.suite}/Release"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 (http/https only, parsed above)
                reply.read(1)
        except urllib.error.HTTPError as exc:
            raise SovstackError(
                f"apt source {source.line!r}: {url} answered {exc.code}: is {source.suite!r} a suite there?"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SovstackError(f"apt source {source.line!r} is unreachable: {reason}") from None


@dataclass
class Built:
    name: str
    tag: str
    built: bool  # False: an image of this definition was already there
    seconds: float = 0.0
    size: int = 0
    version: str = ""


BUILD_SCRIPT = r"""
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
{setup}
{users}
if [ -n "{packages}" ]; then
    # Once more after a failure: a maintainer script that failed once (seen: the compress step
    # of openstack-dashboard's postinst, on a loaded machine, passing on the next try) or a lost
    # download; a failure that repeats stops the build.
    if ! apt-get install -y -q --no-install-recommends {packages}; then
        echo "sovstack: the package installation failed; trying once more" >&2
        dpkg --configure -a
        apt-get install -y -q --no-install-recommends {packages}
    fi
fi
if [ -d /sovstack-files ]; then cp -a /sovstack-files/. /; fi
{script}
mkdir -p "$(dirname {packages_file})"
dpkg-query -W -f '${{Package}}\t${{Version}}\t${{Architecture}}\t${{source:Package}}\t${{source:Version}}\n' \
    | sort > {packages_file}
rm -rf /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log /var/cache/debconf/*-old \
    /var/lib/dpkg/*-old /var/cache/apt/*.bin /tmp/* /root/.cache
"""

# Once, in the root image: apt never starts services, skips docs and recommends, and
# system users may have the fixed ids sovstack gives its service users (42400 and up).
ROOT_SETUP = r"""
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d
cat > /etc/apt/apt.conf.d/90sovstack <<'CONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Binary::apt::APT::Keep-Downloaded-Packages "true";
Acquire::Retries "3";
CONF
cat > /etc/dpkg/dpkg.cfg.d/90sovstack <<'CONF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
CONF
# trixie's minbase has no adduser (bookworm's has): the packages' maintainer scripts need it
[ -f /etc/adduser.conf ] || apt-get install -y -q --no-install-recommends adduser
sed -i -e 's/^#\?LAST_SYSTEM_UID=.*/LAST_SYSTEM_UID=64999/' \
    -e 's/^#\?LAST_SYSTEM_GID=.*/LAST_SYSTEM_GID=64999/' \
    /etc/adduser.conf
sed -i -e 's/^#\?SYS_UID_MAX.*/SYS_UID_MAX 64999/' -e 's/^#\?SYS_GID_MAX.*/SYS_GID_MAX 64999/' /etc/login.defs
rm -rf /usr/share/doc/* /usr/share/man/* /usr/share/info/*
apt-get -y -q upgrade
"""


# Bump when the way a build container becomes an image changes outside the scripts above.
BUILD_FORMAT = 2


def builder_digest() -> str:
    """How images are built (the scripts above, BUILD_FORMAT): a change rebuilds every image."""
    return hashlib.sha256(f"{BUILD_FORMAT}\n{BUILD_SCRIPT}{ROOT_SETUP}".encode()).hexdigest()[:16]


class Builder:
    def __init__(
        self,
        client: docker.DockerClient,
        defs: dict[str, ImageDef],
        options: BuildOptions,
        say: Say,
        workdir: Path | None = None,
        jobs: int = 2,
        rebuild: bool = False,
    ) -> None:
        self.client = client
        self.rebuild = rebuild  # build again even what is present: takes in the mirror's updates
        self.defs = defs
        self.options = options
        self.say = say
        self.files_root = definitions_path().parent / "files"
        self.hashes = definition_hashes(defs, options, self.files_root)
        self.workdir = workdir or state_home() / "images"
        self.jobs = jobs
        self.lock = threading.Lock()
        self.replaced: list[str] = []  # ids of images a rebuild took the tag from, oldest first

    def tag(self, name: str) -> str:
        return tag_of(name, self.hashes[name], self.options.suite)

    def present(self, name: str) -> bool:
        """The image of the current definition is in the engine, built on the parent image
        now tagged (a parent built again, by --rebuild, makes its children stale)."""
        if self.rebuild:
            return False
        try:
            image = self.client.images.get(self.tag(name))
            parent = self.defs[name].parent
            return parent is None or image.attrs.get("Parent") == self.client.images.get(self.tag(parent)).id
        except docker.errors.ImageNotFound:
            return False

    def build(self, names: list[str]) -> list[Built]:
        """Build what is missing of `names` (in build order), parents first, `jobs` at a time."""
        results: dict[str, Built] = {}
        todo = []
        for name in names:  # parents come first
            if self.defs[name].parent not in todo and self.present(name):
                results[name] = Built(name, self.tag(name), built=False)
            else:
                todo.append(name)
        if not todo:
            return [results[n] for n in names]
        check_sources(self.options)
        for sub in ("logs", "apt"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        self.say(
            f"images: {len(todo)} to build from {release(self.options.suite)},"
            f" {len(names) - len(todo)} up to date ({self.jobs} at a time)"
        )
        root_rootfs = self.ensure_rootfs()
        self.update_lists(root_rootfs)
        # Long chains first: an image with many descendants unblocks the most work.
        descendants = {n: sum(n in ancestry(self.defs, m) for m in self.defs) for n in todo}
        pending = sorted(todo, key=lambda n: -descendants[n])
        running: dict[Future[Built], str] = {}
        failure: BaseException | None = None
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            while pending or running:
                ready = [n for n in pending if self.defs[n].parent is None or self.defs[n].parent in results]
                for name in ready:
                    if failure is not None or len(running) >= self.jobs:
                        break
                    pending.remove(name)
                    parent = self.defs[name].parent
                    base = root_rootfs if parent is None else self.tag(parent)
                    running[pool.submit(self.build_one, name, base)] = name
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    running.pop(future)
                    try:
                        built = future.result()
                        results[built.name] = built
                    except BaseException as exc:
                        failure = failure or exc
        self.remove_replaced()
        if failure is not None:
            raise failure
        return [results[n] for n in names]

    def image_id(self, tag: str) -> str | None:
        try:
            return str(self.client.images.get(tag).id)
        except docker.errors.ImageNotFound:
            return None

    def remove_replaced(self) -> None:
        """The images a rebuild took the tags from, children before their parents, and with
        them their untagged parents: left alone, every rebuild would leave a whole untagged
        family on the disk. One still in use stays (by a container, or as the parent of an
        image not rebuilt: it goes with that image's rebuild)."""
        kept = 0
        for image_id in reversed(self.replaced):
            try:
                self.client.images.remove(image_id, noprune=False)
            except docker.errors.ImageNotFound:
                pass  # went with a child removed before it
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # a conflict: in use, or tagged again
                    raise
                kept += 1
        if self.replaced:
            note = f"; {kept} still in use, kept" if kept else ""
            self.say(f"images: removed {len(self.replaced) - kept} image(s) that a rebuild replaced{note}")
        self.replaced.clear()

    def ensure_rootfs(self) -> str:
        """The debootstrap tree of the suite, with the image's apt sources, as an image."""
        record = json.dumps({"builder": builder_digest(), **self.options.record()}, sort_keys=True)
        tag = f"{REPO}/debootstrap:{hashlib.sha256(record.encode()).hexdigest()[:16]}"
        old = self.image_id(tag)
        if old and not self.rebuild:
            return tag
        if not shutil.which("debootstrap"):
            from sovstack.rig import apt_install

            apt_install(["debootstrap"], self.say)
        started = time.monotonic()
        self.say(f"images: debootstrap {self.options.suite} from {self.options.mirror}")
        with tempfile.TemporaryDirectory(prefix="sovstack-images-", dir="/var/tmp") as tmp:
            root = Path(tmp) / "root"
            argv = ["debootstrap", "--variant=minbase", self.options.suite, str(root), self.options.mirror]
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                tail = " / ".join(proc.stdout.strip().splitlines()[-3:])
                raise SovstackError(
                    f"debootstrap {self.options.suite} from {self.options.mirror} failed: {tail}"
                )
            (root / "etc/apt/sources.list").write_text(
                "# written by sovstack images build\n"
                + "".join(f"{s.line}\n" for s in self.options.apt_sources)
            )
            for leftover in [
                *(root / "var/cache/apt/archives").glob("*.deb"),
                *(root / "var/cache/apt").glob("*.bin"),
                *(p for p in (root / "var/lib/apt/lists").iterdir() if p.is_file()),
            ]:
                leftover.unlink()
            tarball = Path(tmp) / "root.tar"
            proc = subprocess.run(
                ["tar", "-C", str(root), "--numeric-owner", "-cf", str(tarball), "."],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise SovstackError(f"tar of the debootstrap tree failed: {proc.stderr.strip()}")
            repo, _, version = tag.partition(":")
            self.client.api.import_image_from_file(str(tarball), repository=repo, tag=version)
            if old:
                self.replaced.append(old)
        self.say(f"images: debootstrap done in {time.monotonic() - started:.0f} s")
        return tag

    def lists_dir(self) -> Path:
        digest = hashlib.sha256(json.dumps(self.options.record(), sort_keys=True).encode()).hexdigest()[:16]
        return self.workdir / "apt" / f"lists-{digest}"

    def update_lists(self, rootfs: str) -> None:
        """apt-get update once per build run, into a package list directory all builds share."""
        lists = self.lists_dir()
        (lists / "partial").mkdir(parents=True, exist_ok=True)
        log = self.workdir / "logs" / "apt-update.log"
        self.run_container(
            rootfs, "apt-get update", {str(lists): "/var/lib/apt/lists"}, log, "apt-get update"
        ).remove()

    def run_container(
        self,
        image: str,
        script: str,
        binds: dict[str, str],
        log: Path,
        what: str,
        healthcheck: dict[str, Any] | None = None,
    ) -> Any:
        """Run `script` as root in a container of `image`; its output goes to `log`. The
        container is returned stopped (the caller removes it).

        The binds are mounts of the container only: as volumes they would be recorded in the
        image. The container carries the healthcheck the image gets, because podman reads an
        image's healthcheck from the config of the container it was committed from."""
        mounts = [
            Mount(inside, host, type="bind", read_only=inside.startswith("/sovstack-files"))
            for host, inside in binds.items()
        ]
        container = self.client.containers.create(
            image,
            entrypoint=["/bin/sh", "-c"],
            command=[script],
            user="root",
            mounts=mounts,
            labels={"sovstack.image.build": what},
            healthcheck=healthcheck or {"test": ["NONE"]},
        )
        try:
            container.start()
            with log.open("wb") as out:
                for chunk in container.logs(stream=True, follow=True):
                    out.write(chunk)
            status = container.wait().get("StatusCode", 1)
        except BaseException:
            container.remove(force=True)
            raise
        if status != 0:
            container.remove(force=True)
            tail = log.read_text(errors="replace").strip().splitlines()[-12:]
            raise SovstackError(f"{what} failed (exit {status}); log {log}:\n  " + "\n  ".join(tail))
        return container

    def build_one(self, name: str, base: str) -> Built:
        image = self.defs[name]
        started = time.monotonic()
        self.say(f"image {name}: building from {base}")
        archives = self.workdir / "apt" / "archives" / name
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        binds = {str(self.lists_dir()): "/var/lib/apt/lists", str(archives): "/var/cache/apt/archives"}
        if image.files:
            binds[str(self.files_root / name)] = "/sovstack-files"
        users = "\n".join(
            f"getent group {u} >/dev/null || groupadd -r -g {i} {u}\n"
            f"getent passwd {u} >/dev/null || useradd -r -M -u {i} -g {u} -d {h} -s /usr/sbin/nologin {u}"
            for u, i, h in image.users
        )
        script = BUILD_SCRIPT.format(
            setup=ROOT_SETUP if image.parent is None else "",
            users=users,
            packages=" ".join(shlex.quote(p) for p in image.packages),
            script=image.script,
            packages_file=PACKAGES_FILE,
        )
        log = self.workdir / "logs" / f"{name}.log"
        check = self.healthcheck(image)
        container = self.run_container(base, script, binds, log, f"image {name}", check)
        try:
            packages = read_file(container, PACKAGES_FILE)
            try:
                version = package_version(packages, main_package(self.defs, name))
            except SovstackError as exc:
                raise SovstackError(f"image {name}: {exc}") from None
            repo, _, digest = self.tag(name).partition(":")
            old = self.image_id(self.tag(name))
            container.commit(repository=repo, tag=digest, conf=self.image_config(image, version))
            if old:
                self.replaced.append(old)
        finally:
            container.remove(force=True)
        size = int(self.client.images.get(self.tag(name)).attrs.get("Size", 0))
        seconds = time.monotonic() - started
        self.say(
            f"image {name}: built in {seconds:.0f} s, {size / 1e6:.0f} MB,"
            f" {main_package(self.defs, name)} {version}"
        )
        return Built(name, self.tag(name), built=True, seconds=seconds, size=size, version=version)

    def image_config(self, image: ImageDef, version: str) -> dict[str, Any]:
        labels = {
            "org.opencontainers.image.title": image.name,
            "org.opencontainers.image.description": image.description or image.name,
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "org.opencontainers.image.vendor": "sovstack",
            "org.opencontainers.image.base.name": self.tag(image.parent) if image.parent else "",
            LABEL_NAME: image.name,
            LABEL_DEFINITION: self.hashes[image.name],
            LABEL_SUITE: self.options.suite,
            "sovstack.image.package": main_package(self.defs, image.name),
            "sovstack.image.user": image.user,
            "sovstack.image.config": image.config or "",
        }
        command = list(image.command) or [
            "/bin/sh",
            "-c",
            f"echo '{image.name} is a shared layer' >&2; exit 64",
        ]
        config: dict[str, Any] = {
            "User": image.user,
            "Entrypoint": ENTRYPOINT,
            "Cmd": command,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8"],
            "WorkingDir": "/",
            "Labels": labels,
        }
        check = self.healthcheck(image)
        if check:
            config["Healthcheck"] = {key.title().replace("_", ""): value for key, value in check.items()}
        return config

    @staticmethod
    def healthcheck(image: ImageDef) -> dict[str, Any] | None:
        if not image.healthcheck:
            return None
        return {
            "test": ["CMD", *image.healthcheck],
            "interval": 30 * SECONDS,
            "timeout": 10 * SECONDS,
            "start_period": 60 * SECONDS,
            "retries": 3,
        }


def read_file(container: Any, path: str) -> str:
    """A file of a (stopped) container."""
    stream, _ = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member else None
        if handle is None:
            raise SovstackError(f"{path} is missing in the build of {container.name}")
        return handle.read().decode()


def package_version(packages: str, package: str) -> str:
    for line in packages.splitlines():
        fields = line.split("\t")
        if fields and fields[0] == package:
            return fields[1]
    raise SovstackError(f"package {package!r} is not installed in the image: check `main` in images.yml")


@dataclass
class Packages:
    """An image's package list (its SBOM's content), from the image itself."""

    name: str
    rows: list[dict[str, str]] = field(default_factory=list)
    suite: str = ""  # the Debian suite the packages come from

    @classmethod
    def of_image(cls, client: docker.DockerClient, name: str, tag: str) -> Packages:
        suite = str((client.images.get(tag).labels or {}).get(LABEL_SUITE, ""))
        container = client.containers.create(tag, entrypoint=["/bin/true"], command=[])
        try:
            text = read_file(container, PACKAGES_FILE)
        finally:
            container.remove(force=True)
        rows = []
        for line in text.splitlines():
            package, version, arch, source, source_version = (line.split("\t") + [""] * 5)[:5]
            rows.append(
                {
                    "package": package,
                    "version": version,
                    "arch": arch,
                    "source": source or package,
                    "source_version": source_version or version,
                }
            )
        return cls(name, rows, suite)

    def spdx(self, image_ref: str) -> dict[str, Any]:
        """An SPDX 2.3 document: the image and every Debian package in it."""
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        distro = f"&distro={self.suite}" if self.suite else ""
        packages = [
            {
                "SPDXID": f"SPDXRef-Package-{re.sub(r'[^A-Za-z0-9.-]', '-', row['package'])}",
                "name": row["package"],
                "versionInfo": row["version"],
                "supplier": "Organization: Debian",
                "downloadLocation": "NOASSERTION",
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": "NOASSERTION",
                "copyrightText": "NOASSERTION",
                "sourceInfo": f"built from Debian source package {row['source']} {row['source_version']}",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": (
                            f"pkg:deb/debian/{row['package']}@{row['version']}?arch={row['arch']}{distro}"
                        ),
                    }
                ],
            }
            for row in self.rows
        ]
        return {
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": f"sovstack image {self.name}",
            "documentNamespace": f"https://sovstack.invalid/spdx/{image_ref.replace('@', '/')}",
            "creationInfo": {
                "created": created,
                "creators": ["Tool: sovstack"],
                "comment": f"built from Debian {self.suite or '(suite not recorded)'}",
            },
            "packages": packages,
            "documentDescribes": [p["SPDXID"] for p in packages],
        }


def record_built(workdir: Path, suite: str, results: list[Built], say: Say) -> None:
    """built.json: the image set of the latest build (its suite and each image's tag), which
    push and export take. A build of another suite starts a new set: one set is one suite."""
    path = workdir / "built.json"
    old = read_built(path)
    known = old["images"] if old and old["suite"] == suite else {}
    if old and old["suite"] != suite:
        say(f"images: the built set is now {suite}'s (it was {old['suite']}'s; those images stay)")
    known.update({r.name: r.tag for r in results})
    workdir.mkdir(parents=True, exist_ok=True)
    data = {"suite": suite, "images": dict(sorted(known.items()))}
    path.write_text(json.dumps(data, indent=2) + "\n")


def read_built(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if "images" not in data:  # written before sets had a suite: they were all bookworm
        data = {"suite": "bookworm", "images": data}
    return data


def built_tags(
    client: docker.DockerClient, workdir: Path, names: Iterable[str] | None
) -> tuple[str, dict[str, str]]:
    """The suite of the latest build and its images (name -> tag), all or the named ones;
    each must still be in the engine."""
    path = workdir / "built.json"
    data = read_built(path)
    if data is None:
        raise SovstackError(f"nothing is built yet ({path} is missing): run `sovstack images build`")
    suite: str = data["suite"]
    known: dict[str, str] = data["images"]
    if names:
        for name in names:
            if name not in known:
                raise SovstackError(
                    f"image {name!r} is not built for {suite}{did_you_mean(name, known)}:"
                    f" run `sovstack images build --suite {suite} --only {name}`"
                )
        known = {name: known[name] for name in names}
    for name, tag in known.items():
        try:
            client.images.get(tag)
        except docker.errors.ImageNotFound:
            raise SovstackError(
                f"image {name} ({tag}) is gone from the engine: run `sovstack images build --suite {suite}`"
            ) from None
    return suite, known


def write_sbom(client: docker.DockerClient, name: str, tag: str, ref: str, directory: Path) -> Path:
    """The SPDX SBOM of one image, from the package list inside it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.spdx.json"
    path.write_text(json.dumps(Packages.of_image(client, name, tag).spdx(ref), indent=1) + "\n")
    return path


def registry_archive(workdir: Path, tag: str, image_id: str, write: Callable[[Path], None]) -> Path:
    """registry.tar: the registry image alone, which the registry playbook loads on its host
    (the registry cannot come from itself). Written by `write` only when it holds another
    image than `tag` with `image_id`, so the playbook copies it again only after the image
    changed (a rebuild keeps the tag and changes the id)."""
    path = workdir / "registry.tar"
    stamp = workdir / "registry.tar.tag"
    identity = f"{tag} {image_id}"
    if not (path.is_file() and stamp.is_file() and stamp.read_text().strip() == identity):
        write(path)
        stamp.write_text(identity + "\n")
    return path
