"""Writes the Wasm plugin as an OCI image layout in the Wasm artifact format Istio accepts
(config application/vnd.module.wasm.config.v1+json, one layer application/vnd.module.wasm.content.layer.v1+wasm).
Push it with any OCI tool, e.g. `oras cp --from-oci-layout target/oci/cagate:0.1.0 registry/cagate:0.1.0`
or `skopeo copy oci:target/oci/cagate:0.1.0 docker://registry/cagate:0.1.0`.
Usage: oci.py OUT_DIR WASM [TAG]"""
import hashlib
import json
import os
import shutil
import sys


def blob(out, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(out, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def main():
    out, wasm = sys.argv[1], sys.argv[2]
    tag = sys.argv[3] if len(sys.argv) > 3 else "0.1.0"
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.join(out, "blobs", "sha256"))
    with open(wasm, "rb") as f:
        module = f.read()
    layer = dict(blob(out, module), mediaType="application/vnd.module.wasm.content.layer.v1+wasm",
                 annotations={"org.opencontainers.image.title": "plugin.wasm"})
    config = dict(blob(out, json.dumps({"created": "1970-01-01T00:00:00Z", "author": "cagate",
                                         "type": "envoy_proxy_wasm_api_v0.2"}).encode()),
                  mediaType="application/vnd.module.wasm.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config, "layers": [layer]}
    m = dict(blob(out, json.dumps(manifest).encode()), mediaType="application/vnd.oci.image.manifest.v1+json",
             annotations={"org.opencontainers.image.ref.name": tag})
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [m]}, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print(f"wrote OCI image layout {out} (tag {tag}, layer {layer['digest']})")


if __name__ == "__main__":
    main()
