"""The OpenTelemetry Python SDK (PyPI), a standard OTLP exporter that is not ours, pushes to the
real collector over gRPC, HTTP/protobuf and HTTP/JSON; the points the catalogue knows become
node data, the others are reported back as a partial success."""

import json
import time
import urllib.request

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from conftest import start_collector


@pytest.fixture()
def collector():
    proc, addrs = start_collector()
    yield addrs
    proc.terminate()
    proc.wait(10)


def api(addrs, path):
    with urllib.request.urlopen(f"http://{addrs['api']}{path}", timeout=10) as r:
        return json.loads(r.read())


def metric_text(addrs):
    with urllib.request.urlopen(f"http://{addrs['api']}/metrics", timeout=10) as r:
        return r.read().decode()


def gpu_util_callback(value):
    def cb(_options):
        yield Observation(value, {"hw.id": "GPU-py-0", "hw.model": "Test GPU", "gpuscope.gpu.index": 0, "hw.gpu.task": "general"})
    return cb


def meter_provider(reader, host):
    provider = MeterProvider(resource=Resource.create({"host.name": host, "service.name": "py-trainer"}), metric_readers=[reader])
    meter = provider.get_meter("interop")
    meter.create_observable_gauge("hw.gpu.utilization", callbacks=[gpu_util_callback(0.42)], unit="1")
    # Not a gpuscope signal: accepted as a partial success, counted as rejected.
    meter.create_counter("app.requests").add(5)
    return provider


def wait_node(addrs, host):
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            return api(addrs, f"/api/v1/nodes/{host}")
        except Exception:
            time.sleep(0.2)
    raise AssertionError(f"{host} never arrived")


def check(addrs, host):
    node = wait_node(addrs, host)
    gpu = node["latest"]["gpus"][0]
    assert gpu["uuid"] == "GPU-py-0"
    assert gpu["model"] == "Test GPU"
    assert gpu["utilization_ratio"] == pytest.approx(0.42)
    assert "gpuscope_collector_rejected_points_total 0" not in metric_text(addrs)


def test_sdk_grpc_exporter(collector):
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression

    exporter = OTLPMetricExporter(endpoint=f"http://{collector['grpc']}", insecure=True, compression=Compression.Gzip)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = meter_provider(reader, "py-grpc-node")
    assert provider.force_flush(10_000)
    provider.shutdown()
    check(collector, "py-grpc-node")
    assert 'gpuscope_collector_requests_total{transport="grpc"}' in metric_text(collector)


def test_sdk_http_protobuf_exporter(collector):
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http import Compression

    exporter = OTLPMetricExporter(endpoint=f"http://{collector['http']}/v1/metrics", compression=Compression.Gzip)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = meter_provider(reader, "py-http-node")
    assert provider.force_flush(10_000)
    provider.shutdown()
    check(collector, "py-http-node")


def test_sdk_payload_as_otlp_json(collector):
    reader = InMemoryMetricReader()
    provider = meter_provider(reader, "py-json-node")
    data = reader.get_metrics_data()
    request = encode_metrics(data)
    # OTLP/JSON: proto3 JSON mapping with lowerCamelCase names and enums as integers.
    body = json_format.MessageToJson(request, use_integers_for_enums=True).encode()
    req = urllib.request.Request(f"http://{collector['http']}/v1/metrics", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
        answer = json.loads(r.read())
    assert int(answer["partialSuccess"]["rejectedDataPoints"]) == 1, answer
    provider.shutdown()
    check(collector, "py-json-node")
