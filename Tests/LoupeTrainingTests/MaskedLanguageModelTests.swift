// Masked-LM training: BERT's corruption rule, and an encoder trained from scratch on a language where a masked
// token can only be recovered from the token after it — which a bidirectional model learns.

import Foundation
import LoupeModels
import LoupeTensor
import LoupeTraining
import Testing

@Suite struct MaskedLanguageModelTests {
    /// Pairs (a, g(a)): a from {2…6}, g(a) = a + 5 from {7…11}; token 1 is the mask, 0 unused.
    static func stream(_ pairs: Int, seed: UInt64) -> [Int] {
        var rng = SeededGenerator(seed: seed)
        return (0..<pairs).flatMap { _ -> [Int] in let a = 2 + rng.nextInt(5); return [a, a + 5] }
    }

    @Test func corruptionFollowsBERTsRule() throws {
        let task = try MaskedLanguageModelTask(train: Array(repeating: 5, count: 100_000), heldOut: [], maskID: 1,
                                               randomTokens: 2..<12, context: 100, batchSize: 1)
        var rng = SeededGenerator(seed: 3)
        var chosen = 0, masked = 0, kept = 0, total = 0
        for _ in 0..<400 {
            let (tokens, targets) = task.corrupt(Array(repeating: 5, count: 100), rng: &rng)
            total += 100
            for (t, y) in zip(tokens, targets) where y >= 0 {
                chosen += 1
                #expect(y == 5)
                if t == 1 { masked += 1 } else if t == 5 { kept += 1 }
            }
            #expect(zip(tokens, targets).allSatisfy { $1 >= 0 || $0 == 5 }, "an unchosen position changed")
        }
        // 15% chosen; of those 80% masked, 10% random (1 in 10 random draws is the original), 10% kept.
        #expect(abs(Double(chosen) / Double(total) - 0.15) < 0.01)
        #expect(abs(Double(masked) / Double(chosen) - 0.8) < 0.02)
        #expect(abs(Double(kept) / Double(chosen) - 0.11) < 0.02)
    }

    /// BERT's layout, and GPT-2's with attention both ways (`train mlm --layout pre-ln`).
    @Test(arguments: ["bert", "pre-ln"]) func anEncoderLearnsToLookAhead(layout: String) throws {
        let config = layout == "bert"
            ? ModelConfig(architecture: "BertForMaskedLM", nLayers: 2, dModel: 32, nHeads: 4, dHead: 8, dMLP: 64,
                          dVocab: 12, nCtx: 16, eps: 1e-12, activation: .gelu, bidirectional: true,
                          postLayerNorm: true, nTokenTypes: 1, maskedLMHead: true)
            : ModelConfig(architecture: "loupe-mlm", nLayers: 2, dModel: 32, nHeads: 4, dHead: 8, dMLP: 64, dVocab: 12, nCtx: 16,
                          normalization: .layerNorm, activation: .geluNew, bidirectional: true)
        let task = try MaskedLanguageModelTask(train: Self.stream(4000, seed: 1), heldOut: Self.stream(400, seed: 2), maskID: 1,
                                               randomTokens: 2..<12, context: 16, batchSize: 16)
        let settings = TrainingSettings(steps: 1200, seed: 5, optimizer: AdamWConfig(learningRate: 5e-3, totalSteps: 1200, warmupSteps: 50))
        let trainer = try Trainer(config: config, settings: settings)
        let before = try task.evaluate(try trainer.model())
        try trainer.train(task)
        let after = try task.evaluate(try trainer.model())
        // Each masked first element is recoverable only from the token after it; a causal model is at chance
        // (1 in 5) on those, half the masked tokens.
        #expect(before.accuracy < 0.3)
        #expect(after.accuracy > 0.9, "masked accuracy \(after.accuracy) (loss \(after.loss)) after training")
        #expect(after.loss < before.loss / 4)
        #expect(after.masked > 100)
        // A causal model cannot be evaluated as a masked LM.
        let gpt2 = try ModelLoader.load(path: GradFixtures.directory.appendingPathComponent("gpt2-tiny").path).model
        #expect(throws: TrainingError.self) { try task.evaluate(gpt2) }
    }
}
