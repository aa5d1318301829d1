// swift-tools-version:6.2
import PackageDescription

// tether: a realtime voice link for headless robots.
// TetherCore holds pure, clock-injected decision logic; TetherLinux does the I/O around it;
// the executables only parse arguments, wire services and run.
let package = Package(
    name: "tether",
    products: [
        .executable(name: "tetherd", targets: ["tetherd"]),
        .executable(name: "tetherctl", targets: ["tetherctl"]),
        .executable(name: "tether-mock-upstream", targets: ["tether-mock-upstream"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
    ],
    targets: [
        .systemLibrary(name: "CAlsa", path: "Sources/CAlsa", pkgConfig: "alsa",
                       providers: [.apt(["libasound2-dev"])]),
        .systemLibrary(name: "CSystemd", path: "Sources/CSystemd", pkgConfig: "libsystemd",
                       providers: [.apt(["libsystemd-dev"])]),
        // libyaml, the reference C parser: TetherCore builds its own document tree from its
        // events, so no YAML library (and no Foundation behind one) is linked into the binaries.

        .systemLibrary(name: "CLibYAML", path: "Sources/CLibYAML", pkgConfig: "yaml-0.1",
                       providers: [.apt(["libyaml-dev"])]),
        // libcurl is loaded with dlopen on first use (see Sources/CCurl/include/tether_curl.h),
        // so this is a C target over its header (libcurl4-openssl-dev), not a link dependency.
        .target(name: "CCurl", path: "Sources/CCurl"),
        // speexdsp (echo: cancel), vendored and compiled in rather than loaded from Debian's
        // libspeexdsp1: clang vectorises its filter loops (Debian's gcc -O2 build does not), and
        // the canceller cost about 40% less CPU than the same code from the package even before
        // it ran on tether's FFT (docs/BENCHMARKS.md, "Echo cancellation"); and a robot needs no
        // extra package for it.
        // -O2 in debug builds too, so the tests' canceller runs at the robot's speed. Floating
        // point; only the canceller, preprocessor and resampler. Its FFTs are tether's own
        // (tether/, include/tether_fft.h says why) behind speexdsp's fftwrap.h, with speexdsp's
        // smallft for sizes tether's does not take. EXPORT is what its configure would define
        // (nothing: tetherd exports none).
        .target(name: "CSpeexDSP", path: "Sources/CSpeexDSP", exclude: ["speexdsp/fftwrap.c", "speexdsp/COPYING"],
                cSettings: [.define("FLOATING_POINT"), .define("EXPORT", to: ""),
                            .unsafeFlags(["-O2", "-w"])]),
        .target(
            name: "TetherCore",
            dependencies: [
                "CLibYAML",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "OrderedCollections", package: "swift-collections"),
            ]
        ),
        .target(
            name: "TetherLinux",
            dependencies: [
                "TetherCore", "CAlsa", "CSystemd", "CCurl", "CSpeexDSP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "tetherd",
            dependencies: [
                "TetherCore", "TetherLinux",
            ]
        ),
        .executableTarget(
            name: "tetherctl",
            dependencies: ["TetherCore"]
        ),
        // The product binaries parse their command lines with TetherCore's CommandSpec (see why
        // there); the mock, a test and demo tool, keeps swift-argument-parser.
        .executableTarget(
            name: "tether-mock-upstream",
            dependencies: [
                "TetherCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "TetherCoreTests", dependencies: ["TetherCore"]),
        .testTarget(
            name: "TetherLinuxTests",
            dependencies: [
                "TetherLinux", "TetherCore", "CSpeexDSP",
                // EmbeddedChannel tests of the WebSocket layer and the control connection: milliseconds, no sockets.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
