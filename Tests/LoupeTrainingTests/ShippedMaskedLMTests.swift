import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeTensor
import LoupeTraining
import Testing

/// `austen-mlm`, the masked-LM that ships inside Loupe (`loupe train mlm --init-from austen`, docs/training.md):
/// it loads with no download, fills masked tokens of held-out Austen, and — unlike `austen`, whose blocks it
/// shares — reads the tokens after a position.
@Suite("The shipped Austen masked-LM")
struct ShippedMaskedLMTests {
    static func load() throws -> LoadedModel {
        let path = try #require(ModelRegistry.shippedPath("austen-mlm"), "austen-mlm is missing from the bundle")
        #expect(try ModelRegistry.resolve("austen-mlm") == path)
        return try ModelLoader.load(path: path)
    }

    @Test func fillsHeldOutText() throws {
        let loaded = try Self.load()
        let model = loaded.model, tokenizer = try loaded.requireTokenizer()
        #expect(model.config.bidirectional && model.config.dVocab == 4097)
        #expect(tokenizer.maskID == 4096 && tokenizer.stripsLeft.contains(4096))
        let path = try #require(ModelRegistry.shippedPath("austen-mlm"))
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path + "/model.safetensors")[.size] as? Int)
        #expect(size < 6_000_000, "model.safetensors is \(size) bytes")
        // The last tenth of each novel was held out from training: the tail of Emma, BERT's corruption, seeded.
        let emma = try readUTF8Text(path: ShippedModelTests.sharedRoot() + "/data/corpora/austen/emma.txt")
        let ids = Array(tokenizer.encode(String(emma.suffix(12000)), allowSpecial: false).suffix(2048))
        let result = try MaskedLanguageModelTask.evaluate(model, stream: ids, maskID: 4096, randomTokens: 0..<4095,
                                                          context: 128, seed: 1)
        // Uniform over 4,096 tokens is 8.3 nats; the unigram entropy of this text is about 6.
        #expect(result.masked > 250)
        #expect(result.accuracy >= 0.30, "held-out masked accuracy \(result.accuracy)")
        #expect(result.loss < 4.5, "held-out masked loss \(result.loss)")
        // The README's example: the mask (which takes the space before it) stands for a word with its space.
        let prompt = tokenizer.encode("It is a truth universally acknowledged, that a single man in possession of a good [MASK], must be in want of a wife.")
        let position = try #require(prompt.firstIndex(of: 4096))
        let top = try model.run([prompt]).topPredictions(k: 5, pos: position).map(\.id)
        let fortune = try #require(tokenizer.id(for: "Ġfortune"))
        let shownTop = top.map { (try? tokenizer.tokenString($0)) ?? "<\($0)>" }
        #expect(top.contains(fortune), "top fills \(shownTop)")
    }

    /// A later token moves the prediction at an earlier [MASK] in austen-mlm and not in austen.
    @Test func laterTokensMoveItsPredictions() throws {
        let mlm = try Self.load().model
        let austen = try ShippedModelTests.load().model
        let tokens = try ShippedModelTests.load().requireTokenizer().encode("She was the youngest of the two daughters of a most affectionate, indulgent father.")
        let position = 2
        var masked = tokens
        masked[position] = 4096
        let later = Array((position + 1)..<tokens.count)
        let replace = { (p: Int) in tokens[p] == 100 ? 101 : 100 }
        let b = try mlm.tokenReplacementEffects(tokens: masked, readAt: position, target: tokens[position], positions: later, replacement: replace)
        let c = try austen.tokenReplacementEffects(tokens: tokens, readAt: position - 1, target: tokens[position], positions: later, replacement: replace)
        #expect(c.effects.allSatisfy { $0.logProbabilityChange == 0 })
        #expect(b.effects.map { abs($0.logProbabilityChange) }.max() ?? 0 > 0.1, "\(b.effects.map(\.logProbabilityChange))")
        // Some head of austen-mlm looks mostly forward; none of austen can.
        let heads = try mlm.attentionAnalysis(tokens: masked)
        #expect(heads.contains { $0.toLater > 0.5 }, "largest forward share \(heads.map(\.toLater).max() ?? 0)")
        #expect(try austen.attentionAnalysis(tokens: tokens).allSatisfy { $0.toLater == 0 })
    }
}
