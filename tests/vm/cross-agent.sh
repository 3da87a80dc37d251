#!/usr/bin/env bash
# The arm64 fleet-agent for the U-Boot board in a box (tests/vm/run):
# the same sources cross-compiled with Debian's aarch64-linux-gnu-gcc
# against the arm64 development packages (multiarch; scripts/install-deps
# --vm).  Only the agent's own libraries are asked of pkg-config; the
# sonames of the lazily loaded libraries are the host's (the same Debian
# 12 packages).
#
#   tests/vm/cross-agent.sh BUILD     builds BUILD/fleet-agent, prints it
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: cross-agent.sh BUILD}
case "$build" in /*) ;; *) build=$PWD/$build ;; esac
export PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
defs=$(make -s -C "$top" -f - <<'EOF'
include mk/lazylibs.mk
$(info $(LAZY_DEFS))
all: ;
EOF
)
make -s -C "$top" BUILD="$build" CC=aarch64-linux-gnu-gcc \
	PKGS="openssl jansson inih libmosquitto sqlite3 libcurl libarchive libzstd libubootenv" \
	LAZY_DEFS="$defs" CFLAGS="-I/usr/include/postgresql -I/usr/include/modbus" \
	"$build/fleet-agent" >&2
echo "$build/fleet-agent"
