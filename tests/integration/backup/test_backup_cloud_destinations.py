"""Every cloud destination passes the shared contract against its real emulator, and a closed
port is reported as a transient error (so the retry wrapper backs off) with a clear message."""

from __future__ import annotations

import uuid

import pytest

from ragruntime.backup.destinations.base import DestinationError
from ragruntime.backup.destinations.factory import build_destination
from tests.fixtures.services import free_port
from tests.unit.backup.destination_suite import check_destination_contract

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", ["s3", "gcs", "azure"])
def test_cloud_destination_meets_the_contract(kind: str, request) -> None:
    emulator = request.getfixturevalue(f"{kind}_emulator")
    destination = build_destination(emulator.config, f"contract-{uuid.uuid4().hex[:8]}")
    check_destination_contract(destination)


@pytest.mark.parametrize("kind", ["s3", "gcs", "azure"])
def test_closed_port_is_a_transient_error(kind: str, request) -> None:
    emulator = request.getfixturevalue(f"{kind}_emulator")
    config = {"name": "dead", kind: dict(emulator.config[kind])}
    endpoint = config[kind]["endpoint"]
    config[kind]["endpoint"] = endpoint.replace(str(emulator.port), str(free_port()))
    destination = build_destination(config, "closed")
    with pytest.raises(DestinationError) as info:
        destination.put("data/x", b"x")
    assert not info.value.permanent
    assert "dead" in str(info.value)
