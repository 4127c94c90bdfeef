"""Certificates and keys for one local control plane, generated fresh for every start.

Called by ``launcher.ControlPlane.start``. Everything is ECDSA P-256 (fast to generate, accepted by
kube-apiserver for serving, client auth and service-account tokens). The files written into
``<state>/pki``:

- ``ca.crt``/``ca.key``: the cluster CA; signs every certificate below and, given to the
  controller-manager, the CSRs it approves.
- ``apiserver.crt``/``.key``: serving certificate for 127.0.0.1, localhost and the in-cluster names.
- ``<user>.crt``/``.key``: client certificates (admin in ``system:masters``, the controller-manager,
  the scheduler, and kwok, which needs to write node and pod status).
- ``sa.key``/``sa.pub``: the service-account token signing key pair.

Keys are written with mode 0600 and never logged.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=30)
"""Long enough for any test session or demo; short enough that leaked files soon expire."""

SERVICE_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate subject: CN is the user name, O the groups."""

    file_stem: str
    user: str
    groups: tuple[str, ...] = ()


ADMIN = ClientIdentity("admin", "kubernetes-admin", ("system:masters",))
CONTROLLER_MANAGER = ClientIdentity("controller-manager", "system:kube-controller-manager")
SCHEDULER = ClientIdentity("scheduler", "system:kube-scheduler")
KWOK = ClientIdentity("kwok", "kwok-controller", ("system:masters",))
CLIENTS = (ADMIN, CONTROLLER_MANAGER, SCHEDULER, KWOK)


@dataclass(frozen=True)
class Pki:
    """Paths of the generated files."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    sa_private_key: Path
    sa_public_key: Path

    @classmethod
    def at(cls, directory: Path) -> Pki:
        """The file layout ``generate`` writes under ``directory``."""
        return cls(
            directory=directory,
            ca_cert=directory / "ca.crt",
            ca_key=directory / "ca.key",
            serving_cert=directory / "apiserver.crt",
            serving_key=directory / "apiserver.key",
            sa_private_key=directory / "sa.key",
            sa_public_key=directory / "sa.pub",
        )

    def client_cert(self, identity: ClientIdentity) -> Path:
        return self.directory / f"{identity.file_stem}.crt"

    def client_key(self, identity: ClientIdentity) -> Path:
        return self.directory / f"{identity.file_stem}.key"


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600)
    path.write_bytes(pem)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, organisations: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organisations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _leaf_usage(*purposes: x509.ObjectIdentifier) -> list[x509.ExtensionType]:
    return [
        x509.BasicConstraints(ca=False, path_length=None),
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        ),
        x509.ExtendedKeyUsage(list(purposes)),
    ]


def issue_client(pki: Pki, identity: ClientIdentity) -> None:
    """Sign a client certificate for ``identity`` with the CA in ``pki`` (e.g. a kubelet's)."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    client_key = _new_key()
    client = _builder(
        _name(identity.user, identity.groups), ca_cert.subject, client_key.public_key()
    )
    for extension in _leaf_usage(ExtendedKeyUsageOID.CLIENT_AUTH):
        client = client.add_extension(extension, critical=False)
    _write_cert(pki.client_cert(identity), client.sign(ca_key, hashes.SHA256()))
    _write_key(pki.client_key(identity), client_key)


def generate(directory: Path, service_ip: str, extra_ips: tuple[str, ...] = ()) -> Pki:
    """Write a CA, the serving and client certificates and the SA key pair into ``directory``.

    ``service_ip`` is the first address of the service CIDR (the ``kubernetes`` Service's
    ClusterIP), added to the serving certificate's IP SANs with ``extra_ips`` (the advertised
    address when a real node's pods reach the API server, see e2e/node).
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)

    ca_key = _new_key()
    ca_name = _name("ragflow-local-ca")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki.at(directory)
    _write_cert(pki.ca_cert, ca_cert)
    _write_key(pki.ca_key, ca_key)

    serving_key = _new_key()
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in SERVICE_NAMES]
    ips = ("127.0.0.1", service_ip, *extra_ips)
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    serving = _builder(_name("kube-apiserver"), ca_name, serving_key.public_key())
    for extension in _leaf_usage(ExtendedKeyUsageOID.SERVER_AUTH):
        serving = serving.add_extension(extension, critical=False)
    serving = serving.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    _write_cert(pki.serving_cert, serving.sign(ca_key, hashes.SHA256()))
    _write_key(pki.serving_key, serving_key)

    for identity in CLIENTS:
        issue_client(pki, identity)

    sa_key = _new_key()
    _write_key(pki.sa_private_key, sa_key)
    pki.sa_public_key.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki
