// Generation under hooks goes through the KV cache, yet continues exactly as rerunning the whole sequence
// under the same hooks each token would; and the hooks see every position once, with its uncached value.

import Foundation
import LoupeModels
import LoupeTensor
import Testing

/// Attention rows a hook has seen, by absolute query position (thread-safe: hooks are `@Sendable`).
final class SeenRows: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var rows: [Int: [Float]] = [:]   // position → [head][key] flattened over the keys seen
    private(set) var visits = 0

    func record(_ pattern: Tensor) {
        // [1, heads, q, k]: the q rows are the last q of k positions.
        let (h, q, k) = (pattern.shape[1], pattern.shape[2], pattern.shape[3])
        lock.lock(); defer { lock.unlock() }
        for i in 0..<q {
            let position = k - q + i
            #expect(rows[position] == nil, "position \(position) seen twice")
            var row: [Float] = []
            for head in 0..<h {
                let start = (head * q + i) * k
                row += pattern.scalars[start..<(start + position + 1)]
            }
            rows[position] = row
        }
        visits += 1
    }
}

@Suite struct HookedGenerationTests {
    static let llamaTiny = Fixtures.directory.appendingPathComponent("llama-tiny")

    @Test(arguments: ["gpt2", "llama"])
    func cachedHookedGenerationEqualsRerunning(_ family: String) throws {
        let model = family == "gpt2" ? try Fixtures.model() : try ModelLoader.load(path: Self.llamaTiny.path).model
        var rng = SeededGenerator(seed: 7)
        let d = model.config.dModel
        let direction = try Tensor(shape: [d], scalars: (0..<d).map { _ in Float.random(in: -3...3, using: &rng) })
        let steering: Hooks = [
            .residPre(1): Hooks.add(direction),
            .z(0): { z, _ in z[.all, .all, 1] = 0 },
        ]
        let prompt = [5, 17, 42, 7, 99, 3]
        let steps = 8

        // Rerunning the whole sequence under the hooks for each new token.
        var tokens = prompt
        for _ in 0..<steps {
            let logits = try model.run(.tokens([tokens]), hooks: steering)
            let v = model.config.dVocab, last = logits.scalars[(logits.count - v)...]
            tokens.append(last.indices.max { last[$0] < last[$1] }! - last.startIndex)
        }
        let unhooked = try model.generate(prompt: prompt, maxTokens: steps)

        let seen = SeenRows()
        var hooks = steering
        hooks.add(.pattern(1)) { p, _ in seen.record(p) }
        let generated = try model.generate(prompt: prompt, maxTokens: steps, hooks: hooks)
        #expect(generated == Array(tokens[prompt.count...]))
        #expect(generated != unhooked, "the steering must change the continuation for the test to mean anything")
        #expect(seen.visits == steps, "one prompt pass and one step per new token but the last")

        // Every position the cached run computed, once, with the value of one uncached run.
        let full = try model.runWithCache(.tokens([Array(tokens.dropLast())]), select: .names([.pattern(1)]), hooks: steering).1
        let pattern = try #require(full[.pattern(1)])
        let (h, n) = (pattern.shape[1], pattern.shape[2])
        #expect(Set(seen.rows.keys) == Set(0..<n))
        var worst: Float = 0
        for position in 0..<n {
            let row = try #require(seen.rows[position])
            for head in 0..<h {
                for key in 0...position {
                    let want = pattern.scalars[(head * n + position) * n + key]
                    worst = max(worst, abs(row[head * (position + 1) + key] - want))
                }
            }
        }
        #expect(worst < 1e-5, "attention rows differ by \(worst)")
    }
}
