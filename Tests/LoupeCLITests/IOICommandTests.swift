// `loupe ioi`, and `loupe patch` / `loupe path-patch` over the JSON Lines dataset it writes, on the shipped model.

import Foundation
import Testing
@testable import loupe

@Suite(.serialized) struct IOICommandTests: RunsLoupe {
    func jsonObject(_ output: String) throws -> [String: Any] {
        let text = output.split(separator: "\n").drop { !$0.hasPrefix("{") }.joined(separator: "\n")
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func datasetThenPatchingOverIt() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-ioi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("ioi.jsonl").path
        // austen (two layers, trained on novels) does not do IOI: a clear error, after the dataset is written.
        var r = try run(["ioi", "--prompts", "4", "--write-dataset", data])
        #expect(r.status != 0 && r.output.contains("does not do the task") && !r.output.contains("Fatal error"), "\(r.output)")
        let lines = try String(contentsOfFile: data, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 4)
        for line in lines {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
            let (clean, corrupt, answer, wrong) = (o["clean"] ?? "", o["corrupt"] ?? "", o["answer"] ?? "", o["wrong"] ?? "")
            #expect(clean.hasSuffix(" to") && clean.contains(answer) && clean.components(separatedBy: wrong).count == 3, "\(line)")
            #expect(!corrupt.contains(answer) && !corrupt.contains(wrong), "\(line)")
        }

        r = try run(["patch", "--dataset", data, "--hook", "z", "--json"])
        #expect(r.status == 0, "\(r.output)")
        var j = try jsonObject(r.output)
        #expect(j["pairs"] as? Int == 4)
        #expect((j["result"] as? [[Double]])?.count == 2)
        r = try run(["path-patch", "--dataset", data, "--json"])
        #expect(r.status == 0, "\(r.output)")
        j = try jsonObject(r.output)
        #expect(j["pairs"] as? Int == 4 && (j["result"] as? [[Double]])?.count == 2)

        // The templates differ in length: patching by position over them is refused, saying why.
        r = try run(["patch", "--dataset", data, "--hook", "resid_pre"])
        #expect(r.status != 0 && r.output.contains("one length"), "\(r.output)")
        r = try run(["patch", "--dataset", data, "--answer", " Mary"])
        #expect(r.status != 0 && r.output.contains("per line"), "\(r.output)")
        try "{\"clean\": \"a\"}\n".write(toFile: data, atomically: true, encoding: .utf8)
        r = try run(["path-patch", "--dataset", data])
        #expect(r.status != 0 && r.output.contains("line 1"), "\(r.output)")
        #expect(IOI.helpMessage(columns: 10_000).contains("Examples:"))
    }
}
