# Copyright: sovstack developers
# Apache License 2.0
"""Inventory from a topology: networks and hosts written once, groups and addresses derived."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: topology
short_description: Inventory from a sovstack topology file
version_added: "0.1.0"
description:
  - Reads one YAML file that names the networks (cidr, vlan, gateway, vip, allocation range) and
    the hosts (an index into each network's range or static addresses, roles, per-host vars).
  - Derives the groups C(control), C(network), C(compute), C(storage) and C(k8s) from the roles,
    and for every host C(ansible_host) and C(host_address) (its management address),
    C(NETWORK_address) for each network, C(sovstack_networks) and C(sovstack_roles).
  - Rejects the whole file, naming the file and the key of every problem, on overlapping networks,
    addresses outside their network or equal to its gateway, VIP, network or broadcast address,
    duplicate host names or addresses, unknown roles or keys (with a did-you-mean), an even number
    of control hosts (Galera, Ceph mon and OVN raft need a majority), or no compute host.
  - Set C(any_unparsed_is_failed = True) in the C([inventory]) section of ansible.cfg (the
    sovstack CLI does) so that a rejected file stops the run instead of leaving an empty inventory.
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [sovstack.cloud.topology]
notes:
  - "File layout: C(networks: {NAME: {cidr, gateway, vip, vlan, range}}),
    C(hosts: {NAME: {index | address, addresses: {NETWORK: ADDRESS}, roles: [...], vars: {...}}}),
    C(vars: {...}) for every host, and C(management_network) (default C(management))."
author:
  - sovstack developers
"""

EXAMPLES = r"""
# inventories/halfrack/topology.yml
plugin: sovstack.cloud.topology
networks:
  management: {cidr: 10.10.0.0/24, gateway: 10.10.0.1, vip: 10.10.0.10, range: 10.10.0.11-10.10.0.250}
  storage: {cidr: 10.20.0.0/24, vlan: 20, range: 10.20.0.11-10.20.0.250}
hosts:
  ctl1: {index: 1, roles: [control]}
  cmp1: {index: 4, roles: [compute], vars: {nova_virt_type: kvm}}
vars:
  container_engine: docker
"""

from typing import Any

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible.template import trust_as_template
from ansible_collections.sovstack.cloud.plugins.module_utils.topology import ROLES, TopologyError, load


def _trusted(value: Any) -> Any:
    """The topology is the operator's own file, trusted as any YAML inventory is: its strings
    may be templates ("{{ ... }}"), and they leave ansible-inventory as plain strings."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {key: _trusted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_trusted(item) for item in value]
    return value


class InventoryModule(BaseInventoryPlugin):
    NAME = "sovstack.cloud.topology"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith((".yml", ".yaml"))

    def parse(self, inventory, loader, path: str, cache: bool = True) -> None:  # noqa: ANN001
        super().parse(inventory, loader, path, cache)
        try:
            topology = load(path)
        except TopologyError as exc:
            raise AnsibleParserError(f"invalid topology:\n{exc}") from None
        except OSError as exc:
            raise AnsibleParserError(f"cannot read topology {path}: {exc}") from None
        for role in ROLES:
            self.inventory.add_group(role)
        for key, value in topology.vars.items():
            self.inventory.set_variable("all", key, _trusted(value))
        for name in sorted(topology.hosts):
            self.inventory.add_host(name)
            for key, value in topology.hostvars(name).items():
                self.inventory.set_variable(name, key, _trusted(value))
            for role in topology.hosts[name].roles:
                self.inventory.add_host(name, group=role)
