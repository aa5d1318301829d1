#!/bin/bash
# packaging/deb/build-deb.sh OUTDIR: the Debian package of tether, from the release binaries
# that `make deb` has built (swift build -c release --static-swift-stdlib), into
# OUTDIR/tether_<version>_<arch>.deb; prints that path as its last line.
#
# Needs: git, dpkg-dev (dpkg-shlibdeps), binutils (strip), gzip. No debhelper.
# Environment:
#   TETHER_DEB_REVISION  Debian revision (default 1): a rebuild of the same commit as 2, 3, ...
#   TETHER_DEB_VERSION   the whole version, instead of the one derived from git
#   TETHER_BIN_DIR       where tetherd and tetherctl are (default .build/release)
# Reproducible: every date and timestamp comes from the newest commit (SOURCE_DATE_EPOCH).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for tool in git dpkg-shlibdeps dpkg-deb strip readelf gzip; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install dpkg-dev binutils gzip git)"
done
begin_packing "packaging/deb/build-deb.sh OUTDIR" "$@"

# Version and dates, all from the newest commit (SOURCE_DATE_EPOCH too).
commit_day=$(git log -1 --format=%cs)               # YYYY-MM-DD: the man pages' date
commit_hash=$(git rev-parse --short=7 HEAD)
first_year=$(git log --reverse --format=%cd --date=format:%Y | sed -n 1p)
last_year=$(git log -1 --format=%cd --date=format:%Y)
years=$first_year; [ "$first_year" = "$last_year" ] || years="$first_year-$last_year"
upstream=$("$bindir/tetherctl" --version)
[[ $upstream =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "tetherctl --version said '$upstream', not a version"
# ~git: a snapshot before the release $upstream (no tags exist yet), ordered by commit date,
# then by the number of commits: dpkg compares the digits of a hash as a number, so two
# snapshots of one day would sort by chance without it. The hash only names the commit.
commit_count=$(git rev-list --count HEAD)
version=${TETHER_DEB_VERSION:-$upstream~git${commit_day//-/}.$commit_count.$commit_hash-${TETHER_DEB_REVISION:-1}}
dpkg --validate-version "$version" || die "'$version' is not a valid Debian version"
arch=$(dpkg --print-architecture)
maintainer="tether developers <dev@tether.invalid>"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "build-deb.sh: warning: the work tree has uncommitted changes; $version names commit $commit_hash" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# debian/tether: the layout dpkg-shlibdeps expects (it reads debian/control, and the package's
# DEBIAN directory tells it where $ORIGIN is).
pkg=$work/debian/tether
install -d -m 0755 "$pkg" "$pkg/DEBIAN"
printf 'Source: tether\n\nPackage: tether\nArchitecture: any\n' >"$work/debian/control"

# Binaries, stripped as dh_strip strips them (the Swift metadata sections stay).
install -d -m 0755 "$pkg/usr/sbin" "$pkg/usr/bin"
install -m 0755 "$bindir/tetherd" "$pkg/usr/sbin/tetherd"
install -m 0755 "$bindir/tetherctl" "$pkg/usr/bin/tetherctl"
strip --remove-section=.comment --remove-section=.note "$pkg/usr/sbin/tetherd" "$pkg/usr/bin/tetherctl"

# systemd units, with Debian's paths: tetherd in /usr/sbin, documentation from the man pages
# and the README in /usr/share/doc/tether.
install -d -m 0755 "$pkg/lib/systemd/system"
documentation="Documentation=man:tetherd(8) man:tetherctl(1) file:///usr/share/doc/tether/README.md"
for unit in tether.service tether.socket; do
    [ -f "systemd/$unit" ] || die "no systemd/$unit"
    sed -e 's|/usr/local/bin/tetherd|/usr/sbin/tetherd|g' "systemd/$unit" |
        awk -v doc="$documentation" '
            /^Documentation=/ { if (!done) print doc; done = 1; next }
            { print }
            END { if (!done) exit 1 }' >"$pkg/lib/systemd/system/$unit" ||
        die "systemd/$unit has no Documentation= line"
    chmod 0644 "$pkg/lib/systemd/system/$unit"
    if grep -n '/usr/local' "$pkg/lib/systemd/system/$unit" >&2; then
        die "systemd/$unit still names /usr/local after the path substitutions (above)"
    fi
done
grep -q '^ExecStart=/usr/sbin/tetherd' "$pkg/lib/systemd/system/tether.service" ||
    die "tether.service: ExecStart= does not run /usr/sbin/tetherd"

# The system user, and the configuration (a conffile; postinst gives it to group tether).
install -d -m 0755 "$pkg/usr/lib/sysusers.d" "$pkg/etc/tether"
install -m 0644 "$here/tether.sysusers" "$pkg/usr/lib/sysusers.d/tether.conf"
install -m 0644 config/tether.yaml "$pkg/etc/tether/tether.yaml"

# Documentation. README.md stays uncompressed: the units link to it. docs/BENCHMARKS.md keeps
# its place relative to the README, whose links point there; tether-mock-upstream.md is left
# out with the mock itself (a development tool, not packaged).
doc=$pkg/usr/share/doc/tether
install -d -m 0755 "$doc" "$doc/docs"
install -m 0644 README.md "$doc/README.md"
for page in docs/*.md; do
    case $page in docs/tether-mock-upstream.md) continue ;; esac
    install -m 0644 "$page" "$doc/$page"
done
sed -e "s/@YEARS@/$years/" "$here/copyright" >"$doc/copyright"
chmod 0644 "$doc/copyright"
{
    echo "tether ($version) bookworm; urgency=medium"
    echo
    echo "  * Snapshot of upstream commit $commit_hash ($commit_day), tether $upstream."
    echo "  * Built by packaging/deb/build-deb.sh: tetherd in /usr/sbin, tetherctl in"
    echo "    /usr/bin, tether.socket and tether.service, the system user tether"
    echo "    (sysusers.d), /etc/tether/tether.yaml as a conffile, man pages."
    echo
    echo " -- $maintainer  $(date -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"

# Man pages, generated by the binaries from the command-line specs they parse with
# (`--man-page DATE`, see TetherCore's CommandHelp): tetherd in section 8, tetherctl in 1.
install -d -m 0755 "$pkg/usr/share/man/man8" "$pkg/usr/share/man/man1"
for spec in tetherd:8:usr/share/man/man8 tetherctl:1:usr/share/man/man1; do
    IFS=: read -r tool section dest <<<"$spec"
    page=$("$bindir/$tool" --man-page "$commit_day") || die "$tool --man-page failed"
    [ -n "$page" ] || die "$tool --man-page wrote nothing"
    printf '%s\n' "$page" | gzip -9n >"$pkg/$dest/$tool.$section.gz"
    chmod 0644 "$pkg/$dest/$tool.$section.gz"
done

# Overrides for what lintian cannot know (each with its reason, in the file).
install -d -m 0755 "$pkg/usr/share/lintian/overrides"
install -m 0644 "$here/lintian-overrides" "$pkg/usr/share/lintian/overrides/tether"

# Dependencies of the two binaries.
depends=$(cd "$work" &&
    dpkg-shlibdeps -O -e"$pkg/usr/sbin/tetherd" -e"$pkg/usr/bin/tetherctl" |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || die "dpkg-shlibdeps found no dependencies"

# Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up, and 1 per other entry.
installed_size=$(find "$pkg" -path "$pkg/DEBIAN" -prune -o ! -path "$pkg" -printf '%y %s\n' |
    awk '$1 == "f" { kib += int(($2 + 1023) / 1024); next } { kib += 1 } END { print kib }')

# DEBIAN: control, conffiles, md5sums (conffiles excluded, as dh_md5sums does), scripts.
cat >"$pkg/DEBIAN/control" <<EOF
Package: tether
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Recommends: ca-certificates, libcurl4 (>= 7.83.0)
Section: sound
Priority: optional
Description: realtime voice link for headless robots
 tetherd keeps a robot's voice connected: it captures the microphone and
 drives the speaker through ALSA, and keeps one realtime voice session open
 to an upstream "brain" (the OpenAI Realtime API, or a server of your own
 speaking PCM over WebSocket). It rides out Wi-Fi blips without losing
 speech, reconnects the moment the network is back, and tells systemd it is
 alive only while it really is.
 .
 The robot's other processes watch and steer it over a local control socket
 with tetherctl. tetherd runs as the unprivileged system user tether, in the
 hardened, socket-activated tether.service; the service is enabled on
 installation and starts once the API key is in /etc/tether/api-key.
EOF
echo /etc/tether/tether.yaml >"$pkg/DEBIAN/conffiles"
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
    grep -vxFf <(sed 's|^/||' DEBIAN/conffiles) | xargs -d '\n' md5sum) >"$pkg/DEBIAN/md5sums"
for script in postinst prerm postrm; do
    install -m 0755 "$here/$script" "$pkg/DEBIAN/$script"
done
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/conffiles" "$pkg/DEBIAN/md5sums"

# Same timestamps on every build of a commit (dpkg-deb clamps to SOURCE_DATE_EPOCH too).
find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

deb=$outdir/tether_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >&2
echo "$deb"
