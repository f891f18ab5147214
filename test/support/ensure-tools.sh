#!/bin/sh
# Installs what the tests drive besides tsetcd itself: real etcd and etcdctl 3.4 (Debian's
# etcd-server and etcd-client), used as a client and as the differential reference.
set -e
if command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing etcd-server and etcd-client (Debian) for the differential tests" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null
  exit 0
fi
echo "etcd and etcdctl are not installed and cannot be installed here (need root and apt-get);" >&2
echo "tests that compare with real etcd will be skipped" >&2
