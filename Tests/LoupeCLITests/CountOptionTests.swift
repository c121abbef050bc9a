// Every count or size option refuses a negative (or, for sizes, zero) value when the command line is parsed,
// in both spellings: `--top -1` and `--top=-1` (the second once reached a SIGSEGV in `neurons`).

import ArgumentParser
import Testing
@testable import loupe

@Suite struct CountOptionTests {
    /// The commands the reliability campaign crashed with, and a size from each family of commands.
    static let refused: [[String]] = [
        ["neurons", "--layer", "0", "--top=-1"],
        ["neurons", "--layer", "0", "--top", "-1"],
        ["neurons", "--layer=-1"],
        ["neurons", "--layer", "-1"],
        ["generate", "--prompt", "a", "--max-tokens", "-5"],
        ["circuits", "composition", "--pairs", "-1"],
        ["attribute", "--prompt", "a", "--answer", "b", "--top=-1"],
        ["circuits", "composition", "--pairs=-1"],
        ["features", "--sae", "s", "--corpus", "c", "--count=-1"],
        ["neuron-index", "--layer", "0", "--corpus", "c", "--db", "d", "--k=0"],
        ["neuron-index", "--layer", "0", "--corpus", "c", "--db", "d", "--window=-128"],
        ["generate", "--prompt", "a", "--max-tokens=-5"],
        ["run", "--prompt", "a", "--top-k=-1"],
        ["run", "--prompt", "a", "--threads=0"],
        ["eval", "--text", "t", "--chars=-1"],
        ["train", "sae", "--hook", "blocks.0.hook_resid_post", "--corpus", "c", "--out", "o", "--batch=0"],
        ["train", "lm", "--corpus", "c", "--out", "o", "--d-model=-192"],
        ["serve", "--max-jobs=0"],
        ["trace", "--prompt", "a", "--subject", "a", "--samples=-1"],
        ["heads", "--length=-60"],
        ["hooks", "--pos=0"],
    ]

    @Test(arguments: refused)
    func negativeCountsAreRefused(_ args: [String]) {
        do {
            let command = try Loupe.parseAsRoot(args)
            Issue.record("\(args) parsed as \(type(of: command))")
        } catch {
            let message = Loupe.message(for: error)
            // Count options take the next word whatever it looks like, so `--top -1` reaches the check as
            // `--top=-1` does (argument-parser would otherwise read "-1" as an option and say a value is missing).
            #expect(message.contains("expected a count of 0 or more") || message.contains("expected a size of 1 or more"),
                    "\(args): \(message)")
        }
    }

    @Test func validCountsStillParse() throws {
        let command = try Loupe.parseAsRoot(["neurons", "--layer", "1", "--top", "0"])
        #expect(command is Neurons)
        #expect((command as? Neurons)?.top == 0)
        do {
            _ = try Loupe.parseAsRoot(["neurons", "--layer", "1", "--top", "five"])
            Issue.record("--top five parsed")
        } catch {
            #expect(Loupe.message(for: error).contains("expected a whole number, found \"five\""))
        }
        // The word after a count option is its value, even one spelled like an option.
        do {
            _ = try Loupe.parseAsRoot(["neurons", "--layer", "1", "--top", "--json"])
            Issue.record("--top --json parsed")
        } catch {
            #expect(Loupe.message(for: error).contains("expected a whole number, found \"--json\""))
        }
    }
}
