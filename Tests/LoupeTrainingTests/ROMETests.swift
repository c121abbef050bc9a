// ROME against its own algorithm ported onto Hugging Face transformers in float64
// (scripts/make_rome_fixtures.py, from github.com/kmeng01/rome), the closed form against numpy, and the
// edit's defining property: after the update the bare prompt's MLP output at the subject is v*.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor
import LoupeTraining
import Testing

enum ROMEFixtures {
    static func file(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: GradFixtures.directory.appendingPathComponent(name).path)
    }
    static func austen() throws -> HookedTransformer { try ShippedModelTests.load().model }
}

@Suite("ROME: the rank-one edit equals ROME's own algorithm (PyTorch, float64) and numpy's closed form")
struct ROMETests {
    @Test func closedFormMatchesNumpy() throws {
        let f = try ROMEFixtures.file("rome-formula.safetensors")
        let (left, right) = try ROME.rankOneVectors(
            meanKey: try f.tensor("mean_key").scalars, secondMoment: try f.doubles("C"), key: try f.tensor("key").scalars,
            value: try f.tensor("value").scalars, target: try f.tensor("target").scalars)
        #expect(relativeError(Tensor(left), try f.tensor("left")) < 1e-5)
        #expect(relativeError(Tensor(right), try f.tensor("right")) < 1e-5)
    }

