import Foundation
import LoupeModels
import LoupeTensor
import LoupeTraining
import Testing

/// Gaussian features `[n, d]` of a fixed seed, and the examples labelled by `label(row)`.
func syntheticProbeData(n: Int, d: Int, seed: UInt64, label: ([Float], inout SeededGenerator) -> String) -> (Tensor, [ProbeExample]) {
    var rng = SeededGenerator(seed: seed, stream: 1)
    var xs: [Float] = [], examples: [ProbeExample] = []
    for _ in 0..<n {
        let row = (0..<d).map { _ in rng.nextGaussian() * 3 + 1 }
        xs += row
        examples.append(ProbeExample(text: "x", label: label(row, &rng), position: -1))
    }
    return (Tensor(unchecked: [n, d], xs), examples)
}

@Suite("Linear probes: a linear rule is read (accuracy ≈ 1, R² ≈ 1), a random label is not (≈ chance)")
struct LinearProbeTests {
    let w: [Float] = [0.5, -1, 2, 0.3, 0, 1.5, -0.7, 0.2]

    func dot(_ x: [Float], _ v: [Float]) -> Float { zip(x, v).reduce(0) { $0 + $1.0 * $1.1 } }

    @Test func binaryLinearRuleIsRead() throws {
        let (x, ex) = syntheticProbeData(n: 400, d: 8, seed: 1) { row, _ in dot(row, w) > 1 ? "yes" : "no" }
        let r = try fitProbes(activations: [x], layers: [0], hook: "h", examples: ex, settings: ProbeSettings(kind: .logistic))
        #expect(r.heldOut[0] > 0.95, "held-out accuracy \(r.heldOut[0])")
        #expect(r.classes == ["no", "yes"] && r.heldOutCount == 100 && r.trainCount == 300)
    }

    @Test func multiclassLinearRuleIsRead() throws {
        let ws: [[Float]] = [w, w.reversed(), w.map { -$0 }]
        let (x, ex) = syntheticProbeData(n: 600, d: 8, seed: 2) { row, _ in
            let s = ws.map { dot(row, $0) }
            return ["a", "b", "c"][s.indices.max { s[$0] < s[$1] }!]
        }
        let r = try fitProbes(activations: [x], layers: [0], hook: "h", examples: ex, settings: ProbeSettings(kind: .logistic))
        #expect(r.heldOut[0] > 0.9, "held-out accuracy \(r.heldOut[0])")
        #expect(r.classes.count == 3)
    }

    @Test func randomLabelIsChance() throws {
        let (x, ex) = syntheticProbeData(n: 400, d: 8, seed: 3) { _, rng in rng.nextInt(2) == 0 ? "yes" : "no" }
        let r = try fitProbes(activations: [x], layers: [0], hook: "h", examples: ex, settings: ProbeSettings(kind: .logistic))
        // 100 held-out coin flips: chance is 0.5 ± 0.05; a probe that memorized noise would not generalize.
        #expect(r.heldOut[0] < 0.65, "held-out accuracy \(r.heldOut[0]) on a random label")
    }

    @Test func ridgeReadsALinearValueNotNoise() throws {
        let (x, ex) = syntheticProbeData(n: 300, d: 8, seed: 4) { row, rng in String(dot(row, w) + 0.1 * rng.nextGaussian()) }
        let r = try fitProbes(activations: [x], layers: [0], hook: "h", examples: ex, settings: ProbeSettings(kind: .linear))
        #expect(r.heldOut[0] > 0.98, "held-out R² \(r.heldOut[0])")
        let (x2, noise) = syntheticProbeData(n: 300, d: 8, seed: 5) { _, rng in String(rng.nextGaussian()) }
        let r2 = try fitProbes(activations: [x2], layers: [0], hook: "h", examples: noise, settings: ProbeSettings(kind: .linear))
        #expect(r2.heldOut[0] < 0.1, "held-out R² \(r2.heldOut[0]) on noise")
    }

    @Test func activationsAreTheCachedOnes() throws {
        let model = try TinyGPT2.model()
        let tokens = [[464, 3290, 318], [1332, 286, 262, 995, 11]]
        let acts = try model.probeActivations(tokens: tokens, positions: [0, -2], layers: [1], hook: { .residPost($0) })
        let (_, cache) = try model.runWithCache(.tokens([tokens[1]]), select: .names([.residPost(1)]))
        let d = model.config.dModel
        #expect(Array(acts[0].scalars[d..<(2 * d)]) == Array(cache[.residPost(1)]!.scalars[(3 * d)..<(4 * d)]))
        #expect(throws: ProbeError.invalid("example 1: position 3 is outside its 3 tokens (0..<3, or −3…−1 from the end)")) {
            try model.probeActivations(tokens: [tokens[0]], positions: [3], layers: [0], hook: { .residPost($0) })
        }
    }

    @Test(arguments: [
        ("{\"text\": \"a\", \"label\": 1}", "expected \"position\": an integer token index (negative counts from the end), found nothing"),
        ("{\"text\": \"a\", \"label\": 1, \"position\": 1.5}", "expected \"position\": an integer token index (negative counts from the end), found 1.5"),
        ("{\"text\": \"\", \"label\": 1, \"position\": 0}", "expected \"text\": a non-empty string"),
        ("{\"text\": \"a\", \"position\": 0}", "expected \"label\": a string, number or boolean"),
        ("[1, 2]", "expected a JSON object like {\"text\": \"…\", \"label\": …, \"position\": -1}"),
    ])
    func badLinesAreNamed(line: String, reason: String) throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("probe-\(UUID()).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        try "{\"text\": \"ok\", \"label\": true, \"position\": -1}\n\n\(line)\n".write(to: url, atomically: true, encoding: .utf8)
        #expect(throws: ProbeError.badLine(path: url.path, line: 3, reason: reason)) { try loadProbeDataset(path: url.path) }
    }

    @Test func labelsOfEveryType() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("probe-\(UUID()).jsonl")
        defer { try? FileManager.default.removeItem(at: url) }
        try """
            {"text": "a", "label": true, "position": -1}
            {"text": "b", "label": 2.5, "position": 0}
            {"text": "c", "label": "plural", "position": 2}
            """.write(to: url, atomically: true, encoding: .utf8)
        let ex = try loadProbeDataset(path: url.path)
        #expect(ex.map(\.label) == ["true", "2.5", "plural"])
        #expect(ex.map(\.value) == [1, 2.5, nil])
        #expect(ex.map(\.position) == [-1, 0, 2])
        #expect(throws: ProbeError.self) {
            try fitProbes(activations: [Tensor(zeros: [3, 2])], layers: [0], hook: "h", examples: ex, settings: ProbeSettings(kind: .linear))
        }
    }
}
