#!/bin/bash
# packaging/dist.sh OUTDIR: a tarball of what a robot needs, from the release binaries that
# `make dist` has built: OUTDIR/tether-<version>-<arch>.tar.gz with
#   bin/tetherd bin/tetherctl            stripped, the Swift runtime linked in
#   systemd/tether.service tether.socket the unit pair (ExecStart=/usr/local/bin/tetherd)
#   etc/tether/tether.yaml               the annotated default configuration
#   README.md docs/BENCHMARKS.md         how to install, configure and run it
# Unpack it and copy by hand (see README "Install on a robot"), or feed another packaging
# system. Prints the tarball's path as its last line. Reproducible: timestamps, owners and
# order come from the newest commit, not from the build.
# Environment: TETHER_BIN_DIR (default .build/release), TETHER_VERSION and TETHER_ARCH (for
# binaries built for another architecture).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
begin_packing "packaging/dist.sh OUTDIR" "$@"

# A cross-built binary cannot tell its version here: TETHER_VERSION and TETHER_ARCH say it.
version=${TETHER_VERSION:-$("$bindir/tetherctl" --version)}
arch=${TETHER_ARCH:-$(uname -m)}
name=tether-$version-$arch

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/$name
install -d "$root/bin" "$root/systemd" "$root/etc/tether" "$root/docs"
install -m 0755 "$bindir/tetherd" "$bindir/tetherctl" "$root/bin/"
strip --remove-section=.comment --remove-section=.note "$root/bin/tetherd" "$root/bin/tetherctl"
install -m 0644 systemd/tether.service systemd/tether.socket "$root/systemd/"
install -m 0644 config/tether.yaml "$root/etc/tether/tether.yaml"
install -m 0644 README.md "$root/README.md"
install -m 0644 docs/BENCHMARKS.md "$root/docs/BENCHMARKS.md"

tarball=$outdir/$name.tar.gz
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    -C "$work" -cf - "$name" | gzip -9n >"$tarball"
echo "$tarball"
