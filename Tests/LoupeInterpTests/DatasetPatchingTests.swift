import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

/// Patching over datasets of prompt pairs, and path patching to heads in several layers, against runs built
/// by hand with full forward passes and hooks.
@Suite struct DatasetPatchingTests {
    static func llama() throws -> HookedTransformer {
        try ModelLoader.load(path: InterpFixtures.directory.appendingPathComponent("memit-llama").path).model
    }

    /// Path patching by brute force: for each sender, a full clean run with every head's z frozen at clean but
    /// the sender's corrupted, the receivers' inputs read off it, then a full clean run with those inputs
    /// patched in (at every position or only the last).
    static func bruteForce(_ model: HookedTransformer, clean: [Int], corrupted: [Int], receivers: [PathReceiver.ReceiverHead],
                           lastOnly: Bool, metric: PatchMetric) throws -> [Float] {
        let c = model.config
        let (nL, h, dh, v, T) = (c.nLayers, c.nHeads, c.dHead, c.dVocab, clean.count)
        let zs = Set((0..<nL).map { HookName.z($0) })
        let (cleanLogits, cleanCache) = try model.runWithCache(.tokens([clean]), select: .names(zs))
        let (_, corruptCache) = try model.runWithCache(.tokens([corrupted]), select: .names(zs))
        let cleanMetric = metric.evaluate(cleanLogits.scalars[((T - 1) * v)..<(T * v)])
        var out: [Float] = []
        func name(_ r: PathReceiver.ReceiverHead) -> HookName { r.input == .q ? .q(r.layer) : r.input == .k ? .k(r.layer) : .v(r.layer) }
        for sl in 0..<nL {
            for sh in 0..<h {
                guard receivers.isEmpty || sl < receivers.map(\.layer).max()! else { out.append(cleanMetric); continue }
                var freeze = Hooks()
                for l in 0..<nL {
                    var z = cleanCache[.z(l)]!
                    if l == sl { for p in 0..<T { for j in 0..<dh { z.scalars[(p * h + sh) * dh + j] = corruptCache[.z(l)]!.scalars[(p * h + sh) * dh + j] } } }
                    freeze.add(.z(l), Hooks.replace(with: z))
                }
                let logits: Tensor
                if receivers.isEmpty {
                    logits = try model.run(.tokens([clean]), hooks: freeze)
                } else {
                    let (_, seen) = try model.runWithCache(.tokens([clean]), select: .names(Set(receivers.map(name))), hooks: freeze)
                    var receive = Hooks()
                    for r in receivers {
                        let got = seen[name(r)]!
                        receive.add(name(r)) { act, _ in
                            let heads = act.shape[2]
                            for p in (lastOnly ? [T - 1] : Array(0..<T)) {
                                for j in 0..<dh { act.scalars[(p * heads + r.head) * dh + j] = got.scalars[(p * heads + r.head) * dh + j] }
                            }
                        }
                    }
                    logits = try model.run(.tokens([clean]), hooks: receive)
                }
                out.append(metric.evaluate(logits.scalars[((T - 1) * v)..<(T * v)]))
            }
        }
        return out
    }

