// The recipes of docs/library.md, compiled and run. Each test holds one recipe between
// `// recipe: NAME` and `// end recipe` markers, byte for byte as the page shows it (up to indentation),
// then checks what the recipe claims; `pageAndTestsAgree` fails when the two drift apart.

import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
import LoupeTraining
import Testing

@Suite struct LibraryRecipesTests {
    /// The shipped model, processed, shared by the recipes that do not load it themselves.
    static let shared = Result { try HookedTransformer.pretrained("austen") }

    @Test func load() throws {
        // recipe: load
        let model = try HookedTransformer.pretrained("austen")   // weights processed as TransformerLens's from_pretrained
        let logits = try model.run("I do not know what you mean, Mr.")   // [batch, pos, d_vocab]
        let top = try logits.topPredictions(k: 3)
        let names = try model.toStrings(top.map(\.id))           // [" Weston", " Darcy", " Elton"]
        // end recipe
        #expect(logits.shape == [1, 10, 4096])
        #expect(names == [" Weston", " Darcy", " Elton"])
        // Processing changes logits by a constant per position only: the raw model predicts the same.
        let raw = try HookedTransformer.pretrained("austen", processing: nil)
        let rawTop = try raw.run("I do not know what you mean, Mr.").topPredictions(k: 3)
        #expect(rawTop.map(\.id) == top.map(\.id))
        for (a, b) in zip(rawTop, top) { #expect(abs(a.probability - b.probability) < 1e-4) }
    }

    @Test func cache() throws {
        let model = try Self.shared.get()
        // recipe: cache
        let (_, cache) = try model.runWithCache("It is a truth universally acknowledged")
        let pattern = try cache.get(.pattern(1))                 // [batch, head_index, query_pos, key_pos]
        let head5 = pattern[0, 5]                                // head 1.5: [query_pos, key_pos]
        let lastRow = head5[-1]                                  // where the last position looks: [key_pos]
        let resid = try cache.get("blocks.1.hook_resid_post")    // TransformerLens's names work too
        // end recipe
        let T = pattern.shape[2]
        #expect(pattern.shape == [1, model.config.nHeads, T, T])
        #expect(head5.shape == [T, T])
        #expect(lastRow.scalars == Array(pattern.scalars[((5 * T) + T - 1) * T ..< ((5 * T) + T) * T]))
        #expect(abs(lastRow.sum() - 1) < 1e-5)
        #expect(resid.shape == [1, T, model.config.dModel])
    }

    @Test func slicing() throws {
        let model = try Self.shared.get()
        let (_, cache) = try model.runWithCache("It is a truth universally acknowledged")
        let resid = try cache.get(.residPost(1))
        // recipe: slicing
        var z = try cache.get(.z(1))                             // [batch, pos, head_index, d_head]
        z[.all, .all, 3] = 0                                     // TransformerLens: z[:, :, 3] = 0
        let firstHeads = z[..., 0..<2, .all]                     // [batch, pos, 2, d_head]
        let everyOther = z[0, stride(from: 0, to: z.shape[1], by: 2)]   // [pos / 2, head_index, d_head]
        let centred = try resid - resid.sumLastDim().reshaped([1, -1, 1]) / Float(resid.shape[2])
        // end recipe
        let (T, h, dh) = (z.shape[1], model.config.nHeads, model.config.dHead)
        let original = try cache.get(.z(1))
        for p in 0..<T {
            for head in 0..<h {
                for j in 0..<dh {
                    let i = (p * h + head) * dh + j
                    #expect(z.scalars[i] == (head == 3 ? 0 : original.scalars[i]))
                }
            }
        }
        #expect(firstHeads.shape == [1, T, 2, dh])
        #expect(everyOther.shape == [(T + 1) / 2, h, dh])
        #expect(everyOther[1].scalars == z[0, 2].scalars)
        for p in 0..<T { #expect(abs(centred[0, p].sum()) < 1e-3) }
    }

    @Test func ablateHead() throws {
        let model = try Self.shared.get()
        // recipe: ablate-head
        let prompt: ModelInput = "Mr. Darcy bowed, and Mr."
        let clean = try model.run(prompt)
        let ablated = try model.run(prompt, hooks: [
            .z(1): { z, _ in z[.all, .all, 5] = 0 },             // zero head 1.5's output at every position
        ])
        let change = try ablated[0, -1] - clean[0, -1]          // effect on the next-token logits
        // end recipe
        #expect(change.shape == [model.config.dVocab])
        #expect(change.scalars.map(abs).max() ?? 0 > 1e-3, "ablating head 1.5 changed nothing")
        // The same ablation through W_O: subtract head 5's contribution z_5 · W_O[5] from hook_attn_out.
        let (_, cache) = try model.runWithCache(prompt, select: .names([.z(1)]))
        let head = try cache.get(.z(1))[0, .all, 5].matmul(model.weights.blocks[1].wO[5])   // [pos, d_model]
        let viaOut = try model.run(prompt, hooks: [.attnOut(1): { out, _ in out[0] = try out[0] - head }])
        #expect(viaOut.maxAbsDifference(ablated) < 1e-3)
    }

    @Test func patch() throws {
        let model = try Self.shared.get()
        // recipe: patch
        let cleanIDs = try model.toTokens("When Elizabeth and Jane went to the ball, Jane gave a flower to")
        let corruptIDs = try model.toTokens("When Elizabeth and Jane went to the ball, Elizabeth gave a flower to")
        let (elizabeth, jane) = (try model.singleToken(" Elizabeth"), try model.singleToken(" Jane"))
        let sweep = try model.activationPatch(clean: cleanIDs, corrupted: corruptIDs, target: .residPre,
                                              metric: .logitDifference(answer: elizabeth, wrong: jane))
        // sweep.values: [layer, pos]; sweep.clean and sweep.corrupted: the metric unpatched.

        // The same cell by hand: the corrupted run with the clean residual at layer 1, position 3.
        let cleanResid = try model.runWithCache(.tokens([cleanIDs]), select: .names([.residPre(1)])).cache.get(.residPre(1))
        let patched = try model.run(.tokens([corruptIDs]), hooks: [
            .residPre(1): { resid, _ in resid[0, 3] = cleanResid[0, 3] },
        ])
        let byHand: Float = patched[0, -1, elizabeth] - patched[0, -1, jane]   // equals sweep.values[1, 3]
        // end recipe
        #expect(cleanIDs.count == corruptIDs.count)
        #expect(sweep.values.shape == [model.config.nLayers, cleanIDs.count])
        let cell: Float = sweep.values[1, 3]
        #expect(abs(byHand - cell) < 1e-3, "by hand \(byHand), sweep \(cell)")
        // Patching the whole residual stream at layer 0 restores the clean run.
        let full = try model.run(.tokens([corruptIDs]), hooks: [.residPre(0): Hooks.replace(with: model.runWithCache(.tokens([cleanIDs]), select: .names([.residPre(0)])).cache.get(.residPre(0)))])
        let restored: Float = full[0, -1, elizabeth] - full[0, -1, jane]
        #expect(abs(restored - sweep.clean) < 1e-3)
    }

    @Test func scrub() throws {
        let model = try Self.shared.get()
        // recipe: scrub
        let sequences = try (0..<8).map { i -> [Int] in
            let half = try model.generate(prompt: [model.config.eosTokenID ?? 0], maxTokens: 16, sampling: SamplingOptions(temperature: 1, seed: UInt64(i)))
            return half + half                                   // a repeat: induction's job
        }
        let story = ScrubHypothesis(name: "induction", edges: [
            .init(from: "L0H1", to: "L1H5.k"),                   // K-composition
            .init(from: "embed", to: "L1H5.q"), .init(from: "embed", to: "L1H5.v"),
        ], rest: .kept)                                          // every input not named: the model's own
        let scrub = try model.causalScrub(story, sequences: sequences, lossFrom: 16)
        // scrub.lossRecovered: 1 = the story explains the model's loss, 0 = nothing (the logits' input resampled).
        // end recipe
        // The same hypothesis with every edge kept is the model; this one loses some of the loss and keeps some.
        let full = try model.causalScrub(.full, sequences: sequences, lossFrom: 16)
        #expect(abs(full.scrubbedLoss - full.modelLoss) < 1e-4)
        #expect(scrub.modelLoss == full.modelLoss && scrub.fullyScrubbedLoss == full.fullyScrubbedLoss)
        #expect(scrub.lossRecovered > 0 && scrub.lossRecovered < 1)
    }

    @Test func steer() throws {
        let model = try Self.shared.get()
        // recipe: steer
        func lastResid(_ text: String) throws -> Tensor {
            try model.runWithCache(.text(text), select: .names([.residPre(1)])).cache.get(.residPre(1))[0, -1]
        }
        let direction = try lastResid("She was very happy") - lastResid("She was very sad")   // [d_model]
        let steered = try model.run("The evening was", hooks: [.residPre(1): Hooks.add(direction, scale: 4)])
        // end recipe
        #expect(direction.shape == [model.config.dModel])
        // Steering is the residual plus 4 · direction at every position, then the rest of the model.
        let resid = try model.runWithCache("The evening was", select: .names([.residPre(1)])).cache.get(.residPre(1))
        let byHand = try model.run(.residual(resid + 4 * direction), options: ForwardOptions(startAtLayer: 1))
        #expect(byHand.maxAbsDifference(steered) < 1e-4)
        #expect(steered.maxAbsDifference(try model.run("The evening was")) > 1e-2)
    }

    @Test func gradients() throws {
        let model = try Self.shared.get()
        // recipe: gradients
        let ids = try model.toTokens("It is a truth universally acknowledged")
        let run = try model.differentiableRun([ids], capture: [.residPre(1)])
        let loss = try run.logits.crossEntropy(targets: Array(ids.dropFirst()) + [-1])   // -1: no target
        try loss.backward()
        let gradient = run.activations[.residPre(1)]?.grad                       // [batch, pos, d_model]
        // end recipe
        let g = try #require(gradient)
        #expect(g.shape == [1, ids.count, model.config.dModel])
        // The gradient predicts the loss change of a small step along it (finite difference).
        let resid = try model.runWithCache(.tokens([ids]), select: .names([.residPre(1)])).cache.get(.residPre(1))
        let step: Float = 1e-2
        let unit = g / (g.scalars.map { $0 * $0 }.reduce(0, +)).squareRoot()
        func lossAt(_ r: Tensor) throws -> Float {
            let logits = try model.run(.residual(r), options: ForwardOptions(startAtLayer: 1))
            var total: Float = 0
            for p in 0..<(ids.count - 1) {
                let row = logits[0, p].scalars
                let m = row.max() ?? 0
                total += log(row.map { exp($0 - m) }.reduce(0, +)) + m - row[ids[p + 1]]
            }
            return total / Float(ids.count - 1)
        }
        let slope = (try lossAt(resid + step * unit) - lossAt(resid - step * unit)) / (2 * step)
        let predicted = (g.scalars.map { $0 * $0 }.reduce(0, +)).squareRoot()
        #expect(abs(slope - predicted) < 0.05 * predicted + 1e-3, "finite difference \(slope), gradient norm \(predicted)")
        #expect(abs(loss.value.scalars[0] - (try lossAt(resid))) < 1e-3)
    }

    @Test func sae() throws {
        let model = try Self.shared.get()
        let (_, cache) = try model.runWithCache("It is a truth universally acknowledged")
        // recipe: sae
        // A trained SAE: try SAELensFormat.read(from: URL(fileURLWithPath: "my-sae")) (SAELens's folder layout).
        let sae = try SparseAutoencoder.initialized(
            SAEConfig(architecture: .topk, dIn: model.config.dModel, dSAE: 768, k: 16, hookName: "blocks.1.hook_resid_post"),
            seed: 0)
        let acts = try cache.get(.residPost(1))                  // [batch, pos, d_model]
        let features = try sae.encode(acts.reshaped([-1, model.config.dModel]))   // [pos, d_sae], 16 non-zero per row
        let spliced = try model.run("It is a truth universally acknowledged",
                                    hooks: [.residPost(1): sae.hook(.reconstruct)])   // the model reading the SAE's reconstruction
        // end recipe
        let T = acts.shape[1]
        #expect(features.shape == [T, 768])
        for p in 0..<T { #expect(features[p].scalars.filter { $0 != 0 }.count <= 16) }
        // Splicing equals running the rest of the model on the reconstruction (from position 1: the
        // hook leaves the attention sink at position 0 alone, as SAELens's evaluations do).
        var recon = try sae.reconstruct(acts.reshaped([-1, model.config.dModel])).reshaped([1, T, model.config.dModel])
        recon[0, 0] = acts[0, 0]
        let byHand = try model.run(.residual(recon), options: ForwardOptions(startAtLayer: 2))
        #expect(byHand.maxAbsDifference(spliced) < 1e-3)
    }

    @Test func lens() throws {
        let model = try Self.shared.get()
        let ids = try model.toTokens("It is a truth universally acknowledged")
        // recipe: lens
        // A trained lens: try TunedLens.load(path: "lens.safetensors") (made by `loupe train tuned-lens`).
        let lens = TunedLens(identityLayers: model.config.nLayers, dModel: model.config.dModel, modelName: "austen")
        let tuned = try model.logitLens(tokens: ids, tuned: lens)   // the identity lens is the logit lens
        let plain = try model.logitLens(tokens: ids)
        let rows = try plain.summary(position: ids.count - 1, topK: 3)   // per layer: top tokens, KL to the final layer
        // end recipe
        #expect(tuned.logits.maxAbsDifference(plain.logits) < 1e-4)
        #expect(rows.count == plain.labels.count)
        // The last label is the model's own output: KL 0 to itself.
        #expect(abs(rows.last?.klToFinal ?? 1) < 1e-4)
    }

    // MARK: - The page and these tests agree

    /// `name → code` of each recipe, indentation removed.
    static func recipes(in text: String, start: (String) -> String?, end: (String) -> Bool) -> [String: String] {
        var out: [String: String] = [:]
        var current: (name: String, lines: [String])?
        for line in text.components(separatedBy: "\n") {
            if var c = current {
                if end(line) {
                    out[c.name] = dedent(c.lines)
                    current = nil
                } else {
                    c.lines.append(line)
                    current = c
                }
            } else if let name = start(line) {
                current = (name, [])
            }
        }
        return out
    }

    static func dedent(_ lines: [String]) -> String {
        let indent = lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            .map { $0.prefix { $0 == " " }.count }.min() ?? 0
        return lines.map { String($0.dropFirst(min(indent, $0.prefix { $0 == " " }.count))) }.joined(separator: "\n")
    }

    @Test func pageAndTestsAgree() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let page = try String(contentsOf: root.appendingPathComponent("docs/library.md"), encoding: .utf8)
        let tests = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        // On the page: `<!-- recipe: NAME -->`, then a ```swift block.
        var pending: String?
        let onPage = Self.recipes(in: page, start: { line in
            if line.hasPrefix("<!-- recipe: ") { pending = String(line.dropFirst(13).dropLast(4)); return nil }
            if line == "```swift", let name = pending { pending = nil; return name }
            return nil
        }, end: { $0 == "```" })
        let inTests = Self.recipes(in: tests, start: { line in
            let t = line.trimmingCharacters(in: .whitespaces)
            return t.hasPrefix("// recipe: ") ? String(t.dropFirst(11)) : nil
        }, end: { $0.trimmingCharacters(in: .whitespaces) == "// end recipe" })
        #expect(onPage.count == 10, "recipes on the page: \(onPage.keys.sorted())")
        #expect(Set(onPage.keys) == Set(inTests.keys), "page: \(onPage.keys.sorted()), tests: \(inTests.keys.sorted())")
        for (name, code) in onPage {
            #expect(inTests[name] == code, "recipe '\(name)' differs between docs/library.md and this file")
        }
    }
}
