#!/usr/bin/env bash
# Installs the engines that cluster-mode tests run against, from Debian, only when missing:
#   redis-server            (Debian package redis-server) - backs the test rate limit service
#   etcd + etcdctl          (Debian packages etcd-server, etcd-client) - one-time keys
#   wrk                     (Debian package wrk) - the load generator of `make bench`
#   prometheus + promtool   (Debian package prometheus) - the observability tests (alert rules, scrapes)
# Idempotent: when everything is present it touches nothing (no apt-get update). Run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

want=()
command -v redis-server >/dev/null 2>&1 || want+=(redis-server)
command -v etcd >/dev/null 2>&1 || want+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || want+=(etcd-client)
command -v wrk >/dev/null 2>&1 || want+=(wrk)
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || want+=(prometheus)

if [ ${#want[@]} -eq 0 ]; then
  echo "engines present: $(redis-server --version | awk '{print $3}') / etcd $(etcd --version 2>/dev/null | awk '/etcd Version/{print $3}') / prometheus $(prometheus --version 2>&1 | awk 'NR==1{print $3}')"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-engines.sh: missing ${want[*]}; run as root (sudo $0)" >&2
  exit 1
fi

echo "installing: ${want[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${want[@]}"
# Debian's packages try to start their services; without systemd nothing runs, and the tests start
# their own instances on free ports anyway (prometheus included: tests/harness/prometheus.py).
command -v redis-server >/dev/null && command -v etcd >/dev/null && command -v etcdctl >/dev/null && command -v wrk >/dev/null
command -v prometheus >/dev/null && command -v promtool >/dev/null
echo "engines installed: $(redis-server --version | awk '{print $3}') / etcd $(etcd --version 2>/dev/null | awk '/etcd Version/{print $3}') / prometheus $(prometheus --version 2>&1 | awk 'NR==1{print $3}')"
