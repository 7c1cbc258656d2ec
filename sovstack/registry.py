"""Push image archives to an OCI registry, pin them in a lock file, export and import them.

Images travel as `docker save` archives (one per set, layers shared) and are pushed with the
registry's HTTP API, so no engine on this machine needs to trust the registry. Layers go up
uncompressed: the digest of every layer is the digest the engine already
knows (its diff id), the manifest is computed here, and the same archive gives the same
manifest digests at every site. That is what makes the lock file portable.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import requests
import yaml

from sovstack.errors import SovstackError

# Docker's image manifest (schema 2), not OCI's: an OCI image config has no HEALTHCHECK, so
# podman would drop every image's healthcheck. Layers are the uncompressed kind schema 2 defines.
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar"
LOCK_NAME = "images.lock.yml"
LOCK_VERSION = 1
CHUNK = 8 * 1024 * 1024

Say = Callable[[str], None]


@dataclass
class Registry:
    """A registry, `host:port`, over HTTPS (with an optional CA file) or plain HTTP."""

    address: str
    insecure: bool = False
    ca: Path | None = None
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self.session = requests.Session()
        if self.username:
            self.session.auth = (self.username, self.password or "")
        scheme = "http" if self.insecure else "https"
        self.base = f"{scheme}://{self.address}/v2"

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        if not url.startswith("http"):
            url = self.base + url
        try:
            # verify per request: a session's own is overridden by $REQUESTS_CA_BUNDLE
            verify: str | bool = str(self.ca) if self.ca is not None else True
            reply = self.session.request(method, url, timeout=self.timeout, verify=verify, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise SovstackError(
                f"registry {self.address}: TLS failed ({first_line(exc)}): give its CA with --registry-ca"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise SovstackError(f"registry {self.address} is unreachable: {first_line(exc)}") from None
        if reply.status_code == 401:
            raise SovstackError(
                f"registry {self.address} refused the login"
                if self.username
                else f"registry {self.address} wants a login:"
                " set SOVSTACK_REGISTRY_USER and SOVSTACK_REGISTRY_PASSWORD"
            )
        return reply

    def ping(self) -> None:
        reply = self.request("GET", "/")
        if reply.status_code != 200:
            raise SovstackError(
                f"registry {self.address}: /v2/ answered {reply.status_code}, not a registry?"
            )

    def has_blob(self, repo: str, digest: str) -> bool:
        return self.request("HEAD", f"/{repo}/blobs/{digest}").status_code == 200

    def manifest_digest(self, repo: str, reference: str) -> str | None:
        """The digest of a manifest by tag or digest, or None when the registry lacks it."""
        reply = self.request("HEAD", f"/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_TYPE})
        if reply.status_code == 404:
            return None
        if reply.status_code != 200:
            raise SovstackError(f"registry {self.address}: {repo}:{reference} answered {reply.status_code}")
        return reply.headers.get("Docker-Content-Digest")

    def mount_blob(self, repo: str, digest: str, source: str) -> bool:
        """Link a blob the registry holds for another repository into this one (no upload)."""
        reply = self.request("POST", f"/{repo}/blobs/uploads/", params={"mount": digest, "from": source})
        return reply.status_code == 201

    def upload_blob(self, repo: str, digest: str, data: IO[bytes] | bytes, size: int) -> None:
        reply = self.request("POST", f"/{repo}/blobs/uploads/")
        if reply.status_code != 202 or "Location" not in reply.headers:
            raise SovstackError(f"registry {self.address}: starting an upload answered {reply.status_code}")
        location = reply.headers["Location"]
        if location.startswith("/"):
            location = self.base[: -len("/v2")] + location
        separator = "&" if "?" in location else "?"
        reply = self.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
        if reply.status_code != 201:
            raise SovstackError(
                f"registry {self.address}: upload of {digest} answered {reply.status_code}:"
                f" {reply.text[:200]}"
            )

    def put_manifest(self, repo: str, tag: str, manifest: bytes) -> str:
        reply = self.request(
            "PUT", f"/{repo}/manifests/{tag}", data=manifest, headers={"Content-Type": MANIFEST_TYPE}
        )
        if reply.status_code != 201:
            raise SovstackError(
                f"registry {self.address}: manifest {repo}:{tag} answered {reply.status_code}:"
                f" {reply.text[:200]}"
            )
        return reply.headers.get("Docker-Content-Digest") or sha256(manifest)


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class ArchiveImage:
    """One image of a `docker save` archive: its tag, config and layers in the archive."""

    tag: str
    config: bytes
    layers: list[str]  # member names of the layer tars, bottom first
    diff_ids: list[str]

    @property
    def name(self) -> str:
        """sovstack/keystone:HASH -> keystone"""
        return self.tag.rsplit(":", 1)[0].rsplit("/", 1)[-1]

    @property
    def version(self) -> str:
        return self.tag.rsplit(":", 1)[1]

    @property
    def labels(self) -> dict[str, str]:
        return json.loads(self.config).get("config", {}).get("Labels") or {}


class Archive:
    """A `docker save` archive (or an export, which is one with the lock file added)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.tar = tarfile.open(path, "r:")  # noqa: SIM115 - closed by close()
            manifest = json.loads(self.read("manifest.json"))
        except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
            raise SovstackError(f"{path} is not an image archive: {exc}") from None
        self.images: dict[str, ArchiveImage] = {}
        for entry in manifest:
            config = self.read(entry["Config"])
            diff_ids = json.loads(config)["rootfs"]["diff_ids"]
            for tag in entry.get("RepoTags") or []:
                image = ArchiveImage(tag, config, entry["Layers"], diff_ids)
                self.images[image.name] = image

    def read(self, member: str) -> bytes:
        handle = self.tar.extractfile(member)
        if handle is None:
            raise KeyError(member)
        return handle.read()

    def close(self) -> None:
        self.tar.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def layer(self, member: str) -> tarfile.TarInfo:
        """A layer's member; docker save writes a repeated layer as a link to its first copy."""
        info = self.tar.getmember(member)
        while info.issym() or info.islnk():
            target = info.linkname if info.islnk() else str(Path(member).parent / info.linkname)
            member = os.path.normpath(target)
            info = self.tar.getmember(member)
        return info

    def manifest(self, image: ArchiveImage) -> bytes:
        layers = [
            {"mediaType": LAYER_TYPE, "digest": diff_id, "size": self.layer(member).size}
            for member, diff_id in zip(image.layers, image.diff_ids, strict=True)
        ]
        document = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": sha256(image.config), "size": len(image.config)},
            "layers": layers,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    def push(self, registry: Registry, namespace: str, say: Say) -> dict[str, dict[str, str]]:
        """Push every image of the archive; layers the registry has are not sent again. The
        lock entries of the pushed images, by name."""
        registry.ping()
        entries: dict[str, dict[str, str]] = {}
        holder: dict[str, str] = {}  # blob digest -> a repository of this push that has it
        for name, image in sorted(self.images.items()):
            started = time.monotonic()
            repo = f"{namespace}/{name}"
            uploaded = 0
            blobs = [(diff_id, member) for member, diff_id in zip(image.layers, image.diff_ids, strict=True)]
            for digest, member in [*blobs, (sha256(image.config), None)]:
                present = registry.has_blob(repo, digest)
                if not present and digest in holder:  # in another repository: link it, no upload
                    present = registry.mount_blob(repo, digest, holder[digest])
                if present:
                    holder.setdefault(digest, repo)
                    continue
                if member is None:
                    registry.upload_blob(repo, digest, image.config, len(image.config))
                else:
                    info = self.layer(member)
                    handle = self.tar.extractfile(info)
                    if handle is None:
                        raise SovstackError(f"{self.path}: layer {member} of {name} is missing")
                    registry.upload_blob(repo, digest, handle, info.size)
                    uploaded += info.size
                holder.setdefault(digest, repo)
            manifest = self.manifest(image)
            digest = registry.put_manifest(repo, image.version, manifest)
            if digest != sha256(manifest):
                raise SovstackError(
                    f"registry {registry.address} stored {repo} as {digest}, not {sha256(manifest)}"
                )
            entries[name] = lock_entry(registry.address, namespace, image, digest)
            say(
                f"push {name}: {digest[:19]}... {uploaded / 1e6:.0f} MB sent"
                f" in {time.monotonic() - started:.1f} s"
            )
        return entries


