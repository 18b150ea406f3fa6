"""`make run`: the echo backend on 127.0.0.1:8081, Envoy with cagate and envoy/envoy.yaml on
127.0.0.1:10000, and a signed curl to try. Ctrl-C stops both."""
import os
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))

from harness.backend import EchoBackend  # noqa: E402
from harness.envoy import ENVOY  # noqa: E402


def main():
    with EchoBackend(8081):
        envoy = subprocess.Popen([ENVOY, "-c", "envoy/envoy.yaml", "--concurrency", "2", "--disable-hot-restart",
                                  "-l", "warning", "--component-log-level", "wasm:info"], cwd=ROOT)
        try:
            for _ in range(200):
                if envoy.poll() is not None:
                    sys.exit(f"envoy exited with {envoy.returncode}")
                try:
                    urllib.request.urlopen("http://127.0.0.1:9901/ready", timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
            url = "http://127.0.0.1:10000/orders/42?expand=items"
            curl = subprocess.run([os.path.join(ROOT, "target", "release", "cagate"), "sign", "--curl",
                                   "--key", "test-app-key-1", "--secret", "test-app-secret-1-0123456789abcdef",
                                   "-H", "Accept: application/json", url],
                                  capture_output=True, text=True, check=True).stdout.strip()
            print(f"""
cagate is running: gateway http://127.0.0.1:10000 (Envoy admin http://127.0.0.1:9901), backend 127.0.0.1:8081

A signed request, made with `target/release/cagate sign --curl` (timestamp valid for 15 minutes,
nonce usable once; run it again for a fresh one):

  {curl}

Send one directly:  target/release/cagate sign --send --key test-app-key-1 \\
                      --secret test-app-secret-1-0123456789abcdef {url}

AppCode:    curl -i -H 'Authorization: APPCODE 3F2504E04F8911D39A0C0305E82C3301' http://127.0.0.1:10000/orders/7
Anonymous:  curl -i http://127.0.0.1:10000/health
Refused:    curl -i http://127.0.0.1:10000/orders/7        (A400MA)
Stats:      curl -s http://127.0.0.1:9901/stats/prometheus | grep cagate

Ctrl-C to stop.""", flush=True)
            envoy.wait()
        except KeyboardInterrupt:
            pass
        finally:
            envoy.terminate()
            envoy.wait()


if __name__ == "__main__":
    main()
