#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: live_ruleset_info
short_description: Compare a node's live netfilter ruleset with its rendered rules files
version_added: "1.0.0"
author: "fwcluster.netfilter developers (!UNKNOWN)"  # sanity wants a GitHub handle or !UNKNOWN
description:
  - Tells whether the ruleset the kernel runs is the one the rules files hold, so that a hand-edited rule, a
    flushed table or a node left behind by a failed run is seen (drift).
  - Both sides are read by C(iptables-save) (C(ip6tables-save) for IPv6) in its own form - the live ruleset as
    it is, each file as the kernel parses it, loaded into a scratch network namespace (C(unshare --net)) that
    nothing else sees. Comments, counters and tables left empty with accepting built-in chains are not
    compared.
  - With O(backend=nftables) the file is an nftables file of the collection's own tables, read by C(nft list)
    the same way, table by table (C(ip) is V(ipv4), C(ip6) is V(ipv6)); other tables are not compared.
  - It changes nothing. The firewall role reports drift as a change (and so in check mode too), and reloads the
    files; the status playbook reports it per node.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: It only reads; check mode runs the same reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux with iptables (or nftables) and C(unshare) (util-linux); needs root.
options:
  backend:
    description: What wrote the rules (the plan's C(backend)).
    type: str
    choices: [iptables, nftables]
    default: iptables
  rules:
    description:
      - The rendered IPv4 rules file (the firewall role's C(rules.v4)); with O(backend=nftables), the rendered
        nftables file (C(rules.nft)), every family in it.
    type: path
    required: true
  rules_ipv6:
    description: The rendered IPv6 rules file (C(rules.v6)); omit it to compare IPv4 only. Not with nftables.
    type: path
  dynamic_chains:
    description:
      - Chains whose rules a hook changes at run time, not compared rule by rule (the chain itself is). In a
        hash cluster, the chain of the node ids the node owns (the plan's C(hash.listed_chain)).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Compare the live rules with the rendered ones
  fwcluster.netfilter.live_ruleset_info:
    rules: /etc/fwcluster/rules.v4
    rules_ipv6: /etc/fwcluster/rules.v6
  register: rules_state

- name: Show what differs
  ansible.builtin.debug:
    var: rules_state.families.ipv4.differences
  when: rules_state.drift
"""

RETURN = r"""
drift:
  description: Whether any compared family's live ruleset differs from its file (or the file is missing).
  returned: always
  type: bool
  sample: false
families:
  description: Per family compared (V(ipv4), V(ipv6)), what was found.
  returned: always
  type: dict
  contains:
    file: {description: The rules file., type: str}
    drift: {description: Whether the live ruleset differs from the file., type: bool}
    rendered_digest:
      description: Fingerprint of the file's ruleset (12 hex digits of a sha256); null when the file is missing.
      type: str
    live_digest: {description: "Fingerprint of the live ruleset, in the same form.", type: str}
    differences:
      description:
        - What differs, at most 20 lines, each the table and the rule after a minus sign (in the file only) or
          a plus sign (live only); or why the file could not be read.
      type: list
      elements: str
  sample:
    ipv4:
      file: /etc/fwcluster/rules.v4
      drift: true
      rendered_digest: 3f2a9c0d11be
      live_digest: 81c4e07a52f9
      differences: ["+filter: -A INPUT -s 192.0.2.7/32 -j ACCEPT"]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.backends import nftables
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.rules import IPV4, IPV6
from ansible_collections.fwcluster.netfilter.plugins.module_utils.ruleset_drift import (
    differences,
    digest,
    normalized,
    normalized_nft,
)

FAMILIES = (("ipv4", "rules", "iptables"), ("ipv6", "rules_ipv6", "ip6tables"))
# nftables table families -> the families reported ("ip" -> "ipv4"); the tables the backend writes.
NFT_FAMILIES = dict((nft_family, family) for family, nft_family in nftables.FAMILIES.items())
NFT_TABLES = tuple("%s %s" % (nftables.FAMILIES[family], nftables.TABLE) for family in (IPV4, IPV6))


def _run(module, argv, what):
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg="%s failed (exit %d): %s" % (what, rc, (err or out).strip()))
    return out


def compare(module, path, tool):
    """One family's finding (see RETURN's families)."""
    dynamic = module.params["dynamic_chains"]
    save = module.get_bin_path(tool + "-save", required=True)
    live = normalized(_run(module, [save], tool + "-save"), dynamic)
    found = {"file": path, "live_digest": digest(live)}
    if not os.path.isfile(path):
        found.update(drift=True, rendered_digest=None, differences=["no rules file %s" % path])
        return found
    restore = module.get_bin_path(tool + "-restore", required=True)
    unshare = module.get_bin_path("unshare", required=True)
    # The file as the kernel parses it, in a network namespace of its own that
    # ends with the command: the node's own ruleset is never touched.
    loaded = _run(module, [unshare, "--net", "--", "sh", "-c", '"$1" "$3" && "$2"', "sh", restore, save, path],
                  "loading %s into a scratch network namespace" % path)
    rendered = normalized(loaded, dynamic)
    found.update(drift=rendered != live, rendered_digest=digest(rendered),
                 differences=differences(rendered, live) if rendered != live else [])
    return found


def compare_nft(module, path):
    """Each family's finding for an nftables rules file: its tables against the live ones of the same names."""
    dynamic = module.params["dynamic_chains"]
    nft = module.get_bin_path("nft", required=True)
    if not os.path.isfile(path):
        return dict((NFT_FAMILIES[table.split()[0]], {"file": path, "drift": True, "rendered_digest": None,
                                                      "live_digest": None, "differences": ["no rules file %s" % path]})
                    for table in NFT_TABLES)
    unshare = module.get_bin_path("unshare", required=True)
    loaded = _run(module, [unshare, "--net", "--", "sh", "-c", '"$1" -f "$2" && "$1" list ruleset', "sh", nft, path],
                  "loading %s into a scratch network namespace" % path)
    rendered = normalized_nft(loaded, dynamic)
    existing = set(" ".join(line.split()[1:3]) for line in _run(module, [nft, "list", "tables"], "nft list tables")
                   .splitlines() if line.startswith("table "))
    found = {}
    for table in sorted(rendered):
        live_lines = []
        if table in existing:
            listed = _run(module, [nft, "list", "table"] + table.split(), "nft list table %s" % table)
            live_lines = normalized_nft(listed, dynamic).get(table, [])
        mine, live = {table: rendered[table]}, {table: live_lines}
        found[NFT_FAMILIES.get(table.split()[0], table)] = {
            "file": path, "drift": mine != live, "rendered_digest": digest(mine), "live_digest": digest(live),
            "differences": differences(mine, live) if mine != live else []}
    return found


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backend=dict(type="str", choices=["iptables", "nftables"], default="iptables"),
            rules=dict(type="path", required=True),
            rules_ipv6=dict(type="path"),
            dynamic_chains=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    if module.params["backend"] == "nftables":
        if module.params["rules_ipv6"]:
            module.fail_json(msg="rules_ipv6 is for the iptables backend; the nftables file holds every family")
        families = compare_nft(module, module.params["rules"])
    else:
        families = dict((family, compare(module, module.params[option], tool))
                        for family, option, tool in FAMILIES if module.params[option])
    module.exit_json(changed=False, drift=any(found["drift"] for found in families.values()), families=families)


if __name__ == "__main__":
    main()
