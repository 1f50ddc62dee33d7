"""node_status_info against the real daemons, each in a scratch network namespace.

keepalived, conntrackd and iptables run for real here (as root, installed by
scripts/setup.sh); where one is missing the test is skipped, not passed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from ansible_collections.fwcluster.netfilter.plugins.modules import node_status_info

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


@pytest.fixture
def namespace():
    name = "fwcluster-status-%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        for interface, address in (("eth1", "10.99.1.1/24"), ("eth3", "192.168.99.1/24")):
            subprocess.run(["ip", "-n", name, "link", "add", interface, "type", "veth", "peer", "name",
                            "peer-" + interface], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", interface, "up"], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", "peer-" + interface, "up"], check=True)
            subprocess.run(["ip", "-n", name, "addr", "add", address, "dev", interface], check=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


# VRRPv3 for the sub-second advert_int: both instances become master within half a second.
KEEPALIVED_CONF = """
global_defs {
    router_id unit
    vrrp_version 3
}
vrrp_instance unit_inside {
    state BACKUP
    interface eth1
    virtual_router_id 61
    priority 200
    advert_int 0.1
    virtual_ipaddress {
        10.99.1.254/24
    }
}
vrrp_instance unit_spare {
    state BACKUP
    interface eth1
    virtual_router_id 62
    priority 100
    advert_int 0.1
    virtual_ipaddress {
        10.99.1.253/24
    }
}
"""


@needs_root
@pytest.mark.skipif(shutil.which("keepalived") is None, reason="keepalived is not installed")
def test_reports_keepalived_instances(namespace, tmp_path, run_module):
    config = tmp_path / "keepalived.conf"
    config.write_text(KEEPALIVED_CONF)
    pid_file = tmp_path / "keepalived.pid"
    daemon = subprocess.Popen(namespace + ["keepalived", "-n", "-l", "-D", "-f", str(config),
                                           "-p", str(pid_file), "-r", str(tmp_path / "vrrp.pid")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # No peer answers: both instances become master.
        deadline = time.time() + 15
        while True:
            ok, result = run_module(node_status_info.main, {
                "keepalived_pid_file": str(pid_file), "conntrackd_config": "", "vips": ["10.99.1.254"]})
            assert ok, result
            states = dict((i["name"], i["state"]) for i in result["keepalived"]["instances"])
            if states == {"unit_inside": "MASTER", "unit_spare": "MASTER"} or time.time() > deadline:
                break
            time.sleep(0.2)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
    assert result["keepalived"]["running"] is True
    assert states == {"unit_inside": "MASTER", "unit_spare": "MASTER"}, result["keepalived"]
    inside = [i for i in result["keepalived"]["instances"] if i["name"] == "unit_inside"][0]
    assert inside["vrid"] == 61 and inside["interface"] == "eth1" and inside["priority"] == 200
    assert inside["vips"] == ["10.99.1.254/24"]
    assert inside["become_master"] >= 1
    # The module reads the controller-side namespace's addresses: the VIP lives in the scratch one.
    assert result["vips_held"] == []


@needs_root
def test_reports_keepalived_stopped(tmp_path, run_module):
    ok, result = run_module(node_status_info.main, {"keepalived_pid_file": str(tmp_path / "none.pid"),
                                                    "conntrackd_config": ""})
    assert ok
    assert result["keepalived"] == {"running": False, "instances": []}
    assert result["conntrackd"] is None and result["replication_link"] is None


CONNTRACKD_CONF = """
Sync {
    Mode FTFW {
        DisableExternalCache Off
    }
    UDP {
        IPv4_address 192.168.99.1
        IPv4_Destination_Address 192.168.99.2
        Port 3780
        Interface eth3
        Checksum on
    }
}
General {
    HashSize 8192
    HashLimit 65536
    LogFile %(dir)s/conntrackd.log
    LockFile %(dir)s/conntrackd.lock
    UNIX {
        Path %(dir)s/conntrackd.ctl
    }
    NetlinkBufferSize 2097152
    NetlinkBufferSizeMaxGrowth 8388608
}
"""


@needs_root
@pytest.mark.skipif(shutil.which("conntrackd") is None, reason="conntrackd is not installed")
def test_reports_conntrackd_caches_and_errors(namespace, tmp_path, run_module):
    config = tmp_path / "conntrackd.conf"
    config.write_text(CONNTRACKD_CONF % {"dir": tmp_path})
    missing = {"keepalived_pid_file": str(tmp_path / "none.pid"), "conntrackd_config": str(config)}
    ok, result = run_module(node_status_info.main, missing)
    assert ok and result["conntrackd"]["running"] is False and "conntrackd" in result["conntrackd"]["error"]

    subprocess.run(namespace + ["conntrackd", "-C", str(config), "-d"], check=True)
    try:
        deadline = time.time() + 10
        while not (tmp_path / "conntrackd.ctl").exists() and time.time() < deadline:
            time.sleep(0.1)
        ok, result = run_module(node_status_info.main, missing)
        listed = run_module(node_status_info.main, dict(missing, flows=True))
        external = run_module(node_status_info.main, dict(missing, flows=True, flow_caches=["external"]))
    finally:
        subprocess.run(namespace + ["conntrackd", "-C", str(config), "-k"], check=False)
    assert ok, result
    # the caches' flows only when asked for, and only the caches asked for
    assert "internal_flows" not in result["conntrackd"] and "external_flows" not in result["conntrackd"]
    assert listed[0] and listed[1]["conntrackd"]["internal_flows"] == listed[1]["conntrackd"]["external_flows"] == []
    assert external[0] and external[1]["conntrackd"]["external_flows"] == []
    assert "internal_flows" not in external[1]["conntrackd"]
    conntrackd = result["conntrackd"]
    assert conntrackd["running"] is True
    assert conntrackd["internal"] == 0 and conntrackd["external"] == 0
    assert set(conntrackd["errors"]) == {"send", "recv", "malformed", "lost"}
    assert conntrackd["cache_failures"] == 0
    assert conntrackd["error_total"] == sum(conntrackd["errors"].values())


@needs_root
@pytest.mark.skipif(shutil.which("conntrackd") is None, reason="conntrackd is not installed")
def test_reports_a_hung_conntrackd_without_hanging(namespace, tmp_path, run_module, monkeypatch):
    # SIGSTOP: the control socket still accepts, nothing answers (what the tracking check hands over for)
    monkeypatch.setattr(node_status_info, "CONNTRACKD_ANSWER_S", 1)
    config = tmp_path / "conntrackd.conf"
    config.write_text(CONNTRACKD_CONF % {"dir": tmp_path})
    subprocess.run(namespace + ["conntrackd", "-C", str(config), "-d"], check=True)
    pid = None
    try:
        deadline = time.time() + 10
        while not (tmp_path / "conntrackd.ctl").exists() and time.time() < deadline:
            time.sleep(0.1)
        pid = int(subprocess.run(["pgrep", "-f", "-o", "conntrackd -C %s" % config], capture_output=True, text=True,
                                 check=True).stdout.split()[0])
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        ok, result = run_module(node_status_info.main, {"keepalived_pid_file": str(tmp_path / "none.pid"),
                                                        "conntrackd_config": str(config)})
        took = time.monotonic() - started
    finally:
        if pid:
            os.kill(pid, signal.SIGCONT)
        subprocess.run(namespace + ["conntrackd", "-C", str(config), "-k"], check=False)
    assert ok, result
    assert result["conntrackd"] == {"running": False, "error": "hung: no answer within 1 s"}
    assert took < 5


@needs_root
def test_reports_link_state(tmp_path, run_module):
    ok, result = run_module(node_status_info.main, {"keepalived_pid_file": str(tmp_path / "none.pid"),
                                                    "conntrackd_config": "", "replication_interface": "lo"})
    assert ok
    assert result["replication_link"]["interface"] == "lo" and result["replication_link"]["up"] is True
    ok, result = run_module(node_status_info.main, {"keepalived_pid_file": str(tmp_path / "none.pid"),
                                                    "conntrackd_config": "", "replication_interface": "nosuch0"})
    assert result["replication_link"] == {"interface": "nosuch0", "operstate": "missing", "up": False}


def test_refuses_a_non_positive_timeout(run_module):
    ok, result = run_module(node_status_info.main, {"timeout": 0})
    assert not ok and "timeout must be positive" in result["msg"]


@needs_root
@pytest.mark.skipif(shutil.which("conntrack") is None, reason="conntrack is not installed")
def test_reports_the_kernel_table(namespace, tmp_path, run_module, monkeypatch):
    # conntrack runs for real, in the scratch namespace: the module's commands are prefixed with ip netns exec.
    from ansible.module_utils.basic import AnsibleModule
    real_run = AnsibleModule.run_command

    def in_namespace(self, args, *rest, **kwargs):
        return real_run(self, namespace + list(args), *rest, **kwargs)

    monkeypatch.setattr(AnsibleModule, "run_command", in_namespace)
    args = {"keepalived_pid_file": str(tmp_path / "none.pid"), "conntrackd_config": "", "kernel_flows": True}
    ok, result = run_module(node_status_info.main, args)
    assert ok and result["kernel_flows"] == []
    subprocess.run(namespace + ["conntrack", "-I", "-p", "tcp", "-s", "10.99.1.10", "-d", "198.51.100.10",
                                "--sport", "40000", "--dport", "8080", "--state", "ESTABLISHED",
                                "-t", "120", "-u", "ASSURED"], check=True, capture_output=True)
    # a flow that is ending carries no more data: left out
    subprocess.run(namespace + ["conntrack", "-I", "-p", "tcp", "-s", "10.99.1.11", "-d", "198.51.100.10",
                                "--sport", "40001", "--dport", "8080", "--state", "TIME_WAIT",
                                "-t", "120", "-u", "ASSURED"], check=True, capture_output=True)
    # nor does a handshake not yet done
    subprocess.run(namespace + ["conntrack", "-I", "-p", "tcp", "-s", "10.99.1.12", "-d", "198.51.100.10",
                                "--sport", "40002", "--dport", "8080", "--state", "SYN_RECV",
                                "-t", "120"], check=True, capture_output=True)
    # the node's own traffic (an SSH session to it), and a UDP flow
    subprocess.run(namespace + ["conntrack", "-I", "-p", "tcp", "-s", "10.99.1.13", "-d", "172.30.2.1",
                                "--sport", "40003", "--dport", "22", "--state", "ESTABLISHED",
                                "-t", "120", "-u", "ASSURED"], check=True, capture_output=True)
    subprocess.run(namespace + ["conntrack", "-I", "-p", "udp", "-s", "10.99.1.14", "-d", "198.51.100.10",
                                "--sport", "40004", "--dport", "53", "-t", "120"], check=True, capture_output=True)
    ok, result = run_module(node_status_info.main, args)
    assert ok and result["kernel_flows"] == ["tcp 10.99.1.10:40000>198.51.100.10:8080",
                                             "tcp 10.99.1.13:40003>172.30.2.1:22",
                                             "udp 10.99.1.14:40004>198.51.100.10:53"]
    # flows from or to an ignored address are left out (conntrackd's Address Ignore)
    ok, result = run_module(node_status_info.main, dict(args, kernel_flows_ignore=["172.30.2.1", "10.99.1.14"]))
    assert ok and result["kernel_flows"] == ["tcp 10.99.1.10:40000>198.51.100.10:8080"]
    ok, result = run_module(node_status_info.main, dict(args, kernel_flows=False))
    assert ok and "kernel_flows" not in result


def test_process_started_is_when_the_oldest_process_of_the_name_began(tmp_path):
    # A copy of sleep under a name of its own (comm: 15 characters at most), started twice.
    name = "fwcst%d" % os.getpid()
    program = tmp_path / name
    shutil.copy(shutil.which("sleep"), program)
    assert node_status_info.process_started(name) is None
    before = time.time()
    first = subprocess.Popen([str(program), "30"])
    time.sleep(1.2)
    second = subprocess.Popen([str(program), "30"])
    try:
        started = node_status_info.process_started(name)
    finally:
        first.kill()
        second.kill()
        first.wait()
        second.wait()
    # /proc counts in clock ticks since boot; the boot time is read from /proc/uptime
    assert before - 0.1 <= started <= before + 1.0
