# Copyright: sovstack developers
# Apache License 2.0
"""A cloud's topology: networks and hosts written once, from which the inventory plugin
sovstack.cloud.topology derives groups and every host's address on every network.

Pure code (netaddr and PyYAML, no Ansible) so that the plugin, the CLI and the tests share it.
Every error names the file and the key, and says what to do.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from netaddr import AddrFormatError, IPAddress, IPNetwork, IPRange

ROLES = ("control", "network", "compute", "storage", "k8s")
TOP_KEYS = ("plugin", "networks", "hosts", "vars", "management_network", "tunnel_network", "tenant_mtu")
# The roles whose hosts are OVN chassis: each needs an address on the tunnel network.
CHASSIS_ROLES = ("network", "compute")
NETWORK_KEYS = ("cidr", "vlan", "gateway", "vip", "range", "mtu")
# A network's MTU: IPv6's minimum to a jumbo frame; 1500 where the topology names none.
MTU_LIMITS = (1280, 9216)
DEFAULT_MTU = 1500
# What Geneve adds to a tenant's frame, by the tunnel network's IP version: the inner Ethernet
# header (14), Geneve's (8) with OVN's option (8), UDP (8) and the outer IP header (20 or 40).
GENEVE_OVERHEAD = {4: 58, 6: 78}
HOST_KEYS = ("index", "address", "addresses", "roles", "vars")
HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# The network each container engine makes on every host it runs on (docker0, podman's default
# network): a network of the topology there would be unreachable from the hosts' containers.
ENGINE_NETWORKS = {"docker": "172.17.0.0/16", "podman": "10.88.0.0/16"}
# Services that form a quorum on the control hosts: an even count cannot break a tie.
QUORUM = "Galera, Ceph mon and OVN raft"


class TopologyError(ValueError):
    """Every problem of one topology file, one a line: `FILE: KEY: what is wrong and what to do`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping (PyYAML would keep the last)."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}: each name may appear once", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass
class Network:
    name: str
    cidr: IPNetwork
    gateway: IPAddress | None
    vip: IPAddress | None
    vlan: int | None
    pool: IPRange

    explicit_range: bool = False
    mtu: int = DEFAULT_MTU

    def nth(self, index: int) -> IPAddress:
        """The index-th address of the pool. Without an explicit range, the gateway and the VIP
        are skipped; an explicit range is the operator's own and is taken as it is."""
        value = self.pool.first + index - 1
        if not self.explicit_range:
            for taken in sorted(int(a) for a in (self.gateway, self.vip) if a is not None):
                if self.pool.first <= taken <= value:
                    value += 1
        return IPAddress(value)

    def capacity(self) -> int:
        """How many hosts the pool can take by index."""
        if self.explicit_range:
            return self.pool.size
        return self.pool.size - sum(1 for a in {self.gateway, self.vip} if a is not None and a in self.pool)

    def reserved(self) -> dict[IPAddress, str]:
        taken = {self.cidr.network: "the network address"}
        if self.cidr.prefixlen < 31:
            taken[self.cidr.broadcast] = "the broadcast address"
        if self.gateway is not None:
            taken[self.gateway] = "the gateway"
        if self.vip is not None:
            taken[self.vip] = "the VIP"
        return taken


