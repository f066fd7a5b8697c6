"""A throwaway certificate authority so the Salesforce sandbox can speak HTTPS on loopback.

simple-salesforce always uses https, so the sandbox must too. trustme issues a leaf with the
SANs urllib3 2.x checks (``IP:127.0.0.1`` and ``DNS:localhost``) from a CA with the
extensions strict verification wants; clients trust it through ``ca_path``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    """PEM files on disk: the CA clients trust, and the server's chain and key."""

    ca_path: str
    cert_path: str
    key_path: str
    directory: str


def make_tls_files(directory: str | None = None) -> TlsFiles:
    """Generate a fresh CA and a leaf for 127.0.0.1/localhost, written under ``directory``."""
    where = Path(directory or tempfile.mkdtemp(prefix="sandbox-tls-"))
    where.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Truce Sandbox")
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = where / "ca.pem"
    cert_path = where / "server-chain.pem"
    key_path = where / "server-key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert_path.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key_path))
    return TlsFiles(str(ca_path), str(cert_path), str(key_path), str(where))
