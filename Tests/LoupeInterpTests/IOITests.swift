import Foundation
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

@Suite struct IOITests {
    static func loaded() throws -> LoadedModel {
        try ModelLoader.load(path: InterpFixtures.directory.appendingPathComponent("gpt2-tiny").path)
    }

    /// Prompts read back to the template: the names at their positions, the corruption with three fresh names
    /// and the same length, ABBA and BABA in turn, the same seed the same prompts.
    @Test func datasetIsWhatTheTemplatesSay() throws {
        let tokenizer = try #require(try Self.loaded().tokenizer)
        let prompts = try IOIDataset.generate(count: 30, seed: 3, tokenizer: tokenizer)
        #expect(prompts.count == 30)
        #expect(try IOIDataset.generate(count: 30, seed: 3, tokenizer: tokenizer) == prompts)
        #expect(try IOIDataset.generate(count: 30, seed: 4, tokenizer: tokenizer) != prompts)
        #expect(Set(prompts.map(\.template)).count == 15)
        for (i, p) in prompts.enumerated() {
            #expect(p.order == (i % 2 == 0 ? "ABBA" : "BABA"))
            #expect(tokenizer.encodeForModel(p.text) == p.tokens && tokenizer.encodeForModel(p.corrupted) == p.corruptedTokens)
            #expect(try tokenizer.decode([p.tokens[p.ioPosition]]) == p.io && tokenizer.decode([p.tokens[p.s1Position]]) == p.s)
            #expect(p.tokens[p.s2Position] == p.sToken && p.s1Position < p.s2Position && p.endPosition == p.tokens.count - 1)
            #expect((p.order == "ABBA") == (p.ioPosition < p.s1Position))
            #expect(p.io != p.s && p.tokens.count == p.corruptedTokens.count)
            #expect(p.text.hasSuffix(" to") && !p.text.contains("["))
            // The corruption: the name slots hold three names, none of them IO or S, none repeated.
            let slots = [p.ioPosition, p.s1Position, p.s2Position].map { p.corruptedTokens[$0] }
            #expect(Set(slots).count == 3 && !slots.contains(p.ioToken) && !slots.contains(p.sToken))
            let rest = p.tokens.indices.filter { ![p.ioPosition, p.s1Position, p.s2Position].contains($0) }
            #expect(rest.allSatisfy { p.tokens[$0] == p.corruptedTokens[$0] })
        }
        #expect(throws: InterpError.self) { try IOIDataset.generate(count: 0, seed: 0, tokenizer: tokenizer) }
        #expect(throws: InterpError.self) { try IOIDataset.generate(count: 2, seed: 0, tokenizer: tokenizer, templates: [15]) }
    }

    /// The circuit search on a random model (prompts kept where it prefers IO, so that the mean logit
    /// difference is positive): each stage's effects equal path patching's, every class member passes the
    /// threshold in its direction, attention evidence equals the patterns read by hand, knockouts equal
    /// zeroing the heads by hand.
    @Test func circuitSearchIsItsParts() throws {
        let loaded = try Self.loaded()
        let model = loaded.model
        let all = try IOIDataset.generate(count: 24, seed: 1, tokenizer: try #require(loaded.tokenizer))
        let (diffs, _) = try model.ioiLogitDiffs(all)
        let prompts = zip(all, diffs).filter { $0.1 > 0 }.map(\.0).prefix(6).map { $0 }
        try #require(prompts.count >= 3)
        let search = IOISearch(threshold: 0.001, maxHeads: 3)
        let circuit = try model.ioiCircuit(prompts, search: search)
        let (clean, corrupted) = try model.ioiLogitDiffs(prompts)
        #expect(abs(circuit.logitDiff - clean.reduce(0, +) / Float(clean.count)) < 1e-5)
        #expect(abs(circuit.corruptedLogitDiff - corrupted.reduce(0, +) / Float(corrupted.count)) < 1e-5)

        let pairs = prompts.map { PatchPair(clean: $0.tokens, corrupted: $0.corruptedTokens, metric: .logitDifference(answer: $0.ioToken, wrong: $0.sToken)) }
        let direct = try model.pathPatch(pairs: pairs, receiver: .logits)
        let stage = try #require(circuit.stages.first { $0.name == "logits" }).effect
        for j in 0..<8 { #expect(abs(stage.scalars[j] - (direct.values.scalars[j] - direct.clean) / abs(direct.clean)) < 1e-4) }
        #expect(!circuit.nameMovers.isEmpty || !circuit.negativeNameMovers.isEmpty)
        #expect(circuit.nameMovers.allSatisfy { $0.effect <= -search.threshold } && circuit.nameMovers.count <= 3)
        #expect(circuit.negativeNameMovers.allSatisfy { $0.effect >= search.threshold })
        #expect(circuit.nameMovers.map { abs($0.effect) } == circuit.nameMovers.map { abs($0.effect) }.sorted(by: >))
        let heads = circuit.classes.flatMap(\.heads)
        #expect(Set(heads.map(\.name)).count == heads.count)

        // END → IO attention of the first mover, read by hand.
        if let m = (circuit.nameMovers + circuit.negativeNameMovers).first {
            var sum: Float = 0
            for p in prompts {
                let (_, cache) = try model.runWithCache(.tokens([p.tokens]), select: .names([.pattern(m.layer)]))
                sum += try cache[.pattern(m.layer)]!.item([0, m.head, p.endPosition, p.ioPosition])
            }
            #expect(abs(m.attention - sum / Float(prompts.count)) < 1e-5)
        }
        // Knockouts: zero the heads' z by hand.
        for k in circuit.knockouts {
            var hooks = Hooks()
            let chosen = heads.filter { k.heads.contains($0.name) }
            for layer in Set(chosen.map(\.layer)) {
                let hs = chosen.filter { $0.layer == layer }.map(\.head)
                hooks.add(.z(layer)) { z, _ in for p in 0..<z.shape[1] { for h in hs { z[0, p, h] = Tensor(zeros: [z.shape[3]]) } } }
            }
            let knocked = try model.ioiLogitDiffs(prompts, hooks: hooks).clean
            #expect(abs(k.logitDiff - knocked.reduce(0, +) / Float(knocked.count)) < 1e-4)
        }
        #expect(circuit.knockouts.last?.name == "circuit")
    }

    @Test func aModelThatDoesNotDoTheTaskIsAnError() throws {
        let loaded = try Self.loaded()
        let all = try IOIDataset.generate(count: 24, seed: 1, tokenizer: try #require(loaded.tokenizer))
        let (diffs, _) = try loaded.model.ioiLogitDiffs(all)
        let wrong = zip(all, diffs).filter { $0.1 < 0 }.map(\.0)
        try #require(!wrong.isEmpty)
        #expect { try loaded.model.ioiCircuit(wrong) } throws: { "\($0)".contains("does not do the task") }
        var bad = all[0]
        bad.s2Position = bad.ioPosition
        #expect { try loaded.model.ioiCircuit([bad]) } throws: { "\($0)".contains("disagree") }
    }
}
