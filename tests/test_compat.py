"""The compat suite (compat/README.md): every client's scenarios and the differential runner against
Apache Kafka and kbroker, and every client's scenarios against a 3-broker kbroker cluster on ZooKeeper
(replication factor 3, min.insync.replicas=2), as one test. It fails for a scenario that fails against
Apache Kafka (the scenario is wrong) and for a kbroker failure that is not in the client's
allowlist.txt (on the cluster: nor in compat/cluster-allowlist.txt). The cluster's run is a test of
its own, after the single brokers' (run at the same time, three JVM-heavy kafka-cli runs time out on
the 2-core machine); it takes about five minutes, KBROKER_COMPAT_CLUSTER=0 skips it.

It also runs franz-go's own kgo test suite against both brokers (counts are printed, they do not
decide the verdict); KBROKER_COMPAT_KGO_TESTS=0 leaves that out. Needs what scripts/install-compat-deps
installs (Java + Maven, Go, Node, kcat). Takes about five minutes on the 2-core project machine;
KBROKER_SKIP_COMPAT=1 skips it for a quick local run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOLS = ("java", "mvn", "go", "node", "npm", "kcat")


@pytest.mark.skipif(os.environ.get("KBROKER_SKIP_COMPAT") == "1", reason="KBROKER_SKIP_COMPAT=1")
def test_compat_suite():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    assert not missing, f"missing tools {missing}: run scripts/install-compat-deps"
    args = [sys.executable, "-m", "compat", "--no-readme", "--brokers", "kafka,kbroker"]
    if os.environ.get("KBROKER_COMPAT_KGO_TESTS") != "0":
        args += ["--kgo-tests", "--kgo-timeout", "4m"]
    res = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=14 * 60,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    print(res.stdout[-20000:])
    print(res.stderr[-5000:], file=sys.stderr)
    assert res.returncode == 0, "compat suite failed (see the ERRORS section above):\n" + res.stdout[-6000:]


@pytest.mark.skipif(os.environ.get("KBROKER_SKIP_COMPAT") == "1", reason="KBROKER_SKIP_COMPAT=1")
@pytest.mark.skipif(os.environ.get("KBROKER_COMPAT_CLUSTER") == "0", reason="KBROKER_COMPAT_CLUSTER=0")
def test_compat_scenarios_on_a_three_broker_cluster():
    """Every client's scenarios against three kbroker processes on ZooKeeper, replication factor 3."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    assert not missing, f"missing tools {missing}: run scripts/install-compat-deps"
    res = subprocess.run([sys.executable, "-m", "compat", "--no-readme", "--brokers", "kbroker-cluster"], cwd=REPO,
                         capture_output=True, text=True, timeout=12 * 60, env={**os.environ, "PYTHONPATH": str(REPO)})
    print(res.stdout[-20000:])
    print(res.stderr[-5000:], file=sys.stderr)
    assert res.returncode == 0, "compat on the cluster failed (see the ERRORS section above):\n" + res.stdout[-6000:]
