"""A secure ``--scheduler``: a real TLS dask cluster on 127.0.0.1 with certificates made here.

The run over ``tls://`` with ``--tls-ca-file/--tls-cert/--tls-key`` equals the local run; without
certificates, with a CA that did not sign the scheduler's certificate, or with a client certificate
the scheduler's CA did not sign, it stops with one ``error:`` line (exit 2), fast; a plain ``tcp://``
scheduler on another machine is warned about.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from cpfeatures.errors import CpfeaturesError
from cpfeatures.run import RunOptions, cluster_client
from cpfeatures.store import read_table

CLI = [sys.executable, "-m", "cpfeatures.cli"]
TABLES = ("image", "nuclei", "cells", "cytoplasm")


# -- certificates ------------------------------------------------------------------------------

def _write(folder: Path, name: str, key, cert) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization

    pem, pkey = folder / f"{name}.pem", folder / f"{name}.key"
    pkey.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pem, pkey


def _builder(subject: str, issuer, public_key):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1)))


def make_ca(folder: Path, name: str):
    """A self-signed CA: (key, certificate, its PEM file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_builder(name, None, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert, _write(folder, name, key, cert)[0]


def make_cert(folder: Path, name: str, ca, server: bool) -> tuple[Path, Path]:
    """A certificate signed by ``ca``: for 127.0.0.1 (scheduler and workers) or a client. (pem, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_key, ca_cert, _ = ca
    key = ec.generate_private_key(ec.SECP256R1())
    usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if server else \
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (_builder(name, ca_cert.subject, key.public_key())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return _write(folder, name, key, builder.sign(ca_key, hashes.SHA256()))


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A dask cluster on 127.0.0.1 that speaks TLS only, and the files to reach it (and not)."""
    from distributed import LocalCluster
    from distributed.security import Security

    folder = tmp_path_factory.mktemp("tls")
    ca = make_ca(folder, "cluster-ca")
    other = make_ca(folder, "other-ca")
    server_cert, server_key = make_cert(folder, "scheduler", ca, server=True)
    client_cert, client_key = make_cert(folder, "client", ca, server=False)
    stranger_cert, stranger_key = make_cert(folder, "stranger", other, server=False)
    security = Security(tls_ca_file=str(ca[2]), tls_scheduler_cert=str(server_cert),
                        tls_scheduler_key=str(server_key), tls_worker_cert=str(server_cert),
                        tls_worker_key=str(server_key), tls_client_cert=str(client_cert),
                        tls_client_key=str(client_key), require_encryption=True)
    cluster = LocalCluster(protocol="tls://", security=security, host="127.0.0.1", n_workers=1, threads_per_worker=1,
                           processes=True, dashboard_address="127.0.0.1:0")
    try:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        yield {"address": cluster.scheduler_address, "ca": ca[2], "cert": client_cert, "key": client_key,
               "other_ca": other[2], "stranger_cert": stranger_cert, "stranger_key": stranger_key}
    finally:
        cluster.close()


def _env() -> dict:
    """This environment without dask TLS settings: what the options give is all the run has."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DASK_DISTRIBUTED__COMM__TLS")}


def _cli(*args, timeout=600):
    t0 = time.monotonic()
    result = subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=_env())
    return result, time.monotonic() - t0


def _one_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("Metadata_Well", "Metadata_Site", "Metadata_ObjectNumber") if c in frame]
    return frame.sort_values(keys).reset_index(drop=True)


# -- a real TLS cluster ------------------------------------------------------------------------

def test_run_on_a_tls_scheduler_equals_the_local_run(tls_cluster, bundled_plate_dir, bundled_run, tmp_path):
    c = tls_cluster
    out = tmp_path / "tls.zarr"
    result, _ = _cli("run", bundled_plate_dir, "-o", out, "--scheduler", c["address"], "--tls-ca-file", c["ca"],
                     "--tls-cert", c["cert"], "--tls-key", c["key"], "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert "4 sites done" in result.stdout
    for table in TABLES:
        pd.testing.assert_frame_equal(_sorted(read_table(out, table)), _sorted(read_table(bundled_run, table)))


def test_tls_scheduler_without_certificates_is_one_error_line(tls_cluster, bundled_plate_dir, tmp_path):
    result, _ = _cli("run", bundled_plate_dir, "-o", tmp_path / "no.zarr", "--scheduler", tls_cluster["address"],
                     "--no-progress")
    line = _one_error(result)
    assert tls_cluster["address"] in line and "--tls-ca-file" in line and "--tls-cert" in line, line
    assert "DASK_DISTRIBUTED__COMM__TLS__CA_FILE" in line
    assert not (tmp_path / "no.zarr").exists()  # refused before any work


def test_a_ca_that_did_not_sign_the_scheduler_is_one_error_line(tls_cluster, bundled_plate_dir, tmp_path):
    c = tls_cluster
    result, seconds = _cli("run", bundled_plate_dir, "-o", tmp_path / "wrong.zarr", "--scheduler", c["address"],
                           "--tls-ca-file", c["other_ca"], "--tls-cert", c["cert"], "--tls-key", c["key"],
                           "--scheduler-timeout", "20", "--no-progress", timeout=120)
    line = _one_error(result)
    assert c["address"] in line and "TLS handshake" in line and "certificate verify failed" in line, line
    assert seconds < 60  # the handshake fails at once, it is not retried until the timeout


def test_a_client_certificate_of_another_ca_is_one_error_line(tls_cluster, bundled_plate_dir, tmp_path):
    c = tls_cluster
    result, _ = _cli("run", bundled_plate_dir, "-o", tmp_path / "stranger.zarr", "--scheduler", c["address"],
                     "--tls-ca-file", c["ca"], "--tls-cert", c["stranger_cert"], "--tls-key", c["stranger_key"],
                     "--scheduler-timeout", "20", "--no-progress", timeout=120)
    line = _one_error(result)
    # the scheduler's alert, or (TLS 1.3, a race) its closing the connection: both name the client's certificate
    assert c["address"] in line and "refused this client's certificate (--tls-cert" in line, line


def test_a_missing_certificate_file_is_named(tls_cluster, bundled_plate_dir, tmp_path):
    missing = tmp_path / "nowhere" / "client.pem"
    result, _ = _cli("run", bundled_plate_dir, "-o", tmp_path / "m.zarr", "--scheduler", tls_cluster["address"],
                     "--tls-ca-file", tls_cluster["ca"], "--tls-cert", missing, "--no-progress")
    line = _one_error(result)
    assert str(missing) in line and "no such file" in line and "--tls-cert" in line, line


def test_files_that_are_not_pem_or_do_not_match_are_named(tls_cluster):
    c = tls_cluster
    with pytest.raises(CpfeaturesError, match="not a PEM CA certificate") as err:
        RunOptions(scheduler=c["address"], tls_ca_file=c["key"], tls_cert=c["cert"], tls_key=c["key"])
    assert str(err.value).startswith(f"{c['key']}: ")
    with pytest.raises(CpfeaturesError, match="do not match") as err:
        RunOptions(scheduler=c["address"], tls_ca_file=c["ca"], tls_cert=c["cert"], tls_key=c["stranger_key"])
    assert str(c["cert"]) in str(err.value) and str(c["stranger_key"]) in str(err.value)


def test_dask_configuration_gives_the_certificates(tls_cluster):
    import dask

    c = tls_cluster
    config = {"distributed.comm.tls.ca-file": str(c["ca"]), "distributed.comm.tls.client.cert": str(c["cert"]),
              "distributed.comm.tls.client.key": str(c["key"])}
    with dask.config.set(config), cluster_client(c["address"], None, None, timeout=20) as client:
        assert client.submit(sum, [1, 2, 3], pure=False).result(timeout=60) == 6
    with dask.config.set({"distributed.comm.tls.ca-file": str(c["ca"])}), pytest.raises(CpfeaturesError) as err:
        RunOptions(scheduler=c["address"])  # the CA alone: the client certificate is named as missing
    assert "this client's certificate" in str(err.value) and "the CA" not in str(err.value)


# -- options that do not fit, plain tcp:// -----------------------------------------------------

def test_certificates_for_a_plain_scheduler_are_refused(tmp_path):
    pem = tmp_path / "ca.pem"
    pem.write_text("x")
    with pytest.raises(CpfeaturesError, match="not encrypted"):
        RunOptions(scheduler="tcp://10.1.2.3:8786", tls_ca_file=pem)
    with pytest.raises(CpfeaturesError, match="--scheduler tls://"):
        RunOptions(tls_cert=pem)


def test_plain_tcp_to_another_machine_is_warned_about():
    # 192.0.2.1 is TEST-NET-1: never answers; the warning comes before the connection is tried
    with pytest.warns(UserWarning, match=r"tcp://192\.0\.2\.1:8786 is not encrypted: anyone who reaches it runs "
                                         r"code .* with this run's credentials.*tls://"):
        with pytest.raises(CpfeaturesError, match=r"tcp://192\.0\.2\.1:8786"):  # not reached (or not a scheduler)
            with cluster_client("tcp://192.0.2.1:8786", None, None, timeout=0.2):
                pass


def test_plain_tcp_on_loopback_is_not_warned_about():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    for address in (f"tcp://127.0.0.1:{port}", f"tcp://localhost:{port}", f"tcp://[::1]:{port}"):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with pytest.raises(CpfeaturesError, match="cannot reach"):
                with cluster_client(address, None, None, timeout=0.2):
                    pass
        assert not [w for w in seen if "not encrypted" in str(w.message)], address


def test_the_cli_shows_the_warning_as_one_line(bundled_plate_dir, tmp_path):
    result, _ = _cli("run", bundled_plate_dir, "-o", tmp_path / "plain.zarr", "--scheduler", "tcp://192.0.2.1:8786",
                     "--scheduler-timeout", "0.5", "--no-progress", timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    warned = [ln for ln in lines if ln.startswith("warning: ")]
    assert len(warned) == 1 and "not encrypted" in warned[0] and "tls://" in warned[0], result.stderr
    assert lines[-1].startswith("error: ") and "tcp://192.0.2.1:8786" in lines[-1], result.stderr
    assert "Traceback" not in result.stderr
