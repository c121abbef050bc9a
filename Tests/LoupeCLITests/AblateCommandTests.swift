// `loupe ablate` end to end on the shipped model: one site over a dataset, every head, and bad requests.

import Foundation
import Testing
@testable import loupe

@Suite(.serialized) struct AblateCommandTests: RunsLoupe {
    func jsonObject(_ output: String) throws -> [String: Any] {
        let text = output.split(separator: "\n").drop { !$0.hasPrefix("{") }.joined(separator: "\n")
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func ablatesOverADatasetAndEveryHead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-ablate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("ds.jsonl")
        try """
            {"prompt": "Mr. Darcy was the friend of Mr.", "answer": " Bingley", "wrong": " Darcy"}
            {"prompt": "Mr. Wickham was the enemy of Mr.", "answer": " Darcy", "wrong": " Wickham"}
            """.write(to: data, atomically: true, encoding: .utf8)
        var r = try run(["ablate", "--dataset", data.path, "--hook", "blocks.0.hook_mlp_out", "--position", "-1", "--kind", "mean", "--json"])
        #expect(r.status == 0, "\(r.output)")
        var j = try jsonObject(r.output)
        let clean = try #require(j["clean"] as? [Double]), ablated = try #require(j["ablated"] as? [Double])
        #expect(clean.count == 2 && ablated.count == 2 && clean != ablated)
        #expect(abs((j["mean_clean"] as? Double ?? 0) - (clean[0] + clean[1]) / 2) < 1e-4)

        r = try run(["ablate", "--prompt", "Mr. Darcy was the friend of Mr.", "--answer", " Bingley", "--wrong", " Darcy", "--heads", "--json"])
        #expect(r.status == 0, "\(r.output)")
        j = try jsonObject(r.output)
        let grid = try #require(j["ablated"] as? [[Double]])
        #expect(grid.count == 2 && grid.allSatisfy { $0.count == 6 })
        // The grid's cell equals the single-site run of that head.
        r = try run(["ablate", "--prompt", "Mr. Darcy was the friend of Mr.", "--answer", " Bingley", "--wrong", " Darcy",
                     "--hook", "blocks.1.attn.hook_z", "--head", "5", "--json"])
        let single = try #require((try jsonObject(r.output)["ablated"] as? [Double])?.first)
        #expect(abs(single - grid[1][5]) < 1e-5)
    }

    @Test func badRequestsSayWhatIsWrong() throws {
        var r = try run(["ablate", "--prompt", "Mr. Darcy was", "--answer", " Bingley", "--wrong", " Darcy", "--hook", "blocks.9.attn.hook_z"])
        #expect(r.status != 0 && !r.output.contains("Fatal error"), "\(r.output)")
        r = try run(["ablate", "--prompt", "Mr. Darcy was", "--answer", " Bingley", "--wrong", " Darcy", "--hook", "blocks.0.attn.hook_z", "--head", "6"])
        #expect(r.status != 0 && r.output.contains("head 6 is out of range"), "\(r.output)")
        r = try run(["ablate", "--prompt", "Mr. Darcy was", "--answer", " Bingley", "--hook", "blocks.0.attn.hook_z"])
        #expect(r.status != 0 && r.output.contains("wrong"), "\(r.output)")
        r = try run(["ablate", "--prompt", "Mr. Darcy was", "--answer", " Bingley", "--wrong", " Darcy", "--hook", "blocks.0.attn.hook_z", "--kind", "resample"])
        #expect(r.status != 0 && r.output.contains("two prompts"), "\(r.output)")
        #expect(Ablate.helpMessage(columns: 10_000).contains("Examples:"))
    }
}
