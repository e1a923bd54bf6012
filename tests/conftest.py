"""Fixtures shared by test folders: a loopback DICOM storage SCP."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The tests are of the installed tfsal. `python -m pytest` puts the working directory first on
# sys.path, where the source folder tfsal/ (without tfsal.cli and tfsal.saved_models, which the
# install maps in from cli/ and saved_models/) would shadow it; `pytest` does not.
_SOURCE_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _SOURCE_ROOT]

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"


class StorageSCP:
    """A loopback storage SCP (pynetdicom) that keeps what it receives and answers ``status``."""

    def __init__(self, sop_classes=(SEGMENTATION_STORAGE, SECONDARY_CAPTURE_STORAGE), status=0x0000,
                 ae_title="STORESCP"):
        import pynetdicom

        self.received = []
        self.status = status
        ae = pynetdicom.AE(ae_title=ae_title)
        ae.require_called_aet = True
        for sop_class in sop_classes:
            ae.add_supported_context(sop_class)
        self.server = ae.start_server(("127.0.0.1", 0), block=False,
                                      evt_handlers=[(pynetdicom.evt.EVT_C_STORE, self._store)])
        self.port = self.server.server_address[1]

    def _store(self, event) -> int:
        self.received.append(event.dataset)
        return self.status

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def scp_factory():
    servers = []

    def start(**kwargs) -> StorageSCP:
        servers.append(StorageSCP(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