def lock_entry(registry: str, namespace: str, image: ArchiveImage, digest: str) -> dict[str, str]:
    labels = image.labels
    return {
        "image": f"{registry}/{namespace}/{image.name}@{digest}",
        "digest": digest,
        "tag": image.version,
        "id": sha256(image.config),
        "suite": labels.get("sovstack.image.suite", ""),
        "package": labels.get("sovstack.image.package", ""),
        "version": labels.get("org.opencontainers.image.version", ""),
        "created": labels.get("org.opencontainers.image.created", ""),
    }


@dataclass
class Lock:
    """images.lock.yml: every image of a set, pinned by the digest its registry holds."""

    registry: str
    namespace: str
    images: dict[str, dict[str, str]]

    @classmethod
    def load(cls, path: Path) -> Lock:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise SovstackError(f"cannot read the lock file {path}: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
            raise SovstackError(f"{path}: not a sovstack lock file (no `images:` mapping)")
        for name, entry in data["images"].items():
            if not isinstance(entry, dict) or not str(entry.get("digest", "")).startswith("sha256:"):
                raise SovstackError(f"{path}: images.{name}: no `digest: sha256:...`")
        return cls(str(data.get("registry", "")), str(data.get("namespace", "sovstack")), data["images"])

    @property
    def suite(self) -> str:
        """The Debian suite of the set: one lock holds the images of one suite."""
        suites = sorted({str(entry.get("suite", "")) for entry in self.images.values()})
        return suites[0] if len(suites) == 1 else ",".join(suites)

    def dump(self, path: Path) -> None:
        header = (
            "# sovstack image lock: what a deploy runs, by digest. Written by `sovstack images push`\n"
            "# (or `images import`); do not edit. The SBOM of each image is in sbom/ beside this file.\n"
        )
        data = {
            "version": LOCK_VERSION,
            "registry": self.registry,
            "namespace": self.namespace,
            "suite": self.suite,
            "images": {name: self.images[name] for name in sorted(self.images)},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(header + yaml.safe_dump(data, sort_keys=False))
        temporary.replace(path)

    def verify(self, registry: Registry) -> list[str]:
        """What disagrees between the lock file and the registry: one line per image."""
        registry.ping()
        problems = []
        for name, entry in sorted(self.images.items()):
            repo = f"{self.namespace}/{name}"
            found = registry.manifest_digest(repo, entry["digest"])
            if found is None:
                problems.append(f"{name}: {entry['digest']} is not in {registry.address}/{repo}")
                continue
            by_tag = registry.manifest_digest(repo, entry.get("tag", "")) if entry.get("tag") else None
            if by_tag is not None and by_tag != entry["digest"]:
                problems.append(
                    f"{name}: the lock pins {entry['digest']}"
                    f" but {registry.address}/{repo}:{entry['tag']} is {by_tag}"
                )
        return problems


SAVE_TIMEOUT = 3600  # seconds the engine may take before and between the chunks of a save


def save_archive(client: Any, tags: list[str], path: Path, say: Say) -> None:
    """`docker save` of several images into one archive (layers they share stored once)."""
    started = time.monotonic()
    url = client.api._url("/images/get")  # the engine API takes several names; the SDK's get_image one
    # The engine writes the whole set out before its first byte: for the 8.6 GB trixie set on
    # a loaded 2-core machine that took longer than the client's 300 s (a ReadTimeout seen).
    reply = client.api._get(url, params={"names": tags}, stream=True, timeout=SAVE_TIMEOUT)
    client.api._raise_for_status(reply)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    with temporary.open("wb") as out:
        for chunk in reply.iter_content(CHUNK):
            out.write(chunk)
    temporary.replace(path)
    say(
        f"saved {len(tags)} images to {path} ({path.stat().st_size / 1e9:.2f} GB)"
        f" in {time.monotonic() - started:.0f} s"
    )


def offline_lock(archive: Archive, namespace: str) -> Lock:
    """The lock of an archive before any push: the digests are the manifests' own, so they are
    what every registry will report for these images."""
    entries = {
        name: lock_entry("", namespace, image, sha256(archive.manifest(image)))
        for name, image in archive.images.items()
    }
    for entry in entries.values():
        entry["image"] = entry["image"].lstrip("/")
    return Lock("", namespace, entries)


def subset_archive(archive: Archive, names: list[str], path: Path) -> None:
    """A new archive with only `names` of `archive` (the registry role loads one image)."""
    images = [archive.images[n] for n in names]
    members = {archive.layer(m).name for image in images for m in image.layers}
    manifest = [
        {
            "Config": f"{sha256(i.config)[7:]}.json",
            "RepoTags": [i.tag],
            "Layers": [archive.layer(m).name for m in i.layers],
        }
        for i in images
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    with tarfile.open(temporary, "w:") as out:
        for member in sorted(members):
            info = archive.tar.getmember(member)
            out.addfile(info, archive.tar.extractfile(info))
        for image in images:
            add_bytes(out, f"{sha256(image.config)[7:]}.json", image.config)
        add_bytes(out, "manifest.json", json.dumps(manifest).encode())
    temporary.replace(path)


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))
