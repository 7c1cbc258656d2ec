"""Benchmark: the image pipeline on this machine's dockerd.

  cold build   every image of images/images.yml from nothing: the family's images, the
               debootstrap root and the apt caches removed first (--cold; otherwise the
               first build starts from what is there)
  no-change    the same build again: nothing to build
  sizes        per image: its own layers (what it adds to its parent) and its full size;
               the set's total on disk (every layer once)
  export       the whole set written to one archive

  suites       --suites trixie,bookworm: each suite's set built in turn (a home each), and
               their sizes side by side

Not a test: it prints figures.
  .venv/bin/python tests/bench/bench_images.py [--cold] [--suites trixie,bookworm] [--no-export]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import docker
from benchlib import sovstack

from sovstack import images


def remove_family(client: docker.DockerClient) -> int:
    removed = 0
    for image in client.images.list():
        if any(
            tag.startswith(f"{images.REPO}/") and not tag.startswith("sovstack/rig-host")
            for tag in image.tags
        ):
            for tag in image.tags:
                client.images.remove(tag, force=True)
            removed += 1
    return removed


def summary_of(out: str) -> str:
    """The build's summary line: `N built, M up to date, in S s, from SUITE (...)`."""
    return next(line for line in out.splitlines() if " built, " in line).strip()


def build_suite(client: docker.DockerClient, suite: str, home: Path, cold: bool) -> dict[str, int]:
    """Build one suite's set twice (first, then no change) in a home of its own; print the
    times and each image's sizes; its images' full sizes by name."""
    print(f"\n== {images.release(suite)}")
    seconds, out = sovstack(home, "images", "build", "--suite", suite)
    built = images.read_built(home / "images" / "built.json")
    assert built is not None
    tags = built["images"]
    print(summary_of(out))
    print(f"first build:     {seconds:7.1f} s   ({'cold' if cold else 'from what was there'})")
    again, out = sovstack(home, "images", "build", "--suite", suite)
    print(f"no-change build: {again:7.1f} s   ({summary_of(out)})")
    defs = images.load_definitions()
    sizes = {name: int(client.images.get(tag).attrs["Size"]) for name, tag in tags.items()}
    print(f"\n{'image':22} {'own MB':>8} {'full MB':>8}  main package")
    total = 0
    for name in images.select(defs, None):
        parent = defs[name].parent
        own = sizes[name] - (sizes[parent] if parent else 0)
        version = client.images.get(tags[name]).labels.get("org.opencontainers.image.version", "")
        package = images.main_package(defs, name)
        print(f"{name:22} {own / 1e6:8.0f} {sizes[name] / 1e6:8.0f}  {package} {version}")
        total += own  # every image is its parent plus its own layers
    print(f"{'total on disk':22} {total / 1e6:8.0f}   (each layer once, {len(tags)} images)")
    sizes["(total on disk)"] = total
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cold", action="store_true", help="remove the family's images and caches first")
    parser.add_argument(
        "--suites",
        default=images.DEFAULT_SUITE,
        help=f"Debian suites to build, comma separated, each set in turn (default {images.DEFAULT_SUITE})",
    )
    parser.add_argument("--no-export", action="store_true", help="skip the export of the last suite's set")
    args = parser.parse_args()
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    client = docker.from_env(version="auto", timeout=600)
    root = Path(tempfile.mkdtemp(prefix="sovstack-bench-images-"))
    try:
        if args.cold:
            print(f"removing {remove_family(client)} images of the family (cold start)")
        sizes = {suite: build_suite(client, suite, root / suite, args.cold) for suite in suites}
        if len(suites) > 1:
            names = [*images.select(images.load_definitions(), None), "(total on disk)"]
            print(f"\n{'full MB':22} " + " ".join(f"{s:>9}" for s in suites))
            for name in names:
                print(f"{name:22} " + " ".join(f"{sizes[s][name] / 1e6:9.0f}" for s in suites))
        if not args.no_export:
            archive = root / "set.tar"
            seconds, _ = sovstack(root / suites[-1], "images", "export", str(archive))
            print(f"\nexport of the {suites[-1]} set: {seconds:.1f} s, {archive.stat().st_size / 1e9:.2f} GB")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
