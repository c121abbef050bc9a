import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeTensor
import LoupeTraining
import Testing

/// The model that ships inside Loupe (made by `loupe train lm`, see docs/training.md): it must load with no
/// download, model English better than any unigram model on held-out Austen, and have induction heads.
@Suite("The shipped Austen model")
struct ShippedModelTests {
    static func load() throws -> LoadedModel {
        let path = try #require(ModelRegistry.shippedPath(ModelRegistry.defaultModel), "the shipped model is missing from the bundle")
        return try ModelLoader.load(path: path)
    }

    @Test func loadsOfflineAndPredictsHeldOutText() throws {
        #expect(try ModelRegistry.resolve(ModelRegistry.defaultModel) == ModelRegistry.shippedPath(ModelRegistry.defaultModel))
        let loaded = try Self.load()
        let tokenizer = try loaded.requireTokenizer()
        #expect(loaded.model.config.dVocab == 4096)
        // The last tenth of each novel was held out from training: take the tail of Emma.
        let emma = try readUTF8Text(path: Self.sharedRoot() + "/data/corpora/austen/emma.txt")
        let tail = String(emma.suffix(6000))
        let ids = Array(tokenizer.encode(tail).suffix(1024))
        let loss = try LanguageModelTask.meanLoss(loaded.model, stream: ids, context: 256)
        // Uniform over 4,096 tokens is 8.3 nats; the unigram entropy of this text is about 6.
        #expect(loss < 5.0, "held-out loss \(loss)")
    }

    /// A held-out passage read twice: layer 1 attends from each token of the repeat to the token after its
    /// first occurrence (an induction head), and the repeat is far easier to predict. `loupe heads` shows it.
    @Test func hasInductionHeads() throws {
        let loaded = try Self.load()
        let model = loaded.model
        let emma = try readUTF8Text(path: Self.sharedRoot() + "/data/corpora/austen/emma.txt")
        let passage = Array(try loaded.requireTokenizer().encode(String(emma.suffix(3000))).prefix(48))
        let tokens = passage + passage
        let scores = try #require(try model.detectHeads(tokens: tokens, patterns: [.induction])[.induction])
        let layer1 = Array(scores.scalars[model.config.nHeads...])
        #expect((layer1.max() ?? 0) > 0.3, "induction scores of layer 1: \(layer1)")
        let logProbs = try model.run(tokens).logSoftmax()
        let v = model.config.dVocab, n = passage.count
        func meanLoss(_ range: Range<Int>) -> Float {
            range.map { -logProbs.scalars[$0 * v + tokens[$0 + 1]] }.reduce(0, +) / Float(range.count)
        }
        let first = meanLoss(0..<(n - 1)), second = meanLoss(n..<(2 * n - 1))
        #expect(second < first / 2, "loss \(first) on the passage, \(second) on its repeat")
        // Random tokens too: the mechanism is not about Austen's words.
        let random = try model.inductionTest(length: 60, seed: 3)
        #expect(random.secondHalfLoss < random.firstHalfLoss - 1, "random tokens: \(random.firstHalfLoss) → \(random.secondHalfLoss)")
    }

    /// ../shared beside the repository root (the Austen corpus lives there on this project's machines),
    /// or $LOUPE_SHARED.
    static func sharedRoot() -> String {
        if let s = ProcessInfo.processInfo.environment["LOUPE_SHARED"], !s.isEmpty { return s }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repo.deletingLastPathComponent().appendingPathComponent("shared").path
    }
}
