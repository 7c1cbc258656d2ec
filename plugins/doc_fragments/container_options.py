# Copyright: sovstack developers
# Apache License 2.0
"""The options of a container's definition, shared by sovstack.cloud.container and
sovstack.cloud.job (module_utils/container_options.py DEFINITION_ARGS)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  image:
    description: Image by tag or digest (C(registry:5000/keystone:2024.1) or C(registry:5000/keystone@sha256:...)). Required (by M(sovstack.cloud.container) unless its state is C(absent)).
    type: str
  pull:
    description: C(missing) pulls the image when the engine does not have it; C(always) pulls on every run (a moved tag is a changed definition); C(never) fails when it is missing.
    type: str
    choices: [never, missing, always]
    default: missing
  command:
    description:
      - Command (a list, or a string split like a shell would).
      - Never put a password on the command line (it shows in C(ps) and in the engine's inspect data); pass it in O(environment) or in a file mounted through O(volumes).
    type: raw
  entrypoint:
    description: Entry point (a list, or a string split like a shell would).
    type: raw
  environment:
    description: Environment variables. Variables of the image's own are not compared unless named here.
    type: dict
  volumes:
    description:
      - Bind mounts and named volumes, C(SOURCE:/path[:ro|rw[,PROPAGATION]]). A bind source must exist on the host.
      - PROPAGATION is the bind mount's propagation, C(rprivate) (the engines' default), C(private), C(rshared), C(shared), C(rslave) or C(slave); it is kept and compared (a changed propagation recreates the container). C(rshared) and C(shared) need a source on a shared mount on the host.
    type: list
    elements: str
  tmpfs:
    description: tmpfs mounts, C(/path[:options]).
    type: list
    elements: str
  network_mode:
    description: C(bridge) (the engine's default), C(host), C(none), C(container:NAME), or a network name.
    type: str
  pid_mode:
    description: PID namespace, for example C(host) (ovn-controller, ceph-osd and libvirt see the host's processes).
    type: str
  ipc_mode:
    description: IPC namespace, for example C(host), C(private), C(shareable).
    type: str
  cgroupns_mode:
    description:
      - cgroup namespace, C(host) or C(private) (libvirt needs C(host) to place guests in cgroups).
      - C(private) is refused on Podman, whose Docker-compatible API (Podman 4) takes it and does not apply it.
    type: str
    choices: [host, private]
  user:
    description: User (and group) the command runs as, C(name), C(uid) or C(uid:gid).
    type: str
  cap_add:
    description: Capabilities to add, by name (C(NET_ADMIN) or C(CAP_NET_ADMIN)).
    type: list
    elements: str
  cap_drop:
    description: Capabilities to drop, by name, or C(ALL).
    type: list
    elements: str
  devices:
    description: Devices, C(/dev/HOST[:/dev/CONTAINER[:rwm]]) (for example C(/dev/kvm), C(/dev/net/tun)).
    type: list
    elements: str
  device_cgroup_rules:
    description:
      - Device cgroup rules, C(TYPE MAJOR:MINOR PERMISSIONS) (TYPE C(a), C(b) or C(c); MAJOR and MINOR a number or C(*); PERMISSIONS of C(rwm)), for example C(c 10:200 rwm) for /dev/net/tun or C(b *:* rwm) for the block devices of ceph-osd.
      - They let the container use device nodes it makes or that appear later (hot-plugged disks), without naming each in O(devices).
      - Refused on Podman, whose Docker-compatible API (Podman 4) takes them and does not apply them; name each device in O(devices) there.
    type: list
    elements: str
  sysctls:
    description:
      - Namespaced kernel parameters set in the container, by name, for example C(net.ipv4.ip_forward) with the value C(1). Only the namespaced ones (C(net.*) outside the host's network, C(kernel.shm*), C(kernel.msg*), C(kernel.sem), C(fs.mqueue.*)) can be set; host-wide ones belong to the host (module M(sovstack.cloud.sysctl)).
      - Podman adds its own defaults (C(containers.conf)); only the ones named here are compared.
    type: dict
  security_opt:
    description: Security options, for example C(seccomp=unconfined), C(apparmor=unconfined), C(no-new-privileges).
    type: list
    elements: str
  privileged:
    description:
      - Every capability and every device. The exception, for a service that cannot work without it; contradicts O(cap_drop). Give the reason in a comment beside it.
      - It cannot run on the local test rig (its hosts lack CAP_SYS_RESOURCE, so the engine fails to start a privileged container); what works there instead, and is closer to least privilege anyway, is O(cap_add=[ALL]) with O(cap_drop=[SYS_RESOURCE]), O(security_opt=[seccomp=unconfined, apparmor=unconfined]) and O(device_cgroup_rules=[a *:* rwm]). Its change detection is tested in check mode only.
    type: bool
    default: false
  ulimits:
    description:
      - Ulimits, C(NAME=SOFT[:HARD]), for example C(nofile=65536:65536).
      - Those not named keep the engine's defaults on both engines (dockerd's C(default-ulimits); on
        Podman the C(default_ulimits) of its containers.conf files, which Podman itself would drop
        for a container that names any ulimit).
    type: list
    elements: str
  labels:
    description: Labels. Labels of the image's own are not compared unless named here.
    type: dict
  memory:
    description: Memory limit (C(512m), C(2g), bytes).
    type: str
  memory_reservation:
    description: Memory soft limit.
    type: str
  cpu_shares:
    description: CPU weight.
    type: int
  cpus:
    description: CPU limit in cores (C(1.5)).
    type: float
  cpuset_cpus:
    description: CPUs the container may use (C(0-1)).
    type: str
"""  # noqa: E501 - option descriptions are kept verbatim, one YAML line each
