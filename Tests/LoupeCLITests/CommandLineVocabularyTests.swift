// The command line speaks one vocabulary: old spellings are aliases of the shared ones, every command's help
// ends with an example of itself, and errors name the real problem under the command's own usage.

import ArgumentParser
import Foundation
import Testing
@testable import loupe

@Suite struct CommandLineVocabularyTests: RunsLoupe {
    /// Every command that runs (not a group of subcommands), with its words from the root: ["train", "mlm"].
    static func leaves(_ root: ParsableCommand.Type = Loupe.self, path: [String] = []) -> [(ParsableCommand.Type, [String])] {
        root.configuration.subcommands.flatMap { sub -> [(ParsableCommand.Type, [String])] in
            let words = path + [sub._commandName]
            return sub.configuration.subcommands.isEmpty ? [(sub, words)] : leaves(sub, path: words)
        }
    }

    @Test func everyCommandShowsAnExampleOfItself() {
        let all = Self.leaves()
        #expect(all.count >= 40, "\(all.map(\.1))")
        for (command, words) in all {
            let help = Loupe.helpMessage(for: command, columns: 10_000)
            let example = help.components(separatedBy: "Example").dropFirst().joined()
            #expect(example.contains("loupe " + words.joined(separator: " ")), "loupe \(words.joined(separator: " ")) has no example of itself:\n\(help)")
            // argument-parser adds "(default: …)" itself; a help text that says it too says it twice.
            for line in help.split(separator: "\n") {
                #expect(line.components(separatedBy: "default:").count <= 2, "\(words): \(line)")
            }
        }
    }

    @Test func oldSpellingsAreAliases() throws {
        for spelling in ["--top", "--top-k"] {
            #expect(try Run.parse(["--prompt", "a", spelling, "3"]).topK == 3)
            #expect(try Lens.parse(["--prompt", "a", spelling, "4"]).topK == 4)
            #expect(try ReportCommand.parse(["--prompt", "a", "--html", "r.html", spelling, "5"]).topK == 5)
        }
        for spelling in ["--html", "--out"] {
            #expect(try ReportCommand.parse(["--prompt", "a", spelling, "r.html"]).out == "r.html")
        }
        for spelling in ["--top", "--pairs"] {
            #expect(try Circuits.parse(["composition", spelling, "7"]).top == 7)
        }
        #expect(try Circuits.parse(["composition"]).top == nil)
        for spelling in ["--text", "--corpus"] {
            #expect(try Eval.parse([spelling, "emma.txt"]).text == "emma.txt")
            #expect(try PCA.parse([spelling, "emma.txt"]).text == "emma.txt")
            #expect(try Neurons.parse(["--layer", "0", spelling, "emma.txt"]).text == "emma.txt")
            #expect(try LensEval.parse([spelling, "emma.txt"]).corpus == ["emma.txt"])
            #expect(try Features.parse(["--sae", "s", spelling, "emma.txt"]).corpus == ["emma.txt"])
        }
        for spelling in ["--tokens", "--max-corpus-tokens"] {
            #expect(try Features.parse(["--sae", "s", spelling, "900"]).maxCorpusTokens == 900)
        }
    }

    /// argument-parser ran the prompt check before it looked for unknown options, so `--promt` read as a
    /// missing prompt.
    @Test func aMisspelledOptionIsNamed() throws {
        let r = try run(["run", "--promt", "Hello"])
        #expect(r.status != 0)
        #expect(r.output.contains("Unknown option '--promt'"), "\(r.output)")
        #expect(!r.output.contains("give exactly one"), "\(r.output)")
        #expect(r.output.contains("Usage: loupe run"), "\(r.output)")
        // When nothing else is wrong, the check's own message stands.
        let missing = try run(["run"])
        #expect(missing.status != 0 && missing.output.contains("give exactly one of --prompt"), "\(missing.output)")
    }

    /// An error found while a command runs comes with that command's usage, not the root's.
    @Test func errorsWhileRunningShowTheCommandsOwnUsage() throws {
        let r = try run(["fill", "--model", "austen", "--prompt", "a [MASK] b"])
        #expect(r.status == 64, "\(r.output)")
        #expect(r.output.contains("Error: ") && r.output.contains("causal"), "\(r.output)")
        #expect(r.output.contains("Usage: loupe fill"), "\(r.output)")
        #expect(r.output.contains("See 'loupe fill --help'"), "\(r.output)")
        #expect(!r.output.contains("loupe <subcommand>"), "\(r.output)")
        let nested = try run(["train", "mlm", "--corpus", "/nonexistent/none.txt", "--out", "/tmp/x", "--init-from", "/nonexistent"])
        #expect(nested.status != 0)
        #expect(!nested.output.contains("loupe <subcommand>"), "\(nested.output)")
    }
}