@dataclass
class Host:
    name: str
    roles: list[str]
    addresses: dict[str, IPAddress]
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class Topology:
    path: str
    networks: dict[str, Network]
    hosts: dict[str, Host]
    vars: dict[str, Any]
    management: str
    tunnel: str = ""
    tenant_mtu: int | None = None

    def groups(self) -> dict[str, list[str]]:
        return {role: sorted(h.name for h in self.hosts.values() if role in h.roles) for role in ROLES}

    def hostvars(self, name: str) -> dict[str, Any]:
        host = self.hosts[name]
        networks = {}
        for net_name, address in host.addresses.items():
            net = self.networks[net_name]
            networks[net_name] = {
                "address": str(address),
                "cidr": str(net.cidr.cidr),
                "prefix": net.cidr.prefixlen,
                "gateway": str(net.gateway) if net.gateway else None,
                "vip": str(net.vip) if net.vip else None,
                "vlan": net.vlan,
                "mtu": net.mtu,
            }
        management = str(host.addresses[self.management])
        tunnel = host.addresses.get(self.tunnel or self.management)
        return {
            "ansible_host": management,
            "host_address": management,
            **{f"{net}_address": info["address"] for net, info in networks.items()},
            "sovstack_networks": networks,
            # The address clients reach the cloud's APIs on: the management network's VIP.
            "sovstack_vip": networks[self.management]["vip"],
            "sovstack_roles": list(host.roles),
            # Where this host's Geneve tunnels end (OVN's encapsulation address): its address
            # on the tunnel network.
            **({"encap_address": str(tunnel)} if tunnel is not None else {}),
            # The MTU of the tenants' networks inside the Geneve tunnels, and what Geneve adds to
            # it on the tunnel network (the prechecks check the host's interface against both).
            **(
                {
                    "sovstack_tenant_mtu": self.tenant_mtu,
                    "sovstack_geneve_overhead": GENEVE_OVERHEAD[
                        self.networks[self.tunnel or self.management].cidr.version
                    ],
                }
                if self.tenant_mtu is not None
                else {}
            ),
            **host.vars,
        }


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or nothing."""
    match = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


class _Checker:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(f"{self.path}: {key}: {message}")

    def unknown_keys(self, where: str, data: dict[str, Any], allowed: tuple[str, ...]) -> None:
        for key in data:
            if key not in allowed:
                self.add(
                    f"{where}{key}" if where else str(key),
                    f"unknown key{did_you_mean(str(key), allowed)}; allowed: {', '.join(allowed)}",
                )

    def address(self, key: str, value: Any) -> IPAddress | None:
        try:
            return IPAddress(str(value))
        except (AddrFormatError, ValueError, TypeError):
            self.add(key, f"{value!r} is not an IP address")
            return None


def load(path: str, text: str | None = None) -> Topology:
    """Read and check a topology file; raise TopologyError listing every problem."""
    if text is None:
        with open(path) as handle:
            text = handle.read()
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or str(exc)
        raise TopologyError([f"{path}: {where}: {problem}"]) from None
    return check(path, data)


def check(path: str, data: Any) -> Topology:
    c = _Checker(path)
    if not isinstance(data, dict):
        raise TopologyError([f"{path}: (top): a topology is a mapping with networks and hosts"])
    c.unknown_keys("", data, TOP_KEYS)
    networks = _networks(c, data.get("networks"))
    management = data.get("management_network", "management")
    if networks and management not in networks:
        c.add(
            "management_network",
            f"network {management!r} is not defined{did_you_mean(str(management), list(networks))}: "
            "define it under networks, or name the management network",
        )
    tunnel = data.get("tunnel_network", management)
    if networks and tunnel not in networks and "tunnel_network" in data:
        c.add(
            "tunnel_network",
            f"network {tunnel!r} is not defined{did_you_mean(str(tunnel), list(networks))}: "
            "define it under networks, or name the network the Geneve tunnels run on",
        )
    hosts = _hosts(c, data.get("hosts"), networks, management)
    if hosts:
        _group_sizes(c, hosts)
    if tunnel in networks and tunnel != management:  # no management address: named above
        for name, host in hosts.items():
            chassis = [role for role in host.roles if role in CHASSIS_ROLES]
            if chassis and tunnel not in host.addresses:
                c.add(
                    f"hosts.{name}",
                    f"no address on the tunnel network {tunnel!r} (tunnel_network), which its role "
                    f"{chassis[0]} needs for OVN's Geneve tunnels: give it index or addresses.{tunnel}",
                )
    tenant_mtu = _tenant_mtu(c, data, networks.get(tunnel), tunnel)
    global_vars = data.get("vars") or {}
    if not isinstance(global_vars, dict):
        c.add("vars", "must be a mapping of variable names to values")
    if c.problems:
        raise TopologyError(c.problems)
    return Topology(path, networks, hosts, global_vars, management, tunnel, tenant_mtu)


def _tenant_mtu(c: _Checker, data: dict[str, Any], net: Network | None, tunnel: str) -> int | None:
    """The tenants' MTU: `tenant_mtu`, or what the tunnel network's MTU leaves after Geneve."""
    if net is None:
        return None
    overhead = GENEVE_OVERHEAD[net.cidr.version]
    fits = net.mtu - overhead
    value = data.get("tenant_mtu")
    if value is None:
        return fits
    if not isinstance(value, int) or isinstance(value, bool) or value < MTU_LIMITS[0]:
        c.add("tenant_mtu", f"{value!r} is not an MTU of at least {MTU_LIMITS[0]} (what IPv6 guests need)")
        return None
    if value > fits:
        c.add(
            "tenant_mtu",
            f"{value} does not fit the tunnel network {tunnel!r}: its MTU {net.mtu} less Geneve's "
            f"{overhead} bytes (IPv{net.cidr.version}) leaves {fits}: lower tenant_mtu to {fits}, "
            f"or raise networks.{tunnel}.mtu to {value + overhead} (and the switches' and hosts' MTU)",
        )
        return None
    return value


def _networks(c: _Checker, raw: Any) -> dict[str, Network]:
    if not isinstance(raw, dict) or not raw:
        c.add("networks", "define at least the management network (a mapping of name to cidr, gateway, ...)")
        return {}
    networks: dict[str, Network] = {}
    for name, spec in raw.items():
        key = f"networks.{name}"
        if not isinstance(spec, dict):
            c.add(key, "must be a mapping with at least cidr")
            continue
        c.unknown_keys(key + ".", spec, NETWORK_KEYS)
        try:
            cidr = IPNetwork(str(spec.get("cidr")))
        except (AddrFormatError, ValueError, TypeError):
            c.add(f"{key}.cidr", f"{spec.get('cidr')!r} is not a network in CIDR form (10.0.0.0/24)")
            continue
        if cidr.ip != cidr.network:
            c.add(f"{key}.cidr", f"{cidr} has host bits set: did you mean {cidr.cidr}?")
            continue
        gateway = vip = None
        for part in ("gateway", "vip"):
            if spec.get(part) is None:
                continue
            address = c.address(f"{key}.{part}", spec[part])
            if address is not None and address not in cidr:
                c.add(f"{key}.{part}", f"{address} is outside the network {cidr}")
                address = None
            if part == "gateway":
                gateway = address
            else:
                vip = address
        if gateway is not None and gateway == vip:
            c.add(f"{key}.vip", f"{vip} is also the gateway: the VIP needs an address of its own")
        vlan = spec.get("vlan")
        if vlan is not None and (
            not isinstance(vlan, int) or isinstance(vlan, bool) or not 1 <= vlan <= 4094
        ):
            c.add(f"{key}.vlan", f"{vlan!r} is not a VLAN id (1 to 4094)")
            vlan = None
        pool = IPRange(cidr.first + 1, cidr.last - 1) if cidr.size > 2 else IPRange(cidr.first, cidr.last)
        explicit = False
        if spec.get("range") is not None:
            first, sep, last = str(spec["range"]).partition("-")
            if not sep:
                c.add(f"{key}.range", f"{spec['range']!r} is not FIRST-LAST")
            else:
                start = c.address(f"{key}.range", first.strip())
                end = c.address(f"{key}.range", last.strip())
                if start is not None and end is not None:
                    if start > end or start not in cidr or end not in cidr:
                        c.add(f"{key}.range", f"{start}-{end} is not a range inside {cidr}")
                    else:
                        pool = IPRange(start, end)
                        explicit = True
        if explicit:
            for part, address in (("gateway", gateway), ("vip", vip)):
                if address is not None and address in pool:
                    c.add(
                        f"{key}.{part}",
                        f"{address} is inside the range {spec['range']} that the hosts' addresses "
                        f"come from: move the {'VIP' if part == 'vip' else part} out of it, "
                        "or narrow the range",
                    )
        for other in networks.values():
            if cidr.first <= other.cidr.last and other.cidr.first <= cidr.last:
                c.add(
                    f"{key}.cidr",
                    f"{cidr} overlaps network {other.name} ({other.cidr}): networks must not overlap",
                )
            if vlan is not None and vlan == other.vlan:
                c.add(f"{key}.vlan", f"VLAN {vlan} is also network {other.name}'s")
        mtu = spec.get("mtu", DEFAULT_MTU)
        if not isinstance(mtu, int) or isinstance(mtu, bool) or not MTU_LIMITS[0] <= mtu <= MTU_LIMITS[1]:
            c.add(f"{key}.mtu", f"{mtu!r} is not an MTU ({MTU_LIMITS[0]} to {MTU_LIMITS[1]})")
            mtu = DEFAULT_MTU
        networks[name] = Network(str(name), cidr, gateway, vip, vlan, pool, explicit, mtu)
    return networks


def _hosts(c: _Checker, raw: Any, networks: dict[str, Network], management: str) -> dict[str, Host]:
    if not isinstance(raw, dict) or not raw:
        c.add("hosts", "define at least one host (a mapping of host name to index or address, and roles)")
        return {}
    hosts: dict[str, Host] = {}
    owners: dict[tuple[str, IPAddress], str] = {}
    for name, spec in raw.items():
        key = f"hosts.{name}"
        if not isinstance(name, str) or not HOSTNAME_RE.match(name):
            c.add(key, f"{name!r} is not a host name (lowercase letters, digits and '-')")
            continue
        if not isinstance(spec, dict):
            c.add(key, "must be a mapping with index or address, and roles")
            continue
        c.unknown_keys(key + ".", spec, HOST_KEYS)
        roles = spec.get("roles") or []
        if not isinstance(roles, list) or not roles:
            c.add(f"{key}.roles", f"give the host at least one role of {', '.join(ROLES)}")
            roles = []
        for role in roles:
            if role not in ROLES:
                c.add(
                    f"{key}.roles",
                    f"unknown role {role!r}{did_you_mean(str(role), ROLES)}; roles: {', '.join(ROLES)}",
                )
        index = spec.get("index")
        if index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 1):
            c.add(f"{key}.index", f"{index!r} is not a positive whole number")
            index = None
        static = dict(spec.get("addresses") or {})
        if spec.get("address") is not None:
            static[management] = spec["address"]
        addresses: dict[str, IPAddress] = {}
        for net_name, value in static.items():
            where = (
                f"{key}.address"
                if net_name == management and "address" in spec
                else f"{key}.addresses.{net_name}"
            )
            if net_name not in networks:
                c.add(where, f"no network {net_name!r}{did_you_mean(str(net_name), list(networks))}")
                continue
            address = c.address(where, value)
            if address is not None and _usable(c, where, address, networks[net_name]):
                addresses[net_name] = address
        if index is not None:
            for net_name, net in networks.items():
                if net_name in addresses:
                    continue
                if index > net.capacity():
                    c.add(
                        f"{key}.index",
                        f"index {index} is beyond network {net_name}'s range {net.pool} "
                        f"({net.capacity()} addresses)",
                    )
                    continue
                address = net.nth(index)
                if _usable(c, f"{key}.index", address, net):
                    addresses[net_name] = address
        if (
            management in networks
            and management not in addresses
            and index is None
            and management not in static
        ):
            c.add(key, f"no address on the management network {management!r}: give index or address")
        for net_name, address in addresses.items():
            other = owners.get((net_name, address))
            if other is not None:
                c.add(key, f"address {address} on network {net_name} is also host {other}'s")
            owners[(net_name, address)] = str(name)
        host_vars = spec.get("vars") or {}
        if not isinstance(host_vars, dict):
            c.add(f"{key}.vars", "must be a mapping of variable names to values")
            host_vars = {}
        hosts[name] = Host(name, [r for r in roles if r in ROLES], addresses, host_vars)
    return hosts


def _usable(c: _Checker, key: str, address: IPAddress, net: Network) -> bool:
    if address not in net.cidr:
        c.add(key, f"{address} is outside network {net.name} ({net.cidr})")
        return False
    what = net.reserved().get(address)
    if what:
        c.add(key, f"{address} is {what} of network {net.name}: choose another address")
        return False
    return True


def _group_sizes(c: _Checker, hosts: dict[str, Host]) -> None:
    count = {role: sum(role in h.roles for h in hosts.values()) for role in ROLES}
    if count["control"] == 0:
        c.add("hosts", "no host has the role control: give it to 1, 3 or 5 hosts")
    elif count["control"] % 2 == 0:
        c.add(
            "hosts", f"{count['control']} hosts have the role control: {QUORUM} need an odd number (1, 3, 5)"
        )
    if count["compute"] == 0:
        c.add("hosts", "no host has the role compute: give it to at least one host")
