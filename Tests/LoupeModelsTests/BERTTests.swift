// BERT-style encoders against Hugging Face `BertForMaskedLM` and TransformerLens's `HookedEncoder` on a random
// tiny model (scripts/make_bert_fixtures.py): logits with and without token types, a right-padded batch, and
// every hook point of run_with_cache.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import Testing

@Suite struct BERTTests {
    static let folder = Fixtures.directory.appendingPathComponent("bert")
    static func model() throws -> HookedTransformer { try ModelLoader.load(path: folder.path).model }
    static func expected() throws -> SafetensorsFile {
        try SafetensorsFile(path: Fixtures.directory.appendingPathComponent("bert-expected.safetensors").path)
    }
    static func cases() throws -> [String: [String: [[Int]]]] {
        let data = try Data(contentsOf: Fixtures.directory.appendingPathComponent("bert-expected.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try #require(json["cases"] as? [String: [String: Any]])
        return cases.mapValues { c in
            var out: [String: [[Int]]] = [:]
            for (k, v) in c {
                if let rows = v as? [[Int]] { out[k] = rows } else if let row = v as? [Int] { out[k] = [row] }
            }
            return out
        }
    }

    @Test func logitsMatchHuggingFace() throws {
        let model = try Self.model()
        #expect(model.config.architecture == "BertForMaskedLM" && model.config.bidirectional && model.config.postLayerNorm)
        let cases = try Self.cases(), expected = try Self.expected()
        let a = try #require(cases["a"]?["ids"])
        let logits = try model.run(a)
        #expect(logits.maxAbsDifference(try expected.tensor("hf.logits")) <= 1e-4)
        // Token types change the logits; given, they match.
        let b = try #require(cases["b"]), types = try #require(b["token_type_ids"])
        var options = ForwardOptions()
        options.tokenTypes = types
        let typed = try model.run(.tokens(try #require(b["ids"])), options: options)
        #expect(typed.maxAbsDifference(try expected.tensor("b.hf.logits")) <= 1e-4)
        #expect(typed.maxAbsDifference(logits) > 1e-2)
        // The encoder's output (before the MLM head) is the last block's normalized_resid_post.
        let (_, cache) = try model.runWithCache(.tokens(a), select: .names([.normalizedResidPost(1)]))
        #expect(try #require(cache[.normalizedResidPost(1)]).maxAbsDifference(try expected.tensor("hf.hidden")) <= 1e-4)
    }

    /// Every position sees every other: a later token changes an earlier position's logits (not so in a
    /// causal model), and right padding is masked.
    @Test func bidirectionalAndPadded() throws {
        let model = try Self.model()
        let c = try #require(try Self.cases()["c"])
        let ids = try #require(c["ids"]), mask = try #require(c["attention_mask"])
        let logits = try model.run(.tokens(ids), options: ForwardOptions(attentionMask: mask))
        let want = try Self.expected().tensor("c.hf.logits")
        let (t, v) = (ids[0].count, model.config.dVocab)
        var worst: Float = 0
        for row in 0..<2 {
            for p in 0..<t where mask[row][p] == 1 {
                for j in 0..<v { worst = max(worst, abs(logits.scalars[(row * t + p) * v + j] - want.scalars[(row * t + p) * v + j])) }
            }
        }
        #expect(worst <= 1e-4, "padded batch differs from Hugging Face by \(worst)")
        var changed = ids[0]
        changed[t - 1] = (changed[t - 1] + 1) % v
        let first = try model.run([ids[0]]), second = try model.run([changed])
        #expect(zip(first.scalars[0..<v], second.scalars[0..<v]).map { abs($0 - $1) }.max()! > 1e-3)
    }

    @Test func cacheMatchesTransformerLens() throws {
        let model = try Self.model()
        let expected = try Self.expected()
        let a = try #require(try Self.cases()["a"]?["ids"])
        let (logits, cache) = try model.runWithCache(.tokens(a))
        let tlNames = Set(expected.names.filter { $0.hasPrefix("tl.") && $0.contains("hook_") }.map { String($0.dropFirst(3)) })
        let ours = Set(cache.names.map(\.description))
        #expect(ours == tlNames, "only Loupe \(ours.subtracting(tlNames).sorted()), only TL \(tlNames.subtracting(ours).sorted())")
        #expect(Set(model.hookNames().map(\.description)) == tlNames)
        for name in cache.names where tlNames.contains(name.description) {
            let want = try expected.tensor("tl.\(name)")
            let got = try #require(cache[name])
            #expect(got.shape == want.shape, "\(name): \(got.shape) vs \(want.shape)")
            let diff = try got.reshaped(want.shape).maxAbsDifference(want)
            #expect(diff <= 1e-4, "\(name): max difference \(diff)")
        }
        #expect(logits.maxAbsDifference(try expected.tensor("tl.logits")) <= 1e-4)
        for name in ["embed.hook_embed", "hook_full_embed", "blocks.1.hook_normalized_resid_post", "mlm_head.ln.hook_normalized"] {
            #expect(try HookName(parsing: name).description == name)
        }
    }

    /// Saved in Loupe's own format and read back: the same logits. Processing and the autograd tape, which do
    /// not apply to BERT's layout yet, say so.
    @Test func roundTripAndRefusals() throws {
        let model = try Self.model()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-bert-tl-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try TransformerLensFormat.write(model, to: dir)
        let back = try ModelLoader.load(path: dir.path).model
        let ids = [[5, 42, 79, 116, 153]]
        #expect(try back.run(ids).maxAbsDifference(try model.run(ids)) == 0)
        #expect(throws: ModelError.self) { try model.processed() }
        #expect(throws: ModelError.self) { try HuggingFaceExport.family(of: model) }
    }

    @Test func badInputIsAClearError() throws {
        let model = try Self.model()
        func message(_ body: () throws -> Any) -> String {
            do { _ = try body(); return "no error" } catch { return "\(error)" }
        }
        var options = ForwardOptions()
        options.tokenTypes = [[0, 1]]
        #expect(message { try model.run(.tokens([[1, 2, 3]]), options: options) }.contains("shape"))
        options.tokenTypes = [[0, 1, 2]]
        #expect(message { try model.run(.tokens([[1, 2, 3]]), options: options) }.contains("token type 2"))
        #expect(message { try model.generate(prompt: [1, 2, 3], maxTokens: 2) }.contains("both directions"))
        #expect(message { try model.run([Array(repeating: 1, count: 65)]) }.contains("65"))
        // A decoder takes no token types.
        let gpt2 = try ModelLoader.load(path: Fixtures.directory.appendingPathComponent("gpt2-tiny").path).model
        options.tokenTypes = [[0, 0, 0]]
        #expect(message { try gpt2.run(.tokens([[1, 2, 3]]), options: options) }.contains("no token-type"))
        // A config key BERT's loader does not understand is refused.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-bert-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Self.folder.appendingPathComponent("model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
        var config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.folder.appendingPathComponent("config.json"))) as? [String: Any])
        config["position_embedding_type"] = "relative_key"
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        #expect(message { try ModelLoader.load(path: dir.path) }.contains("position_embedding_type"))
        config["position_embedding_type"] = "absolute"
        config["rotary_thing"] = 3
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        #expect(message { try ModelLoader.load(path: dir.path) }.contains("rotary_thing"))
        // A tensor the loader does not read is refused, not dropped; the pooler (off the masked-LM path) is not.
        config["rotary_thing"] = nil
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        let original = try SafetensorsFile(path: Self.folder.appendingPathComponent("model.safetensors").path)
        var tensors = try original.names.map { (name: $0, tensor: try original.tensor($0)) }
        tensors.append((name: "bert.pooler.dense.bias", tensor: Tensor(zeros: [64])))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model.safetensors"))
        try writeSafetensors(tensors, to: dir.appendingPathComponent("model.safetensors"))
        #expect(message { try ModelLoader.load(path: dir.path) } == "no error")
        tensors.append((name: "bert.encoder.layer.0.attention.self.distance_embedding.weight", tensor: Tensor(zeros: [3, 64])))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model.safetensors"))
        try writeSafetensors(tensors, to: dir.appendingPathComponent("model.safetensors"))
        #expect(message { try ModelLoader.load(path: dir.path) }.contains("distance_embedding"))
    }
}
