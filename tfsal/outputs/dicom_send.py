"""C-STORE of tfsal's DICOM results to a DICOM node (pynetdicom), and the ``[AET@]HOST:PORT`` text
that names the node. Error messages name files, never patients; the libraries' log records and
warnings are dropped while sending (:data:`tfsal.outputs.dicom_results.LIBRARIES`)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from tfsal.errors import TfsalError
from tfsal.outputs.dicom_results import LIBRARIES, require_dicom_extra
from tfsal.util.quiet import quiet_libraries

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_CALLED_AE", "DicomAddress", "DicomSendError", "parse_dicom_address", "send_dicom"]

DEFAULT_CALLED_AE = "ANY-SCP"
"""The called AE title when an address gives none."""

# C-STORE statuses that mean "stored" (0x0000) or "stored with changes" (PS3.4 B.2.3 warnings).
_STORE_WARNINGS = {0xB000: "coercion of data elements", 0xB006: "elements discarded",
                   0xB007: "data set does not match SOP class"}


class DicomSendError(TfsalError):
    """Files could not be stored on a DICOM node (no association, or a store failed)."""


class DicomAddress(NamedTuple):
    """A DICOM node: the called AE title, host and TCP port."""

    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.ae_title}@{host}:{self.port}"


_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # printable ASCII except backslash
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                   r"[A-Za-z0-9])?)*$")


def parse_dicom_address(text: str) -> DicomAddress:
    """The node named by ``HOST:PORT`` or ``AET@HOST:PORT`` (IPv6 hosts in brackets).

    The called AE title defaults to ``ANY-SCP``. Raises ValueError, with the expected form, for
    anything else: an empty or over-long AE title, a missing host, a port outside 1..65535.
    """
    expected = "expected HOST:PORT or AET@HOST:PORT, e.g. PACS@192.168.1.10:104"
    text = str(text).strip()
    ae_title, at, rest = text.rpartition("@")
    ae_title = ae_title.strip() if at else DEFAULT_CALLED_AE
    if not _AE_TITLE.match(ae_title):
        raise ValueError(f"invalid DICOM address {text!r}: the AE title must be 1 to 16 printable characters "
                         f"without backslash; {expected}")
    match = re.fullmatch(r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<port>\d{1,5})|(?P<host>[^:\[\]]+):(?P<port2>\d{1,5})", rest)
    if not match:
        raise ValueError(f"invalid DICOM address {text!r}: {expected}")
    host = match["v6"] or match["host"]
    port = int(match["port"] or match["port2"])
    if not match["v6"] and not _HOST.match(host):
        raise ValueError(f"invalid DICOM address {text!r}: {host!r} is not a host name or IP address")
    if not 1 <= port <= 65535:
        raise ValueError(f"invalid DICOM address {text!r}: the port must be 1..65535")
    return DicomAddress(ae_title, host, port)


def send_dicom(paths: Iterable[str | os.PathLike], address: str | DicomAddress, *, calling_ae: str = "TFSAL",
               timeout: float = 30) -> None:
    """Store DICOM files on a node with C-STORE, over one association.

    Presentation contexts are requested for the SOP classes of the files, each with explicit and
    implicit VR little endian (and the file's own transfer syntax where it is another).

    Args:
        paths: DICOM files, e.g. those :func:`write_dicom_results` wrote.
        address: ``HOST:PORT`` or ``AET@HOST:PORT`` (see :func:`parse_dicom_address`), or a
            :class:`DicomAddress`.
        calling_ae: this application's AE title.
        timeout: seconds allowed for connecting and for each network exchange.

    Raises:
        ValueError: ``address`` is malformed.
        TfsalError: the extra ``tfsal[dicom]`` is missing; a file cannot be read as DICOM;
            (:class:`DicomSendError`) the node cannot be reached or rejects or aborts the
            association, or a store returns a failure status. Messages name files, not patients.
    """
    node = address if isinstance(address, DicomAddress) else parse_dicom_address(address)
    _, pynetdicom = require_dicom_extra()
    paths = [Path(p) for p in paths]
    if not paths:
        return
    with quiet_libraries(*LIBRARIES):
        datasets = [_read_for_sending(path) for path in paths]
        ae = pynetdicom.AE(ae_title=calling_ae)
        for sop_class, syntaxes in _contexts(datasets).items():
            ae.add_requested_context(sop_class, syntaxes)
        ae.connection_timeout = ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
        assoc = ae.associate(node.host, node.port, ae_title=node.ae_title)
        if not assoc.is_established:
            state = "rejected" if assoc.is_rejected else "could not be established (unreachable, timed out or aborted)"
            raise DicomSendError(f"cannot store on {node}: association {state}")
        try:
            failures = [failure for path, dataset in zip(paths, datasets, strict=True)
                        if (failure := _store(assoc, path, dataset, node))]
        finally:
            if assoc.is_established:
                assoc.release()
    if failures:
        raise DicomSendError(f"cannot store on {node}: {'; '.join(failures)}")
    log.info("stored %d file(s) on %s", len(paths), node)


def _read_for_sending(path: Path):
    import pydicom

    try:
        return pydicom.dcmread(path)
    except FileNotFoundError:
        raise DicomSendError(f"{path}: no such file") from None
    except Exception:
        raise DicomSendError(f"{path}: not a DICOM file") from None


def _contexts(datasets) -> dict[str, list[str]]:
    """Transfer syntaxes to propose per SOP class: the files' own, then explicit and implicit VR LE."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    contexts: dict[str, list[str]] = {}
    for dataset in datasets:
        syntaxes = contexts.setdefault(str(dataset.SOPClassUID), [])
        own = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        for syntax in (own, ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            if syntax and str(syntax) not in syntaxes:
                syntaxes.append(str(syntax))
    return contexts


def _store(assoc, path: Path, dataset, node: DicomAddress) -> str | None:
    """C-STORE one dataset; None when stored, else a one-line reason naming the file."""
    if not assoc.is_established:
        return f"{path.name}: association lost before it was sent"
    try:
        status = assoc.send_c_store(dataset)
    except ValueError:  # no accepted presentation context for this SOP class / transfer syntax
        return f"{path.name}: {node.ae_title} accepted no presentation context for its SOP class"
    code = status.get("Status") if status else None
    if code is None:
        return f"{path.name}: no response (timed out or aborted)"
    if code in _STORE_WARNINGS:
        log.warning("%s stored on %s with warning 0x%04X (%s)", path.name, node, code, _STORE_WARNINGS[code])
    elif code != 0x0000:
        return f"{path.name}: failure status 0x{code:04X}"
    return None
