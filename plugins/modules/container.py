#!/usr/bin/python
# Copyright: sovstack developers
# Apache License 2.0
"""Ensure a container on Docker or Podman: created, started, stopped, healthy or absent."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: container
short_description: Ensure a container on Docker or Podman, recreating it only when its definition changed
version_added: "0.1.0"
description:
  - Creates, starts, stops, restarts or removes a container on the host's engine (Docker, or Podman
    through its Docker-compatible API socket), and waits until it is healthy.
  - Every option given is compared with the running container after normalization (engine
    defaults, lists that are really sets, sizes and durations, an image tag against the image id
    it points to). Nothing differs, nothing is touched. A changed option recreates the container;
    a changed resource limit (memory, memory_reservation, cpu_shares, cpus, cpuset_cpus) is updated
    in place on Docker (Podman 4 has no such update in its API; there it recreates, as does lifting
    a limit on either engine); a changed O(config_hash) alone restarts it.
  - An option not given means the engine's default and is not compared with the container. The
    definition the container was made from is recorded in the label C(sovstack.definition), so an
    option dropped from the task is seen as a change too.
  - The config hash last applied is kept in O(state_dir) on the host, per container id (a label
    cannot change without recreating the container).
  - On Podman, a started container gets a systemd unit C(sovstack-container-NAME.service), enabled, that
    starts it again after a host reboot. On Docker the restart policy does that.
options:
  name:
    description: The container's name.
    type: str
    required: true
  state:
    description:
      - C(started) (exists with this definition and runs), C(stopped), C(absent), C(restarted)
        (as started, then restarted if it was not just started), C(healthy) (as started, then waits
        until the healthcheck passes).
      - C(healthy) fails after O(healthy_timeout) seconds, and at once when the container exits or
        restarts while it waits (its restart count grows; a restart loop under
        O(restart_policy=unless-stopped) looks running between restarts). The message names the
        container and ends with the last 20 lines of its log (of the run that failed, when the
        restart policy has started it again); the result carries them as RV(log_tail).
    type: str
    choices: [started, stopped, absent, restarted, healthy]
    default: started
  healthcheck:
    description: The container's healthcheck.
    type: dict
    suboptions:
      test:
        description: A shell command (run with C(CMD-SHELL)), or a list (C(CMD) form).
        type: raw
        required: true
      interval:
        description: Time between checks (C(30s), C(1m)).
        type: str
      timeout:
        description: Time one check may take.
        type: str
      retries:
        description: Failed checks in a row before unhealthy.
        type: int
      start_period:
        description: Grace time after the start during which failures do not count.
        type: str
  restart_policy:
    description: C(no), C(on-failure), C(always) or C(unless-stopped).
    type: str
    choices: ["no", on-failure, always, unless-stopped]
  stop_timeout:
    description: Seconds between the stop signal and SIGKILL.
    type: int
  config_hash:
    description: Hash of the container's configuration files. A change alone restarts the container without recreating it.
    type: str
  recreate:
    description: Recreate the container even when nothing differs.
    type: bool
    default: false
  healthy_timeout:
    description: Seconds O(state=healthy) waits for the healthcheck to pass.
    type: int
    default: 120
  state_dir:
    description: Where the module keeps each container's applied config hash on the host.
    type: path
    default: /var/lib/sovstack/containers
attributes:
  check_mode:
    support: full
    description: Reports what would change (O(state), the differing options, the actions); changes nothing.
  diff_mode:
    support: full
    description: Shows the differing options before and after.
extends_documentation_fragment:
  - sovstack.cloud.engine
  - sovstack.cloud.container_options
author:
  - sovstack developers
"""  # noqa: E501 - option descriptions are kept verbatim, one YAML line each

EXAMPLES = r"""
- name: Keystone, healthy, recreated only when its definition changed
  sovstack.cloud.container:
    name: keystone
    image: "{{ sovstack_registry }}/keystone@sha256:0123..."
    state: healthy
    user: keystone
    volumes:
      - /etc/sovstack/keystone:/etc/keystone:ro
      - keystone_fernet:/etc/keystone/fernet-keys
    environment:
      SOVSTACK_SERVICE: keystone
    cap_drop: [ALL]
    healthcheck:
      test: curl -fsS http://localhost:5000/v3
      interval: 10s
      retries: 3
    restart_policy: unless-stopped
    config_hash: "{{ keystone_config_hash }}"

- name: Open vSwitch needs the host's network and a few capabilities
  sovstack.cloud.container:
    name: openvswitch_vswitchd
    image: "{{ sovstack_registry }}/openvswitch-vswitchd:1"
    engine: podman
    network_mode: host
    cap_add: [NET_ADMIN, SYS_NICE, IPC_LOCK]
    devices: [/dev/net/tun]

- name: libvirt's host-level options, each named (no privileged)
  sovstack.cloud.container:
    name: nova_libvirt
    image: "{{ sovstack_registry }}/nova-libvirt:1"
    state: healthy
    network_mode: host
    pid_mode: host
    cgroupns_mode: host
    cap_add: [SYS_ADMIN, NET_ADMIN, SYS_NICE, IPC_LOCK]
    security_opt: [apparmor=unconfined, seccomp=unconfined]
    devices: [/dev/kvm, /dev/net/tun]
    device_cgroup_rules: ["c 10:232 rwm", "b *:* rwm"]
    volumes:
      - /run/libvirt:/run/libvirt:rw,rshared
      - /lib/modules:/lib/modules:ro
      - /sys/fs/cgroup:/sys/fs/cgroup:rw
    healthcheck:
      test: virsh version
    restart_policy: unless-stopped

- name: A container with its own network namespace that forwards
  sovstack.cloud.container:
    name: router
    image: "{{ sovstack_registry }}/tools:1"
    sysctls:
      net.ipv4.ip_forward: 1
    cap_add: [NET_ADMIN]

- name: Remove a container
  sovstack.cloud.container:
    name: old_service
    state: absent
"""

RETURN = r"""
actions:
  description: What was (in check mode, would be) done, in order.
  returned: always
  type: list
  elements: str
  sample: [recreate, start]
differences:
  description: The options whose wanted value differs from the container.
  returned: always
  type: list
  elements: str
  sample: [environment, volumes]
log_tail:
  description:
    - The last 20 lines of the container's log, when O(state=healthy) failed.
    - When its restart policy started it again, the last 20 before that start.
  returned: when state=healthy failed
  type: list
  elements: str
  sample: ["keystone: error: cannot connect to the database"]
container:
  description:
    - The container after the task, as M(sovstack.cloud.container_info) describes it (without
      image_digests); empty when absent or in check mode.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.sovstack.cloud.plugins.module_utils.containers import ARGS, Container, converge
from ansible_collections.sovstack.cloud.plugins.module_utils.engine import APIError, EngineError, connect


def main() -> None:
    module = AnsibleModule(argument_spec=ARGS, supports_check_mode=True)
    client = connect(module)
    container = Container(module, client)
    differing: list[str] = []
    try:
        differing = converge(container, module.params["state"])
    except EngineError as exc:
        module.fail_json(msg=str(exc), actions=container.actions)
    except APIError as exc:
        module.fail_json(msg=f"{module.params['engine']}: {exc}", actions=container.actions)
    result = dict(
        changed=bool(container.actions),
        actions=container.actions,
        differences=differing,
        container=container.summary(),
    )
    if module._diff:
        result["diff"] = container.diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
