"""Benchmark: the image pipeline on this machine's dockerd.

  cold build   every image of images/images.yml from nothing: the suite's images (only
               those of --suite, label sovstack.image.suite: a shared engine keeps the rest),
               its debootstrap root and the apt caches removed first (--cold; otherwise the
               first build starts from what is there)
  no-change    the same build again: nothing to build
  sizes        per image: its own layers (what it adds to its parent) and its full size;
               the set's total on disk (every layer once)
  export       the whole set written to one archive

Not a test: it prints figures.
  .venv/bin/python tests/bench/bench_images.py [--cold] [--suite bookworm]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import docker
from benchlib import sovstack

from sovstack import images


def remove_suite(client: docker.DockerClient, suite: str) -> int:
    """The images of one suite's set and its debootstrap root; nothing else."""
    removed = 0
    for image in client.images.list():
        ours = image.labels.get(images.LABEL_SUITE) == suite or any(
            tag.startswith(f"{images.REPO}/debootstrap:{suite}-") for tag in image.tags
        )
        if ours:
            for tag in image.tags:
                client.images.remove(tag, force=True)
            removed += 1
    return removed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cold", action="store_true", help="remove the suite's images and caches first")
    parser.add_argument("--suite", default=images.DEFAULT_SUITE, help=f"default {images.DEFAULT_SUITE}")
    args = parser.parse_args()
    client = docker.from_env(version="auto", timeout=600)
    home = Path(tempfile.mkdtemp(prefix="sovstack-bench-images-"))
    try:
        if args.cold:
            print(f"removing {remove_suite(client, args.suite)} images of {args.suite} (cold start)")
        cold, out = sovstack(home, "images", "build", "--suite", args.suite)
        built = json.loads((home / "images" / "built.json").read_text())["images"]
        print(out.strip().splitlines()[-len(built) - 1])
        print(f"first build:     {cold:7.1f} s   ({'cold' if args.cold else 'from what was there'})")
        again, out = sovstack(home, "images", "build", "--suite", args.suite)
        print(f"no-change build: {again:7.1f} s   ({out.strip().splitlines()[-len(built) - 1].strip()})")
        defs = images.load_definitions()
        sizes = {name: int(client.images.get(tag).attrs["Size"]) for name, tag in built.items()}
        print(f"\n{'image':22} {'own MB':>8} {'full MB':>8}  main package")
        total = 0
        for name in images.select(defs, None):
            parent = defs[name].parent
            own = sizes[name] - (sizes[parent] if parent else 0)
            version = client.images.get(built[name]).labels.get("org.opencontainers.image.version", "")
            print(
                f"{name:22} {own / 1e6:8.0f} {sizes[name] / 1e6:8.0f}",
                f" {images.main_package(defs, name)} {version}",
            )
            total += own  # every image is its parent plus its own layers
        print(f"{'total on disk':22} {total / 1e6:8.0f}   ({len(built)} of {args.suite}, each layer once)")
        archive = home / "set.tar"
        seconds, _ = sovstack(home, "images", "export", str(archive))
        print(f"\nexport of the set: {seconds:.1f} s, {archive.stat().st_size / 1e9:.2f} GB")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
