import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

/// The committed fixtures (made by scripts/make_fixtures.py with the peer and the numpy reference).
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let gpt2Tiny = directory.appendingPathComponent("gpt2-tiny")

    static func model() throws -> HookedTransformer {
        let configPath = gpt2Tiny.appendingPathComponent("config.json").path
        let data = try #require(FileManager.default.contents(atPath: configPath), "fixture missing: \(configPath)")
        let config = try GPT2.config(fromJSON: data, path: configPath)
        let file = try SafetensorsFile(path: gpt2Tiny.appendingPathComponent("model.safetensors").path)
        return try HookedTransformer(config: config, weights: GPT2.weights(from: file, config: config))
    }

    static func expected() throws -> SafetensorsFile {
        try SafetensorsFile(path: directory.appendingPathComponent("gpt2-tiny-expected.safetensors").path)
    }

    struct Meta: Decodable {
        let ids16: [Int]
        let ids8: [Int]
        let padded_tokens: [[Int]]
        let padded_mask: [[Int]]
        let greedy12: [Int]
    }

    static func meta() throws -> Meta {
        let data = try Data(contentsOf: directory.appendingPathComponent("gpt2-tiny-expected.json"))
        return try JSONDecoder().decode(Meta.self, from: data)
    }
}

/// Compares logits `[..., d_vocab]` with a fixture's `.head` (first 1024 columns) and `.lse` (logsumexp).
func expectLogits(_ logits: Tensor, _ expected: SafetensorsFile, _ key: String, tolerance: Float = 1e-4,
                  sourceLocation: SourceLocation = #_sourceLocation) throws {
    let head = try expected.tensor(key + ".head")
    let lse = try expected.tensor(key + ".lse")
    let v = logits.shape.last ?? 0
    let rows = logits.count / v
    let width = head.shape.last ?? 0
    var headDiff: Float = 0, lseDiff: Float = 0
    for r in 0..<rows {
        let row = Array(logits.scalars[(r * v)..<((r + 1) * v)])
        for j in 0..<width { headDiff = max(headDiff, abs(row[j] - head.scalars[r * width + j])) }
        let m = row.max() ?? 0
        let s = row.reduce(0.0) { $0 + exp(Double($1 - m)) }
        lseDiff = max(lseDiff, abs(Float(Double(m) + log(s)) - lse.scalars[r]))
    }
    #expect(Array(logits.shape.dropLast()) == Array(head.shape.dropLast()), "\(key): shape \(logits.shape) vs \(head.shape)",
            sourceLocation: sourceLocation)
    #expect(headDiff <= tolerance, "\(key): max logit difference \(headDiff)", sourceLocation: sourceLocation)
    #expect(lseDiff <= tolerance, "\(key): max logsumexp difference \(lseDiff)", sourceLocation: sourceLocation)
}
