// `loupe edit` end to end on the shipped model: statistics from `loupe activation-stats`, the edit, its
// evaluation, and a written folder that loads back and gives the probabilities the evaluation reported.

import Foundation
import LoupeFormats
import LoupeModels
import Testing
@testable import loupe

@Suite(.serialized) struct EditCommandTests: RunsLoupe {
    static let prompt = "Mr. Darcy was the friend of Mr."

    func folder() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-edit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Key statistics of layer 0 over ~40k characters of Emma.
    func statistics(in dir: URL) throws -> String {
        let emma = try readUTF8Text(path: ShardedJobTests.root.deletingLastPathComponent().appendingPathComponent("shared/data/corpora/austen/emma.txt").path)
        let text = dir.appendingPathComponent("emma.txt")
        try String(emma.prefix(40_000)).write(to: text, atomically: true, encoding: .utf8)
        let stats = dir.appendingPathComponent("keys-0.safetensors").path
        let r = try run(["activation-stats", "--hook", "blocks.0.mlp.hook_post", "--corpus", text.path, "--out", stats])
        #expect(r.status == 0, "\(r.output)")
        return stats
    }

    @Test func editsEvaluatesAndWritesAModelThatLoadsBack() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let stats = try statistics(in: dir)
        let out = dir.appendingPathComponent("edited").path
        let r = try run(["edit", "--prompt", Self.prompt, "--subject", "Mr. Darcy", "--target", "Knightley", "--layer", "0",
                         "--stats", stats, "--steps", "30", "--contexts", "3x2", "--generate", "0",
                         "--neighbour", "Mr. Wickham was the friend of Mr.", "--json", "--out", out])
        #expect(r.status == 0, "\(r.output)")
        let json = try #require(r.output.split(separator: "\n").drop { !$0.hasPrefix("{") }.joined(separator: "\n").data(using: .utf8))
        let top = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(top["method"] as? String == "rome" && top["layers"] as? [Int] == [0])
        let j = try #require((top["facts"] as? [[String: Any]])?.first)
        #expect(j["subject_token"] as? String == " Darcy" && j["target"] as? String == " Knightley")
        #expect((j["contexts"] as? [String])?.count == 3)
        let steps = try #require(j["steps"] as? [[String: Any]])
        let (first, last) = (try #require(steps.first?["loss"] as? Double), try #require(steps.last?["loss"] as? Double))
        #expect(last < first, "the v* loss fell: \(first) → \(last)")
        let evaluation = try #require(j["evaluation"] as? [String: Any])
        let probes = try #require(evaluation["probes"] as? [[String: Any]])
        let rewrite = try #require(probes.first { $0["kind"] as? String == "rewrite" })
        let (before, after) = (try #require(rewrite["targetBefore"] as? Double), try #require(rewrite["targetAfter"] as? Double))
        #expect(after > before)

        // The written model gives the probability the evaluation reported; only blocks.0.mlp.W_out changed.
        let edited = try ModelLoader.load(path: out).model
        let original = try ModelLoader.load(path: try #require(ModelRegistry.shippedPath("austen"))).model
        let target = try edited.singleToken(" Knightley")
        let logits = try edited.run([try edited.toTokens(Self.prompt)])
        let v = edited.config.dVocab
        let row = Array(logits.scalars.suffix(v))
        let m = row.max() ?? 0
        let p = exp(Double(row[target] - m)) / row.reduce(0.0) { $0 + exp(Double($1 - m)) }
        #expect(abs(p - after) < 1e-3 * max(1, after), "written model P = \(p), reported \(after)")
        #expect(edited.weights.blocks[0].wOut != original.weights.blocks[0].wOut)
        #expect(edited.weights.blocks[0].wIn == original.weights.blocks[0].wIn)
        #expect(edited.weights.blocks[1] == original.weights.blocks[1])
    }

    /// MEMIT: two facts from a JSON Lines file, written together; the written model gives what was reported.
    @Test func writesSeveralFactsWithMEMIT() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let stats = try statistics(in: dir)
        let facts = dir.appendingPathComponent("facts.jsonl")
        try """
            {"prompt": "Mr. Darcy was the friend of Mr.", "subject": "Mr. Darcy", "target": "Knightley", "neighbours": ["Mr. Wickham was the friend of Mr."]}
            {"prompt": "Miss Bennet was the sister of Miss", "subject": "Miss Bennet", "target": "Woodhouse"}

            """.write(to: facts, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("edited").path
        let r = try run(["edit", "--facts", facts.path, "--layers", "0-0", "--stats", stats, "--steps", "30", "--contexts", "3x2",
                         "--generate", "0", "--json", "--out", out])
        #expect(r.status == 0, "\(r.output)")
        let json = try #require(r.output.split(separator: "\n").drop { !$0.hasPrefix("{") }.joined(separator: "\n").data(using: .utf8))
        let top = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(top["method"] as? String == "memit")
        let reported = try #require(top["facts"] as? [[String: Any]])
        #expect(reported.map { $0["target"] as? String } == [" Knightley", " Woodhouse"])
        let edited = try ModelLoader.load(path: out).model
        for (fact, prompt) in zip(reported, [Self.prompt, "Miss Bennet was the sister of Miss"]) {
            let probes = try #require((fact["evaluation"] as? [String: Any])?["probes"] as? [[String: Any]])
            let after = try #require(probes.first?["targetAfter"] as? Double)
            let target = try #require(fact["target_token"] as? Int)
            let row = Array(try edited.run([try edited.toTokens(prompt)]).scalars.suffix(edited.config.dVocab))
            let m = row.max() ?? 0
            let p = exp(Double(row[target] - m)) / row.reduce(0.0) { $0 + exp(Double($1 - m)) }
            #expect(abs(p - after) < 1e-3 * max(1, after), "written model P = \(p), reported \(after)")
            #expect(after > (probes.first?["targetBefore"] as? Double ?? 1))
        }
        // Several facts need MEMIT's layers; a malformed line is named.
        var bad = try run(["edit", "--facts", facts.path, "--no-second-moment"])
        #expect(bad.status != 0 && bad.output.contains("--layers"), "\(bad.output)")
        try "{\"prompt\": \"x\"}\n".write(to: facts, atomically: true, encoding: .utf8)
        bad = try run(["edit", "--facts", facts.path, "--layers", "0-0", "--no-second-moment"])
        #expect(bad.status != 0 && bad.output.contains("line 1"), "\(bad.output)")
    }

    @Test func badRequestsSayWhatIsWrong() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(at: dir) }
        var r = try run(["edit", "--prompt", Self.prompt, "--subject", "Mr. Knightley", "--target", "Bingley", "--no-second-moment"])
        #expect(r.status != 0 && r.output.contains("does not occur in the prompt"), "\(r.output)")
        r = try run(["edit", "--prompt", Self.prompt, "--subject", "Mr. Darcy", "--target", "Bingley"])
        #expect(r.status != 0 && r.output.contains("loupe activation-stats") && r.output.contains("blocks.0.mlp.hook_post"), "\(r.output)")
        r = try run(["edit", "--prompt", Self.prompt, "--subject", "Mr. Darcy", "--target", "Bingley and Wickham", "--no-second-moment"])
        #expect(r.status != 0 && r.output.contains("tokens"), "\(r.output)")
        r = try run(["edit", "--prompt", Self.prompt, "--subject", "Mr. Darcy", "--target", "Bingley", "--layer", "7", "--no-second-moment"])
        #expect(r.status != 0 && r.output.contains("out of range"), "\(r.output)")
        let missing = dir.appendingPathComponent("none.safetensors").path
        r = try run(["edit", "--prompt", Self.prompt, "--subject", "Mr. Darcy", "--target", "Bingley", "--stats", missing])
        #expect(r.status != 0 && r.output.contains("none.safetensors"), "\(r.output)")
        #expect(!r.output.contains("Fatal error"))
    }

    @Test func helpShowsAnExample() {
        let help = Edit.helpMessage(columns: 10_000)
        #expect(help.contains("Example:") && help.contains("loupe activation-stats"))
    }
}
