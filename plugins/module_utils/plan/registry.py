# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The architectures this version knows, and the inventory keys they claim.

The order is the one every message lists them in.
"""

from __future__ import annotations

from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.architecture import CLUSTER_VARIABLE, Claim
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.hash import Hash
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.multipath import Multipath
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.primary_backup import PrimaryBackup
from ansible_collections.fwcluster.netfilter.plugins.module_utils.plan.sandwich import BALANCER_VARIABLES, Sandwich

# BALANCER_VARIABLES: the host variables of a sandwich's load balancers (the cluster_inputs filter collects them).
__all__ = ["ARCHITECTURES", "BALANCER_VARIABLES", "claimed_keys", "claims", "cluster_variables"]

ARCHITECTURES = dict((architecture.name, architecture)
                     for architecture in (PrimaryBackup(), Multipath(), Sandwich(), Hash()))


def _collect_claims():
    """[(claim, names of the architectures claiming its key)], each key once, in declaration order.

    A key several architectures claim without a refusal of their own is refused
    elsewhere with one that names them all.
    """
    found = []
    for architecture in ARCHITECTURES.values():
        for claim in architecture.claims:
            for known, owners in found:
                if (known.where, known.key) == (claim.where, claim.key):
                    owners.append(architecture.name)
                    break
            else:
                found.append((claim, [architecture.name]))
    result = []
    for claim, owners in found:
        if claim.refusal is None:
            claim = Claim(claim.where, claim.key, "only applies to fwcluster_architecture %s; cluster "
                          "%%(cluster)s is %%(architecture)s" % " and ".join(owners))
        result.append((claim, owners))
    return result


CLAIMS = _collect_claims()


def claims():
    """Every claimed key once: [(claim, names of the architectures claiming it)]."""
    return list(CLAIMS)


def claimed_keys(where):
    """The keys claimed at one place of the inventory (architecture.SEGMENT_KEY, ...)."""
    return tuple(claim.key for claim, _owners in claims() if claim.where == where)


def cluster_variables(shared):
    """The cluster variables of the inventory contract: the shared ones, then the claimed ones."""
    return tuple(shared) + claimed_keys(CLUSTER_VARIABLE)
