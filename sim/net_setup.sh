#!/bin/sh
# `make net-setup`: what the namespaced test bed needs from the machine (sim/netns.py, sim/partition.py).
# Idempotent and quiet when all is there. As root on Debian it installs the package `nftables` (the `nft`
# command the silent partitions use) when missing; iproute2 (`ip`) must be there already. Without root
# it only says that the bed will fall back to loopback (no namespaces, no partitions). Never fails the
# build: a test that needs what is missing is skipped with the reason.
if [ "$(id -u)" != "0" ]; then
    echo "net-setup: not root: the test bed falls back to loopback (no network namespaces, no partitions)"
    exit 0
fi
command -v ip >/dev/null 2>&1 || echo "net-setup: iproute2 (ip) is missing: the test bed falls back to loopback"
if ! command -v nft >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        echo "net-setup: installing the Debian package nftables (nft: silent partitions of the test bed)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq nftables >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq nftables >/dev/null 2>&1; } \
            || echo "net-setup: could not install nftables: partition tests will be skipped"
    else
        echo "net-setup: nft is missing and there is no apt-get: partition tests will be skipped"
    fi
fi
exit 0
