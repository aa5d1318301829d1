# tether: `make demo` runs tetherd against the local mock brain; `make test` runs every suite.
# Both install the Debian packages they need (with sudo when not root).

SWIFT      ?= swift
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR    ?= /etc/systemd/system
BIN        := .build/debug
RELEASE_BIN := .build/release
VENV       := .venv
PYTHON     := $(VENV)/bin/python
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_SECONDS ?= 30
# Release binaries carry the Swift runtime inside them (no Foundation: the configuration is read
# with libyaml): a robot needs no Swift installation, and only the parts tetherd uses are mapped
# (see docs/BENCHMARKS.md). The system tests run these release binaries, as a robot runs them;
# the unit and component suites use the quicker-to-link debug build.
# Nor the standard library's regex engine: no module imports _StringProcessing implicitly
# (1.4 MB of every binary; TetherCore searches strings by hand where it must). The debug build
# keeps it for the tests, which use the stdlib's string searching freely.
# Lean (docs/BENCHMARKS.md "Lean binaries"), stripped tetherd 20.2 -> 14.4 MB: every function and
# datum in a section of its own, so that --gc-sections (SwiftPM's dead stripping) can drop what
# nothing calls; --no-export-dynamic undoes the static Swift runtime's -export-dynamic, which
# exported every symbol of tether, NIO and BoringSSL and so kept them all alive; lld stores the
# 50,000 relative relocations as DT_RELR (1.2 MB of .rela.dyn; glibc 2.36, Debian 12) and folds
# identical functions. The functions that run are laid out together, in packaging/tetherd.order
# (`make code-order` writes it from a profile): the kernel maps code 64 KiB around every page
# touched, so scattered among those that never run they kept 2.8 MB more of the binary resident.
# The Swift runtime's C++ library is linked in from libstdc++.a (packaging/static-c++ says how):
# mapping libstdc++.so.6 kept about 1 MB of it resident, of which tetherd uses little.
LEAN       := -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xcc -fdata-sections \
              -Xswiftc -use-ld=lld -Xlinker --no-export-dynamic -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --icf=all \
              -Xlinker --symbol-ordering-file=$(CURDIR)/packaging/tetherd.order -Xlinker --no-warn-symbol-ordering \
              -Xswiftc -L$(CURDIR)/packaging/static-c++
# TARGET_FLAGS: for a cross build, e.g. --swift-sdk aarch64-unknown-linux-gnu (README).
TARGET_FLAGS ?=
RELEASE    := -c release --static-swift-stdlib -Xswiftc -Xfrontend -Xswiftc -disable-implicit-string-processing-module-import $(LEAN) $(TARGET_FLAGS)

# Build: the system libraries tether binds (ALSA, libsystemd, libyaml; libcurl's header for the
# library it loads on first use), and pkg-config to find them.
APT_BUILD := pkg-config libasound2-dev libsystemd-dev libcurl4-openssl-dev libyaml-dev
# Tests and demo: speech clips, the netns rig, nft blackholes, systemd-analyze, a Python venv.
APT_TEST  := sox espeak-ng iproute2 nftables systemd python3 python3-venv openssl
# Benchmarks: arecord and aplay measure what full-duplex audio alone costs on the machine.
APT_BENCH := alsa-utils
# The profile behind packaging/tetherd.order (make code-order).
APT_PROFILE := valgrind
# The Debian package: dpkg-shlibdeps for its Depends, strip, lintian to check it.
APT_DEB   := dpkg-dev binutils lintian
# The real-systemd suite boots systemd as PID 1 of a throw-away container.
APT_SYSTEMD := systemd-container

.PHONY: all build release deps deps-build venv test unit system demo bench code-order install uninstall deb dist clean

all: build

# $(call apt_ensure,PACKAGES): install those of PACKAGES that are missing.
define apt_ensure
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi
endef

deps-build:
	$(call apt_ensure,$(APT_BUILD))

deps: deps-build
	$(call apt_ensure,$(APT_TEST) $(APT_DEB))
	@dpkg -s $(APT_SYSTEMD) >/dev/null 2>&1 || { echo "installing: $(APT_SYSTEMD)"; $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_SYSTEMD) >/dev/null; }

build: deps-build
	$(SWIFT) build --build-tests