    @Test func singularSecondMomentIsAClearError() throws {
        let m = 4
        var c = [Double](repeating: 0, count: m * m)
        c[0] = 1; c[5] = 1   // rank 2
        #expect(throws: TensorError.self) {
            _ = try ROME.rankOneVectors(meanKey: [1, 2, 3, 4], secondMoment: c, key: [1, 1, 1, 1], value: [0, 0], target: [1, 1])
        }
    }

    @Test func optimisationAndUpdateMatchROMEReference() throws {
        let f = try ROMEFixtures.file("rome-tiny.safetensors")
        let data = try Data(contentsOf: GradFixtures.directory.appendingPathComponent("rome-tiny.json"))
        let j = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let model = try ModelLoader.load(path: GradFixtures.directory.appendingPathComponent("llama-tiny").path).model
        let request = ROMETokenRequest(
            contexts: try #require(j["contexts"] as? [[Int]]), subjectPositions: try #require(j["subject_positions"] as? [Int]),
            target: try #require(j["target"] as? Int), klPrompt: try #require(j["kl_prompt"] as? [Int]),
            klSubjectPosition: try #require(j["kl_position"] as? Int))
        var s = ROMESettings(layer: try #require(j["layer"] as? Int))
        s.steps = try #require(j["steps"] as? Int)
        s.learningRate = Float(try #require(j["learning_rate"] as? Double))
        s.klFactor = Float(try #require(j["kl_factor"] as? Double))
        s.weightDecay = Float(try #require(j["weight_decay"] as? Double))
        s.clampNormFactor = Float(try #require(j["clamp_norm_factor"] as? Double))
        let edit = try ROME.compute(model: model, request: request, secondMoment: try f.doubles("C"), settings: s)

        // Every pass: loss, nll, kl, decay, P(target).
        let history = try f.tensor("history")
        #expect(edit.steps.count == history.shape[0])
        for (i, step) in edit.steps.enumerated() {
            let row = Array(history.scalars[(i * 5)..<(i * 5 + 5)])
            let mine = [step.loss, step.nll, step.kl, step.decay, step.targetProbability]
            for (a, b) in zip(mine, row) { #expect(abs(a - b) <= 1e-4 * max(1, abs(b)), "pass \(i): \(mine) vs \(row)") }
        }
        #expect(relativeError(Tensor(zip(edit.targetValue, edit.initialValue).map { $0 - $1 }), try f.tensor("delta")) < 1e-3)
        #expect(relativeError(Tensor(edit.key), try f.tensor("mean_key")) < 1e-5)
        #expect(relativeError(Tensor(edit.leftVector), try f.tensor("left")) < 1e-4)
        #expect(relativeError(Tensor(edit.rightVector), try f.tensor("right")) < 1e-3)

        let edited = try edit.applied(to: model)
        #expect(relativeError(edited.weights.blocks[s.layer].wOut, try f.tensor("w_out")) < 1e-4)
        let logits = try edited.run([request.contexts[0]])
        #expect(relativeError(try logits.reshaped([request.contexts[0].count, model.config.dVocab]), try f.tensor("edited_logits")) < 1e-4)

        // The defining property: the bare prompt's MLP output at the subject is now v*.
        let cache = try edited.runWithCache(.tokens([request.contexts[0]]), select: .names([.mlpOut(s.layer)])).cache
        let out = try #require(cache[.mlpOut(s.layer)])
        let p = request.subjectPositions[0], d = model.config.dModel
        let value = Array(out.scalars[(p * d)..<((p + 1) * d)])
        #expect(relativeError(Tensor(value), Tensor(edit.targetValue)) < 1e-4)
        // Other weights are untouched.
        #expect(edited.weights.blocks[s.layer].wIn == model.weights.blocks[s.layer].wIn)
        #expect(edited.weights.wU == model.weights.wU)
    }

    @Test func badRequestsAreClearErrors() throws {
        let model = try ROMEFixtures.austen()
        let s = ROMESettings(layer: 0)
        #expect(throws: EditError.subjectNotInPrompt(subject: "Mr. Knightley", prompt: "Mr. Darcy was the friend of Mr.")) {
            _ = try ROME.prepare(model: model, prompt: "Mr. Darcy was the friend of Mr.", subject: "Mr. Knightley", target: "Bingley", settings: s)
        }
        do {
            _ = try ROME.prepare(model: model, prompt: "Mr. Darcy was the friend of Mr.", subject: "Mr. Darcy",
                                 target: "Bingleyxyzzy quux", settings: s)
            Issue.record("a target of several tokens was accepted")
        } catch let e as EditError {
            guard case .targetNotOneToken(let m) = e else { Issue.record("wrong error \(e)"); return }
            #expect(m.contains("tokens"))
        }
        // The last block's MLP cannot reach a later position: refused before any optimisation.
        var last = ROMESettings(layer: model.config.nLayers - 1)
        last.contexts = []
        let prepared = try ROME.prepare(model: model, prompt: "Mr. Darcy was the friend of Mr.", subject: "Mr. Darcy", target: "Bingley", settings: last)
        #expect(throws: EditError.self) {
            _ = try ROME.compute(model: model, request: prepared.tokens, secondMoment: nil, settings: last)
        }
        var outOfRange = ROMESettings(layer: model.config.nLayers)
        outOfRange.contexts = []
        #expect(throws: EditError.self) {
            _ = try ROME.compute(model: model, request: prepared.tokens, secondMoment: nil, settings: outOfRange)
        }
        // A second moment of the wrong size.
        #expect(throws: EditError.self) {
            _ = try ROME.rankOneVectors(meanKey: [1, 2], secondMoment: [1, 0, 0], key: [1, 1], value: [0], target: [1])
        }
    }

    @Test func preparedRequestPlacesTheSubject() throws {
        let model = try ROMEFixtures.austen()
        var s = ROMESettings(layer: 0)
        s.contexts = [.init(tokens: 3, count: 2)]
        let p = try ROME.prepare(model: model, prompt: "Mr. Darcy was the friend of Mr.", subject: "Mr. Darcy", target: "Bingley", settings: s)
        #expect(p.contexts.count == 3 && p.contexts[0].isEmpty && p.contexts.dropFirst().allSatisfy { $0.hasSuffix(". ") })
        #expect(p.targetText == " Bingley")
        for (row, pos) in zip(p.tokens.contexts, p.tokens.subjectPositions) {
            // The subject's last token is the token that ends "… Mr. Darcy" in every context.
            #expect(try model.toStrings([row[pos]]) == [p.subjectToken])
            #expect(row.suffix(try model.toTokens("Mr. Darcy was the friend of Mr.").count - 2) ==
                    p.tokens.contexts[0].suffix(try model.toTokens("Mr. Darcy was the friend of Mr.").count - 2))
        }
        #expect(p.subjectToken == " Darcy")
        #expect(try model.toStrings([p.tokens.klPrompt[p.tokens.klSubjectPosition]]) == [" Darcy"])
    }

    @Test func ngramEntropyFollowsROMEsDefinition() {
        // "a b a b a": bigrams ab, ba, ab, ba → 1 bit; trigrams aba, bab, aba → H(2/3, 1/3).
        let h3 = -(2.0 / 3 * log2(2.0 / 3) + 1.0 / 3 * log2(1.0 / 3))
        let expected = Float((1.0 * 2 / 3 + h3 * 4 / 3) / 2)
        #expect(abs(ROME.ngramEntropy("a b a b a") - expected) < 1e-6)
        #expect(ROME.ngramEntropy("same same same same same") == 0)
    }
}

@Suite("MEMIT: many facts over several layers equal MEMIT's own algorithm (PyTorch, float64)")
struct MEMITTests {
    @Test func updatesMatchMEMITReference() throws {
        let f = try ROMEFixtures.file("memit-llama.safetensors")
        let data = try Data(contentsOf: GradFixtures.directory.appendingPathComponent("memit-llama.json"))
        let j = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let model = try ModelLoader.load(path: GradFixtures.directory.appendingPathComponent("memit-llama").path).model
        let requests = try #require(j["requests"] as? [[String: Any]]).map { r in
            ROMETokenRequest(contexts: try #require(r["contexts"] as? [[Int]]), subjectPositions: try #require(r["subject_positions"] as? [Int]),
                             target: try #require(r["target"] as? Int), klPrompt: try #require(r["kl_prompt"] as? [Int]),
                             klSubjectPosition: try #require(r["kl_position"] as? Int))
        }
        let layers = try #require(j["layers"] as? [Int])
        var s = MEMITSettings(layers: layers)
        s.covarianceWeight = try #require(j["covariance_weight"] as? Double)
        s.value.steps = try #require(j["steps"] as? Int)
        s.value.learningRate = Float(try #require(j["learning_rate"] as? Double))
        s.value.klFactor = Float(try #require(j["kl_factor"] as? Double))
        s.value.weightDecay = Float(try #require(j["weight_decay"] as? Double))
        s.value.clampNormFactor = Float(try #require(j["clamp_norm_factor"] as? Double))
        var moments: [Int: [Double]] = [:]
        for l in layers { moments[l] = try f.doubles("C\(l)") }
        let (edited, edit) = try MEMIT.apply(model: model, requests: requests, secondMoments: moments, settings: s)

        for (i, steps) in edit.steps.enumerated() {
            let history = try f.tensor("history\(i)")
            #expect(steps.count == history.shape[0])
            for (k, step) in steps.enumerated() {
                let row = Array(history.scalars[(k * 5)..<(k * 5 + 5)])
                let mine = [step.loss, step.nll, step.kl, step.decay, step.targetProbability]
                for (a, b) in zip(mine, row) { #expect(abs(a - b) <= 1e-4 * max(1, abs(b)), "fact \(i) pass \(k): \(mine) vs \(row)") }
            }
        }
        let zsExpected = try f.tensor("zs")
        let zError = relativeError(Tensor(edit.zs.flatMap { $0 }), zsExpected)
        #expect(zError < 1e-4, "z off by \(zError): \(edit.zs[0].prefix(4)) vs \(zsExpected.scalars.prefix(4))")
        for u in edit.layers {
            #expect(relativeError(Tensor(u.delta), try f.tensor("delta\(u.layer)")) < 1e-3, "layer \(u.layer)")
            #expect(relativeError(edited.weights.blocks[u.layer].wOut,
                                  Tensor(unchecked: [model.config.dMLP, model.config.dModel],
                                         zip(model.weights.blocks[u.layer].wOut.scalars, u.delta).map { $0 + $1 })) == 0)
        }
        // Only the range's MLP output matrices change.
        for l in 0..<model.config.nLayers where !layers.contains(l) { #expect(edited.weights.blocks[l] == model.weights.blocks[l]) }
        let expected = try f.tensor("edited_logits")
        for (i, r) in requests.enumerated() {
            let logits = try edited.run([r.contexts[0]]).scalars.suffix(model.config.dVocab)
            let want = Array(expected.scalars[(i * model.config.dVocab)..<((i + 1) * model.config.dVocab)])
            #expect(relativeError(Tensor(Array(logits)), Tensor(want)) < 1e-4)
        }
    }

    @Test func badRangesAreErrors() throws {
        let model = try ModelLoader.load(path: GradFixtures.directory.appendingPathComponent("memit-llama").path).model
        let r = ROMETokenRequest(contexts: [[5, 6, 7, 8]], subjectPositions: [1], target: 9, klPrompt: [5, 6, 10], klSubjectPosition: 1)
        for layers in [[2, 1], [1, 1], [], [1, 9], [2, 3]] {
            var s = MEMITSettings(layers: layers)
            s.value.steps = 1
            #expect(throws: EditError.self, "\(layers)") { _ = try MEMIT.apply(model: model, requests: [r], secondMoments: [:], settings: s) }
        }
        #expect(throws: EditError.self) { _ = try MEMIT.apply(model: model, requests: [], secondMoments: [:], settings: MEMITSettings(layers: [1])) }
        #expect(throws: EditError.self) { _ = try MEMIT.apply(model: model, requests: [r], secondMoments: [1: [1, 2]], settings: MEMITSettings(layers: [1])) }
    }
}
