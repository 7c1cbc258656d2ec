#!/usr/bin/env bash
# The main job: bring up the local test rig, bootstrap its hosts, build the service images,
# run the registry on node1, push the images to it and run the prechecks against the lock.
# Usage: bash scripts/up.sh [rig up options, e.g. --hosts 5 --engine podman]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_venv
out=$(mktemp)
sovstack rig up "$@" | tee "$out"
inventory=$(sed -n 's/^inventory: //p' "$out")
registry=$(sed -n 's/^registry: \([^ ]*\).*/\1/p' "$out")
rm -f "$out"
sovstack bootstrap -i "$inventory"
sovstack images build
sovstack registry -i "$inventory"
sovstack images push --registry "$registry" --insecure
sovstack prechecks -i "$inventory" -e sovstack_images_lock="${SOVSTACK_HOME:-$HOME/.sovstack}/images/images.lock.yml"
echo
echo "The rig is up, bootstrapped, its registry holds every service image by the digests of"
echo "${SOVSTACK_HOME:-$HOME/.sovstack}/images/images.lock.yml, and it passes its prechecks."
echo "Activate the environment with: . .venv/bin/activate"
echo "Then, for example: sovstack rig status; ansible -i $inventory all -m ping; sovstack rig down"