$(VENV)/.ready: Tests/system/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r Tests/system/requirements.txt
	touch $@

venv: $(VENV)/.ready

release: deps-build
	$(SWIFT) build $(RELEASE)

# One debug build serves the unit tests of the pure core and the component tests of the Linux
# layer; the system tests run the release binaries, which the package is made from and the
# real-systemd suite installs (a debug build is several times slower where bytes are looped
# over, so it would be measured against bounds that the shipped binary meets with room).
# Unit and component suites run one at a time: the ALSA rig suites block their threads while
# they wait on real devices, and beside them on a 2-core machine the concurrency pool's two
# threads were taken for seconds, failing suites that time async resumptions (about 10 s more
# in all than in parallel).
test: deps venv build deb
	$(SWIFT) test --skip-build --no-parallel
	TETHER_BIN_DIR=$(RELEASE_BIN) $(PYTHON) -m pytest -p no:cacheprovider -q Tests/system

unit: build
	$(SWIFT) test --skip-build --no-parallel

system: deps venv release
	TETHER_BIN_DIR=$(RELEASE_BIN) $(PYTHON) -m pytest -p no:cacheprovider -q Tests/system $(PYTEST_ARGS)

demo: deps venv
	$(SWIFT) build
	TETHER_BIN_DIR=$(BIN) DEMO_SECONDS=$(DEMO_SECONDS) $(PYTHON) Tests/rig/demo.py

bench: deps venv
	$(call apt_ensure,$(APT_BENCH))
	$(SWIFT) build $(RELEASE)
	TETHER_BIN_DIR=$(RELEASE_BIN) $(PYTHON) Tests/rig/bench.py

# Which of tetherd's functions run, busiest first, from callgrind runs of the release build on the
# ALSA rig against the mock (Tests/rig/code_order.py); the next release link lays them out
# together. Regenerate after large changes (a stale file costs memory, never correctness).
code-order: deps venv
	$(call apt_ensure,$(APT_PROFILE))
	$(SWIFT) build $(RELEASE)
	TETHER_BIN_DIR=$(RELEASE_BIN) $(PYTHON) Tests/rig/code_order.py packaging/tetherd.order
	@# SwiftPM does not know the file is an input of the link: the next build must relink.
	rm -f $(RELEASE_BIN)/tetherd

# The Debian package of the release build: out/tether_<version>_<arch>.deb (packaging/deb).
deb: release
	$(call apt_ensure,$(APT_DEB))
	rm -f out/tether_*.deb
	packaging/deb/build-deb.sh out

# A tarball of the release binaries, the units, the configuration and the README:
# out/tether-<version>-<arch>.tar.gz (packaging/dist.sh).
dist: release
	rm -f out/tether-*.tar.gz
	packaging/dist.sh out

install:
	$(SWIFT) build $(RELEASE)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/doc/tether
	install -d -m 0750 $(DESTDIR)$(SYSCONFDIR)/tether
	install -m 0755 -s .build/release/tetherd .build/release/tetherctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 systemd/tether.service systemd/tether.socket $(DESTDIR)$(UNITDIR)/
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/tether/README.md
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/tether/tether.yaml ]; then \
	  echo "keeping existing $(SYSCONFDIR)/tether/tether.yaml"; \
	else install -m 0640 config/tether.yaml $(DESTDIR)$(SYSCONFDIR)/tether/tether.yaml; fi
	@if [ -z "$(DESTDIR)" ]; then \
	  getent group tether >/dev/null || groupadd --system tether; \
	  getent passwd tether >/dev/null || useradd --system --gid tether --groups audio --home-dir /nonexistent --shell /usr/sbin/nologin tether; \
	  chgrp tether $(SYSCONFDIR)/tether $(SYSCONFDIR)/tether/tether.yaml; \
	  systemctl daemon-reload 2>/dev/null || true; \
	  echo "installed; put the API key in $(SYSCONFDIR)/tether/api-key (mode 600, root), then: systemctl enable --now tether.socket tether.service"; fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/tetherd $(DESTDIR)$(PREFIX)/bin/tetherctl $(DESTDIR)$(UNITDIR)/tether.service $(DESTDIR)$(UNITDIR)/tether.socket
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/tether

clean:
	rm -rf .build $(VENV) out
