/// `tetherctl --socket P status` as well as `tetherctl status --socket P`, as systemctl, docker
/// and kubectl take their global options. ArgumentParser reads options only after the
/// subcommand that declares them, so the global ones (`--socket`, `--json`, `--timeout`, which
/// every subcommand declares through `Connection`) that come before the subcommand are moved
/// behind it; everything else keeps its order.
enum GlobalOptions {
    /// Options that take a value, and flags.
    static let valued: Set<String> = ["--socket", "--timeout"]
    static let flags: Set<String> = ["--json"]

    static func movedBehindSubcommand(_ arguments: [String]) -> [String] {
        var hoisted: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = argument.split(separator: "=", maxSplits: 1).first.map(String.init) ?? argument
            if flags.contains(argument) || (valued.contains(name) && argument.contains("=")) {
                hoisted.append(argument)
                index += 1
            } else if valued.contains(argument) {
                hoisted.append(argument)
                if index + 1 < arguments.count { hoisted.append(arguments[index + 1]) }
                index += 2
            } else {
                break  // the subcommand (or --help, --version, or something ArgumentParser will explain)
            }
        }
        guard !hoisted.isEmpty, index < arguments.count, !arguments[index].hasPrefix("-") else { return arguments }
        // Behind the subcommand's own arguments would be read as positional values after `--`;
        // right behind the subcommand name they are options of it.
        return [arguments[index]] + hoisted + arguments[(index + 1)...]
    }
}
