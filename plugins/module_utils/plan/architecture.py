# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an architecture is to the build: the contract each module of this package fills in.

The shared reader (inventory.py) checks what every cluster has; an architecture
(one module of this package each) claims the inventory keys
only it reads, reads and checks them, and contributes its parts of the plan: node
roles, keepalived instances, the ruleset as rule intents, conntrackd's caches,
extra sysctls, extra plan fields. The build (build.py) assembles those once; no
part overwrites what another built. The registry (registry.py) lists them.
"""

from __future__ import annotations

# Where a claimed key lives in the inventory.
CLUSTER_VARIABLE = "cluster"  # a group variable of the cluster (fwcluster_hash_seed)
SEGMENT_KEY = "segment"  # a key of every fwcluster_segments entry (multicast_mac)
VRRP_KEY = "vrrp"  # a key of fwcluster_vrrp (preempt_delay)
BALANCER_HOSTS = "balancers"  # hosts with fwcluster_balancer_side

# The caches of conntrackd when an architecture says nothing: the peers' flows
# wait in the external cache until a VRRP transition commits them.
COMMIT_ON_TRANSITION = {"external_cache": True, "internal_cache": True}

# What a node's resync gate holds back until the peers' flows are in (see
# build._node_conntrackd): nothing (no architecture hands a returning node
# work by itself), keepalived's start (a preempting node takes its VIPs or
# node ids back at once), forwarding (the balancers send a firewall its
# flows again once it forwards their probes).
GATE_HOLDS_NOTHING = None
GATE_HOLDS_KEEPALIVED = "keepalived"
GATE_HOLDS_FORWARDING = "forwarding"


class Claim(object):
    """An inventory key that only the architectures claiming it read; the others refuse it.

    refusal is the rule of that refusal, with %(cluster)s and %(architecture)s
    (the cluster's name and architecture) filled in; without one, the registry
    writes one naming every architecture that claims the key.
    """

    def __init__(self, where, key, refusal=None):
        self.where = where
        self.key = key
        self.refusal = refusal


class Capabilities(object):
    """What the operations around the plan may do with a cluster (switchover, status).

    planned_switchover: the switchover role can move a node's work away and back.
    owned_ids: the nodes own node ids (the hash match); the status checks each
    id has exactly one owner, and every node holds every segment VIP.
    """

    def __init__(self, planned_switchover=False, owned_ids=False):
        self.planned_switchover = planned_switchover
        self.owned_ids = owned_ids


class Architecture(object):
    """One architecture. Subclasses set name and override what differs from these defaults."""

    name = None
    claims = ()
    # fwcluster_vrrp defaults that differ per architecture (the others are the reader's).
    vrrp_defaults = {"preempt": False}
    conntrackd_caches = COMMIT_ON_TRANSITION
    # fwcluster_replication.peer_flows: the choices, the default first, and the rule of a
    # refused one (%(architecture)s filled in). "kernel" turns the external cache off.
    peer_flows = ("external_cache",)
    peer_flows_rule = ("a %(architecture)s cluster keeps its peers' flows in conntrackd's external cache, "
                       "committed as a node becomes primary; only hash clusters may write them into the kernel")
    resync_gate_holds = GATE_HOLDS_NOTHING
    # The cluster's nodes run VRRP (hold VIPs or node ids): health tracking can make them step down.
    vrrp_on_nodes = True
    sysctls = ()  # (name, value) pairs added to every node's base sysctls
    capabilities = Capabilities()

    def precheck(self, cluster, inventory):
        """Refuse what this architecture cannot do as a whole, before the shared checks look at details."""

    def read_own(self, cluster, inventory):
        """Read and check the keys this architecture claims; the result becomes cluster.settings."""
        return None

    def check(self, cluster):
        """Refuse a cluster this architecture cannot run; never changes the cluster."""

    def caches(self, cluster):
        """conntrackd's caches on this cluster's nodes: {"external_cache": bool, "internal_cache": bool}."""
        caches = dict(self.conntrackd_caches)
        if cluster.replication.peer_flows == "kernel":
            caches["external_cache"] = False
        return caches

    def role(self, cluster, node):
        raise NotImplementedError

    def keepalived(self, cluster, node):
        raise NotImplementedError

    def ruleset(self, cluster, node):
        """The node's tables (plan/rules.py Table objects)."""
        raise NotImplementedError

    def ruleset6(self, cluster, node):
        """The node's IPv6 tables, for a dual-stack cluster (a segment carries an IPv6 VIP)."""
        raise NotImplementedError

    def successor(self, cluster, node):
        """The node that takes over when node leaves on purpose (planned_switchover only)."""
        return None

    def vrrp_fields(self, cluster):
        """Keys added to the plan's vrrp block."""
        return {}

    def node_routes(self, cluster, node):
        """The node's static routes of the architecture's own (routes.route entries), besides those to
        the networks behind the segments' routers (plan/routes.py)."""
        return []

    def node_fields(self, cluster, node, backend):
        """Keys added to a node's plan; backend spells any rule they carry."""
        return {}

    def plan_fields(self, cluster, backend):
        """Keys added to the cluster plan."""
        return {}
