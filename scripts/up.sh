#!/usr/bin/env bash
# The main job: bring up the local test rig, bootstrap its hosts, build the service images,
# run the registry on node1, push the images to it, make the cloud's secrets and deploy the
# control plane (HAProxy/keepalived, Galera, RabbitMQ, memcached, keystone) behind the VIP.
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
secrets="$inventory/group_vars/all/secrets.yml"
if [ -f "$secrets" ]; then sovstack secrets merge -i "$inventory"; else sovstack secrets generate -i "$inventory"; fi
sovstack deploy -i "$inventory"
echo
echo "The rig is up: its registry holds every service image by the digests of"
echo "${SOVSTACK_HOME:-$HOME/.sovstack}/images/images.lock.yml, and the control plane answers on the VIP."
echo "Use it (the admin's clouds.yaml is beside the inventory):"
echo "  . .venv/bin/activate"
echo "  export OS_CLIENT_CONFIG_FILE=$inventory/clouds.yaml OS_CLOUD=sovstack"
echo "  openstack token issue; openstack catalog list"
echo "Then, for example: sovstack rig status; sovstack reconfigure -i $inventory; sovstack rig down"
