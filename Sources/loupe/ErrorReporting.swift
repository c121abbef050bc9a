// How the tool reports a bad command line: the real problem first, and the usage of the command that was run.
//
// argument-parser checks a command's `validate()` before it looks for options nobody declared, so a misspelled
// `--promt` came out as "give exactly one of --prompt or --ids"; and an error thrown from a command's `run()`
// printed the root's usage ("loupe <subcommand>"). `Loupe.main` parses again without the checks when one fails,
// and prints a command's own usage under the errors it throws.

import ArgumentParser
import Foundation

enum ParseChecks {
    /// Off only while parsing a second time to find what else is wrong with a command line.
    nonisolated(unsafe) static var enabled = true
}

extension Loupe {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let command: ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            exit(withError: deeperProblem(in: arguments) ?? error)
        }
        do {
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                var synchronous = command
                try synchronous.run()
            }
        } catch let error as ValidationError {
            FileHandle.standardError.write(Data((usageMessage(error.message, for: type(of: command)) + "\n").utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            exit(withError: error)
        }
    }

    /// A command line that failed a check may also hold an unknown option or a bad value: parsed again
    /// without the checks, that error is the one to report.
    static func deeperProblem(in arguments: [String]) -> Error? {
        ParseChecks.enabled = false
        defer { ParseChecks.enabled = true }
        do { _ = try parseAsRoot(arguments); return nil } catch { return error }
    }

    /// "Error: …", the command's usage, and where its help is — as argument-parser prints parse errors.
    static func usageMessage(_ message: String, for command: ParsableCommand.Type) -> String {
        let names = ([Loupe.self] + path(to: command)).map { $0._commandName }.joined(separator: " ")
        return "Error: \(message)\nUsage: \(usageString(for: command))\n  See '\(names) --help' for more information."
    }

    /// The subcommands from the root down to `command` (empty when it is the root).
    static func path(to command: ParsableCommand.Type, from root: ParsableCommand.Type = Loupe.self) -> [ParsableCommand.Type] {
        for sub in root.configuration.subcommands {
            if sub == command { return [sub] }
            let below = path(to: command, from: sub)
            if !below.isEmpty { return [sub] + below }
        }
        return []
    }
}
