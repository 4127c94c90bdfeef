"""Session fixtures for the backup integration tests: the three object-store emulators."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from emulators import Emulator, start_azure, start_gcs, start_s3


@pytest.fixture(scope="session")
def s3_emulator() -> Iterator[Emulator]:
    emulator = start_s3()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[Emulator]:
    emulator = start_gcs()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def azure_emulator() -> Iterator[Emulator]:
    emulator = start_azure()
    yield emulator
    emulator.stop()


@pytest.fixture
def emulators(s3_emulator, gcs_emulator, azure_emulator) -> list[Emulator]:
    return [s3_emulator, gcs_emulator, azure_emulator]
