"""A pulsar:// URL names the binary protocol's address and, optionally, the admin API's."""

from __future__ import annotations

import pytest

from streamsense.brokers import open_broker
from streamsense.brokers.pulsar import PulsarBroker
from streamsense.errors import ConfigError


def test_the_admin_api_defaults_to_port_8080_of_the_same_host() -> None:
    broker = open_broker("pulsar://10.1.2.3:6650")  # the client connects on first use only
    assert isinstance(broker, PulsarBroker)
    assert (broker.admin.host, broker.admin.port) == ("10.1.2.3", 8080)
    broker.close()


def test_the_admin_api_can_be_named() -> None:
    broker = open_broker("pulsar://127.0.0.1:16650?admin=http://127.0.0.1:18080")
    assert (broker.admin.host, broker.admin.port) == ("127.0.0.1", 18080)
    assert broker.url == "pulsar://127.0.0.1:16650?admin=http://127.0.0.1:18080"
    broker.close()


@pytest.mark.parametrize("url", ["pulsar://", "pulsar://127.0.0.1:6650?exactly_once=true"])
def test_a_bad_address_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="bad Pulsar address"):
        open_broker(url)