    @Test func receiversInSeveralLayersEqualBruteForce() throws {
        let model = try Self.llama()
        let clean = [5, 17, 33, 9, 41, 12, 7], corrupted = [5, 21, 30, 9, 44, 12, 7]
        let metric = PatchMetric.logitDifference(answer: 3, wrong: 11)
        let receivers = [PathReceiver.ReceiverHead(layer: 2, head: 1, input: .q), .init(layer: 3, head: 0, input: .v), .init(layer: 3, head: 1, input: .k)]
        for lastOnly in [false, true] {
            let fast = try model.pathPatch(pairs: [PatchPair(clean: clean, corrupted: corrupted, metric: metric)],
                                           receiver: .headInputs(receivers, position: lastOnly ? .scored : .all))
            let slow = try Self.bruteForce(model, clean: clean, corrupted: corrupted, receivers: receivers, lastOnly: lastOnly, metric: metric)
            #expect(fast.values.scalars.count == slow.count)
            for (a, b) in zip(fast.values.scalars, slow) { #expect(abs(a - b) < 1e-4, "\(a) vs \(b)") }
            // Senders in the last receiver layer or later have no path.
            #expect(fast.values.scalars[(3 * 4)...].allSatisfy { $0 == fast.clean })
        }
        let direct = try model.pathPatch(pairs: [PatchPair(clean: clean, corrupted: corrupted, metric: metric)], receiver: .logits)
        let slow = try Self.bruteForce(model, clean: clean, corrupted: corrupted, receivers: [], lastOnly: false, metric: metric)
        for (a, b) in zip(direct.values.scalars, slow) { #expect(abs(a - b) < 1e-4) }
    }

    /// A dataset's result is the mean of its pairs', each cut after its scored position; pairs may differ in length.
    @Test func datasetsAverageTheirPairs() throws {
        let model = try Self.llama()
        let pairs = [
            PatchPair(clean: [5, 17, 33, 9, 41, 12, 7], corrupted: [5, 21, 30, 9, 44, 12, 7], metric: .logitDifference(answer: 3, wrong: 11)),
            PatchPair(clean: [8, 2, 19, 27, 6], corrupted: [8, 4, 19, 29, 6], metric: .logitDifference(answer: 14, wrong: 2), position: -2),
            PatchPair(clean: [1, 40, 22, 13, 13, 50], corrupted: [1, 42, 22, 15, 13, 50], metric: .loss(22), position: 3),
        ]
        let cut = [pairs[0].clean, Array(pairs[1].clean.prefix(4)), Array(pairs[2].clean.prefix(4))]
        let cutCorrupt = [pairs[0].corrupted, Array(pairs[1].corrupted.prefix(4)), Array(pairs[2].corrupted.prefix(4))]
        for target in [PatchTarget.headOutAllPos, .headVAllPos] {
            let mean = try model.activationPatch(pairs: pairs, target: target)
            let each = try pairs.indices.map { try model.activationPatch(clean: cut[$0], corrupted: cutCorrupt[$0], target: target, metric: pairs[$0].metric) }
            for j in 0..<mean.values.count {
                let want = each.map { $0.values.scalars[j] }.reduce(0, +) / 3
                #expect(abs(mean.values.scalars[j] - want) < 1e-4)
            }
            #expect(abs(mean.clean - each.map(\.clean).reduce(0, +) / 3) < 1e-4)
            #expect(abs(mean.corrupted - each.map(\.corrupted).reduce(0, +) / 3) < 1e-4)
        }
        let receiver = PathReceiver.heads(layer: 2, heads: [0, 3], input: .q)
        let path = try model.pathPatch(pairs: pairs, receiver: receiver)
        let eachPath = try pairs.indices.map { try model.pathPatch(clean: cut[$0], corrupted: cutCorrupt[$0], receiver: receiver, metric: pairs[$0].metric) }
        for j in 0..<path.values.count {
            #expect(abs(path.values.scalars[j] - eachPath.map { $0.values.scalars[j] }.reduce(0, +) / 3) < 1e-4)
        }
        // By-position targets need one length up to the scored positions.
        #expect(throws: InterpError.self) { try model.activationPatch(pairs: pairs, target: .residPre) }
        let sameLength = try model.activationPatch(pairs: Array(pairs[1...]), target: .residPre)
        #expect(sameLength.values.shape == [4, 4])
    }

    @Test func badPairsSayWhich() throws {
        let model = try Self.llama()
        let ok = PatchPair(clean: [5, 17, 33], corrupted: [5, 21, 30], metric: .logitDifference(answer: 3, wrong: 11))
        func message(_ pairs: [PatchPair]) -> String {
            do { _ = try model.activationPatch(pairs: pairs, target: .headOutAllPos); return "" } catch { return "\(error)" }
        }
        #expect(message([ok, PatchPair(clean: [1, 2], corrupted: [1], metric: ok.metric)]).contains("pair 2"))
        #expect(message([ok, PatchPair(clean: [1, 2], corrupted: [1, 3], metric: ok.metric, position: 2)]).contains("outside the prompt"))
        #expect(message([PatchPair(clean: [1, 2], corrupted: [1, 3], metric: .probability(1_000_000))]).contains("out of range"))
        #expect(message([]).contains("at least one"))
        #expect(throws: InterpError.self) { try model.pathPatch(pairs: [ok], receiver: .headInputs([], position: .all)) }
        #expect(throws: InterpError.self) { try model.pathPatch(pairs: [ok], receiver: .headInputs([.init(layer: 1, head: 2, input: .k)], position: .all)) }
    }
}
