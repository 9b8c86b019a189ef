"""TLS material of the Kubernetes API emulator: a test CA and a serving certificate for loopback.

Role: the API server is reached over HTTPS, as a real one is (reference bolt-and-kube-emulation.md
3.2: "the emulator serving TLS with a test CA whose SAN holds the emulator's IP"); kubectl also sends
a kubeconfig's bearer token only over TLS (client-go reads auth info only "if we are secure"). One CA
and one serving certificate (SAN `IP:<host>`, `DNS:localhost`) are made per process and host with the
`openssl` command line (no extra Python dependency), kept in a private temporary directory that is
removed at exit; every emulator of the process reuses them.

Must never: write key material outside its private directory, or run openssl without a timeout.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

OPENSSL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Credentials:
    ca_file: Path  # the CA certificate clients trust (kubeconfig certificate-authority-data)
    cert_file: Path  # the serving certificate, signed by the CA
    key_file: Path

    @property
    def ca_pem(self) -> bytes:
        return self.ca_file.read_bytes()

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx


def _openssl(*args: str, cwd: Path) -> None:
    try:
        subprocess.run(
            ["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=OPENSSL_TIMEOUT_S
        )
    except FileNotFoundError as exc:
        raise RuntimeError("the kube emulator serves TLS and needs the openssl command") from exc
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"openssl {args[0]} failed: {exc.stderr.decode(errors='replace')}") from exc


@functools.cache
def credentials(host: str) -> Credentials:
    """The process's CA and a serving certificate for `host` (made once, removed at exit)."""
    d = Path(tempfile.mkdtemp(prefix="kube-emulator-tls-"))
    atexit.register(shutil.rmtree, d, True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
             "-subj", "/CN=kube-emulator-ca", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)  # fmt: skip
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=kube-apiserver", cwd=d)
    (d / "ext.cnf").write_text(
        f"subjectAltName=IP:{host},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default\n"
        "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
    )
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "3650", "-extfile", "ext.cnf", cwd=d)  # fmt: skip
    return Credentials(d / "ca.crt", d / "server.crt", d / "server.key")
