"""The Istio deliverables: the OCI image of the plugin holds exactly cagate.wasm, and the WasmPlugin
manifest's pluginConfig is a valid configuration."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from conftest import wasm_only
from harness.envoy import ROOT, WASM

OCI = os.path.join(ROOT, "target", "oci", "cagate")


def read_blob(digest):
    algo, hexd = digest.split(":")
    with open(os.path.join(OCI, "blobs", algo, hexd), "rb") as f:
        data = f.read()
    assert hashlib.sha256(data).hexdigest() == hexd, "blob content does not match its digest"
    return data


@wasm_only
def test_oci_layout_holds_the_same_bytes():
    with open(os.path.join(OCI, "oci-layout")) as f:
        assert json.load(f)["imageLayoutVersion"] == "1.0.0"
    with open(os.path.join(OCI, "index.json")) as f:
        index = json.load(f)
    (entry,) = index["manifests"]
    assert entry["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    manifest = json.loads(read_blob(entry["digest"]))
    assert manifest["config"]["mediaType"] == "application/vnd.module.wasm.config.v1+json"
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.module.wasm.content.layer.v1+wasm"
    with open(WASM, "rb") as f:
        assert read_blob(layer["digest"]) == f.read()


@wasm_only
@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker")
def test_docker_image_holds_the_same_bytes():
    saved = subprocess.run(["docker", "save", "cagate-wasm:local"], capture_output=True, check=True).stdout
    outer = tarfile.open(fileobj=io.BytesIO(saved))
    found = None
    for member in outer.getmembers():
        if member.name.endswith("layer.tar") or member.name.startswith("blobs/"):
            data = outer.extractfile(member)
            if data is None:
                continue
            try:
                inner = tarfile.open(fileobj=io.BytesIO(data.read()))
            except tarfile.TarError:
                continue
            if "plugin.wasm" in inner.getnames():
                found = inner.extractfile("plugin.wasm").read()
    with open(WASM, "rb") as f:
        assert found == f.read()


@wasm_only
def test_wasmplugin_config_is_valid():
    r = subprocess.run([os.path.join(ROOT, "target", "release", "cagate"), "check",
                        os.path.join(ROOT, "envoy", "istio", "wasmplugin.yaml")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pluginConfig: valid (1 apps, 2 apis, 1 plugins)" in r.stdout
