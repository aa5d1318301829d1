# Sourced by packaging/deb/build-deb.sh and packaging/dist.sh: how both begin, and what both
# check before packing.

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# begin_packing USAGE "$@": one argument, the output folder (made if missing). Sets `outdir`
# (absolute), `top` (the repository, now the working directory) and `bindir`
# (TETHER_BIN_DIR, default .build/release, whose binaries are checked); fixes what makes a
# build differ from machine to machine: locale, time zone, umask, and SOURCE_DATE_EPOCH from
# the newest commit.
begin_packing() {
    local usage=$1
    shift
    [ $# -eq 1 ] || die "usage: $usage"
    mkdir -p "$1"
    outdir=$(cd "$1" && pwd)
    top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    cd "$top"
    export LC_ALL=C.UTF-8 TZ=UTC
    umask 022
    bindir=${TETHER_BIN_DIR:-.build/release}
    require_static_binaries "$bindir"
    export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
}

# require_static_binaries BINDIR: tetherd and tetherctl are there, with the Swift runtime linked
# in (a robot has no Swift installation, and neither package carries one).
require_static_binaries() {
    local bin
    for bin in tetherd tetherctl; do
        [ -x "$1/$bin" ] || die "no $1/$bin: build it first (make release)"
        if [[ $(readelf -d "$1/$bin") == *"NEEDED"*"[libswift"* ]]; then
            die "$1/$bin needs the shared Swift runtime: build with --static-swift-stdlib"
        fi
    done
}
