"""The cluster key layout without a cluster: one hash tag per deployment, and the settings that choose it."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

import pyq
from pyq import config
from pyq.errors import ConfigError
from pyq.keys import Keys


@pytest.mark.parametrize(("namespace", "prefix"), [("", "{pyq}:"), ("shop", "{shop}:")])
def test_a_cluster_prefix_is_one_hash_tag_and_every_key_hashes_to_its_slot(namespace: str, prefix: str) -> None:
    keys = Keys(namespace, cluster=True)
    assert keys.prefix == prefix
    names = [keys.queue("default"), keys.retry, keys.schedule, keys.dead, keys.processes, keys.process("h:1:x"),
             keys.inflight("h:1:x"), keys.batch("B"), keys.batch_jids("B"), keys.unique("uniquejobs:d", "LOCKED"),
             keys.cron_job("tick"), keys.stat("processed", "2026-01-01"), keys.result("J"), keys.iteration("J"),
             keys.metrics_hash("j|20260101|1:1"), keys.cancel_channel]
    assert all(name.startswith(prefix) for name in names)
    assert {key_slot(name.encode()) for name in names} == {key_slot(prefix.encode())}


def test_without_cluster_the_keys_stay_sidekiqs() -> None:
    assert Keys().queue("default") == "queue:default" and Keys("ns").retry == "ns:retry"


def test_cluster_is_a_setting_of_file_and_environment(tmp_path) -> None:
    path = tmp_path / "queue.yml"
    path.write_text("cluster: true\nnamespace: shop\n")
    assert config.load(path, env={}).cluster is True
    assert config.load(None, env={"PYQ_CLUSTER": "true"}).cluster is True
    assert config.load(None, env={}).cluster is False


def test_a_namespace_with_braces_is_refused_as_it_would_break_the_hash_tag() -> None:
    with pytest.raises(ConfigError, match="braces"):
        config.load(None, overrides={"namespace": "a{b}"}, env={})
    with pytest.raises(ValueError, match="braces"):
        Keys("a}b", cluster=True)


@pytest.mark.slow
def test_durable_enqueue_waits_for_the_replica_of_the_slots_primary_on_a_cluster() -> None:
    from cluster import ClusterServers

    servers = ClusterServers(replicas=1).start()
    try:
        client = pyq.Client(servers.url, cluster=True, durable_enqueue=1, durable_enqueue_timeout_s=2.0)
        jid = client.push({"class": "Durable", "args": [1]})
        assert jid and client.redis.llen(client.keys.queue("default")) == 1
        with pytest.raises(pyq.NotDurable):  # two replicas are more than the slot's primary has
            pyq.Client(servers.url, cluster=True, durable_enqueue=2, durable_enqueue_timeout_s=0.2).push(
                {"class": "Durable", "args": [2]})
    finally:
        servers.stop()
