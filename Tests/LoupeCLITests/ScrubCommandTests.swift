// `loupe scrub` on the shipped model: the built-in hypotheses, a hypothesis file, and bad input.

import Foundation
import Testing
@testable import loupe

@Suite(.serialized) struct ScrubCommandTests: RunsLoupe {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func scrub(_ hypothesis: String, _ extra: [String] = []) throws -> [String: Any] {
        let r = try run(["scrub", "--hypothesis", hypothesis, "--sequences", "6", "--length", "12", "--json"] + extra)
        #expect(r.status == 0, "\(r.output)")
        let text = r.output.split(separator: "\n").drop { !$0.hasPrefix("{") }.joined(separator: "\n")
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func builtInHypothesesAndAFile() throws {
        let full = try scrub("full")
        let model = try #require(full["model_loss"] as? Double), none = try #require(full["fully_scrubbed_loss"] as? Double)
        #expect(abs((full["scrubbed_loss"] as? Double ?? 0) - model) < 1e-4)
        #expect(abs((full["loss_recovered"] as? Double ?? 0) - 1) < 1e-3)
        #expect(none > model + 1, "sampled text repeated: the model predicts the repeat far better than another sequence's logits")
        #expect(full["tokens_per_sequence"] as? Int == 24 && full["scored_from"] as? Int == 12)

        let empty = try scrub("none")
        #expect(empty["loss_recovered"] as? Double == 0)

        // The textbook story, and the one through MLP 0 that docs/hypotheses holds for austen (README).
        let textbook = try scrub("induction")
        #expect((textbook["description"] as? String)?.contains("L0H1") == true, "\(textbook)")
        #expect(textbook["rest"] as? String == "kept")
        let viaMLP = try scrub(Self.root.appendingPathComponent("docs/hypotheses/austen-induction-mlp0.json").path)
        let t = try #require(textbook["loss_recovered"] as? Double), m = try #require(viaMLP["loss_recovered"] as? Double)
        #expect(t > 0.2 && t < 0.9, "\(t)")
        #expect(m > 0.9 && m > t, "\(m) vs \(t)")
    }

    @Test func badHypothesesAreClearErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-scrub-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("h.json").path
        for (json, says) in [(#"{"name": "h", "edge": []}"#, "unknown key"),
                             (#"{"name": "h", "edges": [{"from": "L5H0", "to": "logits"}]}"#, "layer"),
                             (#"{"name": "h", "edges": [{"from": "embed", "to": "L1H5.z"}]}"#, "is not logits"),
                             (#"{"name": "h", "edges": [{"from": "L1H5", "to": "L0H1.q"}]}"#, "cannot reach")] {
            try json.write(toFile: file, atomically: true, encoding: .utf8)
            let r = try run(["scrub", "--hypothesis", file, "--sequences", "2", "--length", "4"])
            #expect(r.status != 0 && r.output.contains(says) && !r.output.contains("Fatal error"), "\(json): \(r.output)")
        }
        var r = try run(["scrub", "--hypothesis", "inductoin"])
        #expect(r.status != 0 && r.output.contains("full, none, induction or a JSON file"), "\(r.output)")
        r = try run(["scrub", "--hypothesis", "full", "--sequences", "1"])
        #expect(r.status != 0 && r.output.contains("at least 2"), "\(r.output)")
        r = try run(["scrub", "--hypothesis", "full", "--repeat"])
        #expect(r.status != 0 && r.output.contains("--text"), "\(r.output)")
        #expect(Scrub.helpMessage(columns: 10_000).contains("Examples:"))
    }
}
