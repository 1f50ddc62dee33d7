"""molecule/shared/files/flowprobe.py: the lab's probe, its parts that need no lab."""

import importlib.util
import json
import pathlib

FLOWPROBE = pathlib.Path(__file__).resolve().parents[4] / "molecule" / "shared" / "files" / "flowprobe.py"


def load_flowprobe():
    spec = importlib.util.spec_from_file_location("flowprobe", FLOWPROBE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_are_written_where_the_folder_is_gone(tmp_path):
    """A rebooted node's /run is empty: a poller started there must still
    leave its result (the hash lab's heir was the rebooted node once, and
    its takeover went unseen)."""
    out = tmp_path / "run" / "flowprobe" / "maskwait.json"
    load_flowprobe().write_json_atomic(str(out), {"seen": 1.5})
    assert json.loads(out.read_text()) == {"seen": 1.5}
    assert [p.name for p in out.parent.iterdir()] == ["maskwait.json"]
