"""Mutual TLS with a standard OTLP exporter that is not ours: the OpenTelemetry Python SDK pushes
to the real collector over gRPC and HTTP/protobuf presenting a client certificate, and the
collector refuses the same exporter without one. Certificates come from the openssl command line,
another implementation than the one the collector uses."""

import json
import ssl
import subprocess
import time
import urllib.request

import pytest

from conftest import start_collector
from test_otel_interop import meter_provider


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture()
def certs(tmp_path):
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=gpuscope test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=tmp_path)
    for name, san, usage in [("server", "DNS:localhost,IP:127.0.0.1", "serverAuth"), ("client", "DNS:py-agent", "clientAuth")]:
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=tmp_path)
        (tmp_path / f"{name}.ext").write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext", cwd=tmp_path)
    return tmp_path


@pytest.fixture()
def collector(certs):
    proc, addrs = start_collector(
        ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
         "--tls-client-ca", str(certs / "ca.pem")],
        host="localhost",
    )
    yield addrs
    proc.terminate()
    proc.wait(10)


def api(addrs, certs, path, client_cert=True):
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    if client_cert:
        ctx.load_cert_chain(str(certs / "client.pem"), str(certs / "client.key"))
    with urllib.request.urlopen(f"https://{addrs['api']}{path}", timeout=10, context=ctx) as r:
        return json.loads(r.read())


def node_names(addrs, certs):
    return sorted(n["node"] for n in api(addrs, certs, "/api/v1/nodes"))


def push_grpc(addrs, certs, host, client_cert):
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    read = lambda name: (certs / name).read_bytes()
    creds = grpc.ssl_channel_credentials(
        root_certificates=read("ca.pem"),
        private_key=read("client.key") if client_cert else None,
        certificate_chain=read("client.pem") if client_cert else None,
    )
    exporter = OTLPMetricExporter(endpoint=addrs["grpc"], credentials=creds, timeout=5)
    provider = meter_provider(PeriodicExportingMetricReader(exporter, export_interval_millis=60_000), host)
    ok = provider.force_flush(10_000)
    provider.shutdown()
    return ok


def push_http(addrs, certs, host, client_cert):
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    exporter = OTLPMetricExporter(
        endpoint=f"https://{addrs['http']}/v1/metrics",
        certificate_file=str(certs / "ca.pem"),
        client_certificate_file=str(certs / "client.pem") if client_cert else None,
        client_key_file=str(certs / "client.key") if client_cert else None,
        timeout=5,
    )
    provider = meter_provider(PeriodicExportingMetricReader(exporter, export_interval_millis=60_000), host)
    ok = provider.force_flush(10_000)
    provider.shutdown()
    return ok


def wait_nodes(addrs, certs, want):
    deadline = time.time() + 15
    while time.time() < deadline:
        if node_names(addrs, certs) == want:
            return
        time.sleep(0.2)
    assert node_names(addrs, certs) == want


def test_sdk_exporters_push_with_a_client_certificate_and_not_without(collector, certs, monkeypatch):
    # requests lets these variables override the exporter's own CA file.
    for var in ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]:
        monkeypatch.delenv(var, raising=False)
    push_grpc(collector, certs, "py-mtls-grpc", client_cert=True)
    push_http(collector, certs, "py-mtls-http", client_cert=True)
    wait_nodes(collector, certs, ["py-mtls-grpc", "py-mtls-http"])
    push_grpc(collector, certs, "py-anon-grpc", client_cert=False)
    push_http(collector, certs, "py-anon-http", client_cert=False)
    time.sleep(1)
    assert node_names(collector, certs) == ["py-mtls-grpc", "py-mtls-http"], "no certificate, no push"
    # The API asks for a certificate too.
    with pytest.raises(Exception):
        api(collector, certs, "/api/v1/nodes", client_cert=False)
