"""No Foundation in the product binaries, and no shared library tetherd was not meant to
need. Foundation (swift-corelibs-foundation with CoreFoundation, and ICU's data through
FoundationInternationalization) was linked only because Yams imported it; this keeps it out.
Issue: Lean on the robot, item 1.

FoundationEssentials (swift-foundation's core, without ICU) went too: swift-argument-parser
imported it, and tetherd and tetherctl now parse their command lines with TetherCore's
CommandSpec. The mock upstream, a test and demo tool that robots do not run, keeps
swift-argument-parser and so FoundationEssentials (but not Foundation)."""

import re
import subprocess

import pytest

from conftest import BIN, REPO

PRODUCTS = ["tetherd", "tetherctl", "tether-mock-upstream"]

# Swift mangles a module name as its length and the name: every symbol of Foundation, or one
# that uses a Foundation type, carries "10Foundation"; the ICU-backed part is
# "31FoundationInternationalization". An `import Foundation` that only uses types living in
# FoundationEssentials (Date, Data, ProcessInfo) leaves no such symbol, but a debug build then
# still loads libFoundation.so, which the library check sees.
FOUNDATION_SYMBOL = re.compile(r"(?<!\d)(10Foundation|31FoundationInternationalization)")
ESSENTIALS_SYMBOL = re.compile(r"(?<!\d)(20FoundationEssentials|22_FoundationCollections)")
# The release build (as make builds it) leaves out the standard library's regex engine too.
REGEX_SYMBOL = re.compile(r"(?<!\d)(17_StringProcessing|12_RegexParser)")
FOUNDATION_LIBRARY = re.compile(r"^lib(Foundation|FoundationInternationalization|_FoundationICU|FoundationNetworking|FoundationXML)\.so")

# What tetherd itself may bring in: the C and C++ runtime, ALSA, libsystemd and libyaml (linked:
# the reference parser, Debian's libyaml-0-2, rather than a vendored copy). What those libraries
# need in turn (libsystemd's libcap, libgcrypt, compressors) is theirs, and allowed.
TETHERD_LIBRARIES = re.compile(r"^(linux-vdso\.so|ld-linux[-\w]*\.so|lib(c|m|stdc\+\+|gcc_s|asound|systemd|yaml-0)\.so)")


def build_dir():
    # make test builds the release (the Swift runtime linked in, as shipped) before the system
    # tests; without one, the debug build the tests run is checked.
    release = REPO / ".build" / "release"
    return release if (release / "tetherd").exists() else BIN


def ldd(path):
    """{library name: resolved path or None} as the dynamic loader would map them."""
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=30, check=True).stdout
    libraries = {}
    for line in out.splitlines():
        fields = line.split()
        if not fields:
            continue
        name = fields[0].rsplit("/", 1)[-1]
        libraries[name] = fields[2] if len(fields) > 2 and fields[1] == "=>" else None
    return libraries


def is_swift_runtime(path):
    # Only a debug build links the Swift runtime as shared libraries, from the toolchain.
    return path is not None and "/swift/linux/" in path


@pytest.mark.parametrize("name", PRODUCTS)
def test_no_foundation_symbols(name):
    binary = build_dir() / name
    assert binary.exists(), f"{binary} is missing: build first"
    result = subprocess.run(["nm", str(binary)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout, f"nm found no symbols in {binary} (stripped?): {result.stderr}"
    patterns = [FOUNDATION_SYMBOL]
    if name != "tether-mock-upstream":
        patterns.append(ESSENTIALS_SYMBOL)
        if binary.parent.name == "release":
            patterns.append(REGEX_SYMBOL)
    pattern = re.compile("|".join(p.pattern for p in patterns))
    found = sorted({line.split()[-1] for line in result.stdout.splitlines() if pattern.search(line)})
    assert not found, f"{binary} links Foundation: {len(found)} symbols, e.g. {found[:5]}"


@pytest.mark.parametrize("name", PRODUCTS)
def test_no_foundation_libraries(name):
    binary = build_dir() / name
    linked = [lib for lib in ldd(binary) if FOUNDATION_LIBRARY.match(lib)]
    assert not linked, f"{binary} loads {linked}"


def test_tetherd_loads_only_the_libraries_it_needs():
    binary = build_dir() / "tetherd"
    libraries = ldd(binary)
    wanted = {lib: path for lib, path in libraries.items() if TETHERD_LIBRARIES.match(lib) or is_swift_runtime(path)}
    theirs = set()
    for lib, path in wanted.items():
        if path and not is_swift_runtime(path):
            theirs |= set(ldd(path))
    unexpected = sorted(set(libraries) - set(wanted) - theirs)
    assert not unexpected, f"{binary} loads {unexpected} (all: {sorted(libraries)})"
    assert "libyaml-0.so.2" in libraries and "libasound.so.2" in libraries and "libsystemd.so.0" in libraries


@pytest.mark.parametrize("name", ["tetherd", "tetherctl"])
def test_the_release_binaries_link_the_cpp_runtime_in(name):
    """The Swift runtime's C++ library comes from libstdc++.a in the release link (Makefile
    LEAN, packaging/static-c++): mapping libstdc++.so.6 cost about 1 MB resident."""
    binary = build_dir() / name
    if binary.parent.name != "release":
        pytest.skip("only the release link (the Swift runtime linked in) does this")
    assert "libstdc++.so.6" not in ldd(binary), sorted(ldd(binary))


def test_the_release_link_lays_out_the_functions_that_run_first():
    """packaging/tetherd.order (make code-order) lists the functions that run, busiest first;
    the release link puts them at the start of .text, together (Makefile LEAN). Names drift as
    the code changes: when too few still exist, the file no longer saves memory and must be
    made again."""
    binary = build_dir() / "tetherd"
    if binary.parent.name != "release":
        pytest.skip("the code order applies to the release link")
    listed = (REPO / "packaging" / "tetherd.order").read_text().split()
    symbols = {}
    for line in subprocess.run(["nm", "--defined-only", str(binary)], capture_output=True, text=True, timeout=120, check=True).stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in "tTwW":
            symbols.setdefault(fields[2], int(fields[0], 16))
    present = [name for name in listed if name in symbols]
    assert len(present) >= 0.75 * len(listed), \
        f"only {len(present)} of the {len(listed)} functions in packaging/tetherd.order exist: run make code-order"
    sections = subprocess.run(["readelf", "-SW", str(binary)], capture_output=True, text=True, timeout=60, check=True).stdout
    text = next(line for line in sections.splitlines() if re.search(r"\]\s+\.text\s", line))
    text_start = int(text.split(".text")[1].split()[1], 16)
    assert symbols[present[0]] - text_start < 64 * 1024, \
        f"the busiest function, {present[0]}, is {symbols[present[0]] - text_start} bytes into .text: the order was not applied"
