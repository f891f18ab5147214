#!/bin/sh
# Installs what the tests drive or read besides tsetcd itself: real etcd and etcdctl 3.4 (Debian's
# etcd-server and etcd-client), used as a client and as the differential reference, and etcd's Go
# sources (golang-etcd-server-dev), whose .proto files the protocol-shape tests compare ours with;
# Debian's chromium, which the dashboard test drives headless through playwright-core; and nftables,
# whose nft blocks traffic between members in their own network namespaces (the partition tests);
# and GNU time, whose peak RSS of `tsetcdctl snapshot status` the status memory test reads.
set -e
etcdProtoFile=/usr/share/gocode/src/go.etcd.io/etcd/etcdserver/api/v3lock/v3lockpb/v3lock.proto
if command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1 && [ -f "$etcdProtoFile" ] && [ -x /usr/bin/chromium ] && command -v nft >/dev/null 2>&1 && [ -x /usr/bin/time ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing etcd-server, etcd-client, golang-etcd-server-dev, chromium, nftables and time (Debian) for the differential, dashboard and partition tests" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client golang-etcd-server-dev chromium nftables time >/dev/null
  exit 0
fi
echo "etcd, etcdctl, etcd's Go sources, chromium, nft or GNU time are not installed and cannot be installed here (need root and apt-get);" >&2
echo "tests that compare with real etcd, drive the dashboard in a browser or partition members will be skipped" >&2
