# Copyright: sovstack developers
# Apache License 2.0
from __future__ import annotations

DOCUMENTATION = r"""
name: catalog
author: sovstack developers
version_added: "0.1.0"
short_description: The service catalog, or one view of it
description:
  - Reads every role's C(meta/service.yml) (docs/services.md, "The catalog") and gives the
    services in deploy order, or one view of them.
options:
  _terms:
    description:
      - Nothing for the whole catalog (NAME -> entry, in deploy order); C(order) for the
        service names in deploy order; C(ports) for every named port (NAME -> number);
        C(images) or C(prechecks_ports) for those of the services given in O(services).
    type: list
    elements: str
    required: false
  services:
    description: The services of C(images) and C(prechecks_ports); default every service.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Deploy every service in order
  ansible.builtin.include_role:
    name: "sovstack.cloud.{{ service }}"
  loop: "{{ lookup('sovstack.cloud.catalog', 'order', wantlist=True) }}"
  loop_control:
    loop_var: service
"""

RETURN = r"""
_raw:
  description: The catalog, or the view asked for.
  type: raw
"""

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.sovstack.cloud.plugins.module_utils import catalog

VIEWS = ("order", "ports", "images", "prechecks_ports")


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        self.set_options(var_options=variables, direct=kwargs)
        try:
            entries = catalog.load()
        except catalog.CatalogError as exc:
            raise AnsibleLookupError(str(exc)) from None
        if not terms:
            return [entries]
        view = terms[0]
        services = self.get_option("services") or list(entries)
        unknown = [s for s in services if s not in entries]
        if unknown:
            raise AnsibleLookupError(f"unknown service {unknown[0]!r}: the services are {', '.join(entries)}")
        if view == "order":
            return [s for s in entries if s in services]
        if view == "ports":
            return [catalog.ports(entries)]
        if view == "images":
            return catalog.images(entries, services)
        if view == "prechecks_ports":
            return [catalog.prechecks_ports(entries, services)]
        raise AnsibleLookupError(f"unknown view {view!r}: use one of {', '.join(VIEWS)}")
