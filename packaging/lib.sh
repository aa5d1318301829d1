# Sourced by packaging/deb/build-deb.sh and packaging/dist.sh: what both check before packing.

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

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
