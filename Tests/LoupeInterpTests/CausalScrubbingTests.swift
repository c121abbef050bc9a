import Foundation
import LoupeInterp
import LoupeModels
import LoupeTensor
import Testing

/// Causal scrubbing against a brute-force treeified evaluation: every node recomputed on every path with full
/// forward passes and hooks, each receiver's input built from the other sequence's residual stream at that
/// point (read from its hook, not summed from parts) with the kept senders' clean values swapped for their
/// values under the hypothesis. With two sequences every resampling draw is the other one, so the brute force
/// needs no knowledge of the engine's draws.
@Suite struct CausalScrubbingTests {
    typealias Edge = ScrubHypothesis.Edge

    final class BruteForce {
        let model: HookedTransformer
        let seqs: [[Int]]
        let edges: [Edge]
        let restKept: Bool
        var caches: [ActivationCache] = []
        /// A node reads the same inputs on every path (hypotheses are over edges), so its value on a sequence
        /// is computed once.
        var memo: [String: [Float]] = [:]
        var c: ModelConfig { model.config }
        var T: Int { seqs[0].count }

        init(_ model: HookedTransformer, _ seqs: [[Int]], _ edges: [Edge], restKept: Bool = false) throws {
            self.model = model; self.seqs = seqs; self.edges = edges; self.restKept = restKept
            for s in seqs {
                caches.append(try model.runWithCache(.tokens([s]), options: ForwardOptions(useAttnResult: true)).1)
            }
        }

        /// The senders kept into a receiver input. A key or value input belongs to a key-value head: the edges
        /// into any query head of its group count.
        func kept(_ receiver: String) -> [String] {
            let group = c.nHeads / c.nKeyValueHeads
            func names(_ e: Edge) -> Bool {
                e.to == receiver || e.to == String(receiver.split(separator: ".")[0]) || sameGroup(e.to, receiver, group)
            }
            if edges.contains(where: { $0.from == "*" && names($0) }) { return upstream(receiver) }
            if restKept && !edges.contains(where: names) { return upstream(receiver) }
            return edges.filter { e in
                if e.to == receiver || e.to == String(receiver.split(separator: ".")[0]) { return true }
                return sameGroup(e.to, receiver, group)
            }.map(\.from)
        }

        /// Whether edge target `a` (a key or value input, or a whole head) reaches key or value input `b`
        /// through the key-value head they share.
        func sameGroup(_ a: String, _ b: String, _ group: Int) -> Bool {
            guard b.hasSuffix(".k") || b.hasSuffix(".v"), a.hasPrefix("L") else { return false }
            let aHead = String(a.split(separator: ".")[0]), aKind = a.contains(".") ? String(a.suffix(2)) : String(b.suffix(2))
            guard aKind == String(b.suffix(2)) else { return false }
            let (l1, h1) = Self.head(aHead), (l2, h2) = Self.head(String(b.dropLast(2)))
            return l1 == l2 && h1 / group == h2 / group
        }

        /// Every sender a receiver input reads.
        func upstream(_ receiver: String) -> [String] {
            let layers = receiver == "logits" ? c.nLayers
                : receiver.hasPrefix("mlp") ? Int(receiver.dropFirst(3))! : Self.head(String(receiver.dropLast(2))).0
            var out = ["embed"]
            for l in 0..<layers { out += (0..<c.nHeads).map { "L\(l)H\($0)" } + (c.attnOnly ? [] : ["mlp\(l)"]) }
            if receiver.hasPrefix("mlp"), !c.parallelAttnMLP { out += (0..<c.nHeads).map { "L\(layers)H\($0)" } }
            return out
        }

        static func head(_ s: String) -> (Int, Int) {
            let parts = s.dropFirst().split(separator: "H")
            return (Int(parts[0])!, Int(parts[1])!)
        }

        func slice(_ t: Tensor, head h: Int) -> [Float] {
            let d = c.dModel
            var out = [Float](repeating: 0, count: T * d)
            for p in 0..<T { for j in 0..<d { out[p * d + j] = t.scalars[(p * c.nHeads + h) * d + j] } }
            return out
        }

        /// A sender's clean output on sequence x.
        func clean(_ sender: String, _ x: Int) -> [Float] {
            if sender == "embed" { return caches[x][.residPre(0)]!.scalars }
            if sender.hasPrefix("mlp") { return caches[x][.mlpOut(Int(sender.dropFirst(3))!)]!.scalars }
            let (l, h) = Self.head(sender)
            return slice(caches[x][.result(l)]!, head: h)
        }

        /// The residual stream a receiver input reads: the other sequence's, with the kept senders' parts
        /// replaced by their values on x under the hypothesis.
        func input(_ receiver: String, _ x: Int) throws -> [Float] {
            let other = 1 - x
            var r: [Float]
            if receiver == "logits" { r = caches[other][.residPost(c.nLayers - 1)]!.scalars }
            else if receiver.hasPrefix("mlp") {
                let l = Int(receiver.dropFirst(3))!
                r = caches[other][c.parallelAttnMLP ? .residPre(l) : .residMid(l)]!.scalars
            } else { r = caches[other][.residPre(Self.head(String(receiver.dropLast(2))).0)]!.scalars }
            for s in kept(receiver) {
                let now = try value(s, x), was = clean(s, other)
                for i in r.indices { r[i] += now[i] - was[i] }
            }
            return r
        }

        func tensor(_ r: [Float]) -> Tensor { Tensor(unchecked: [1, T, c.dModel], r) }

        /// A sender's output on x, recomputed (no memo: the treeified model).
        func value(_ sender: String, _ x: Int) throws -> [Float] {
            if let v = memo["\(sender)@\(x)"] { return v }
            let v = try compute(sender, x)
            memo["\(sender)@\(x)"] = v
            return v
        }

        func compute(_ sender: String, _ x: Int) throws -> [Float] {
            if sender == "embed" { return clean("embed", x) }
            if sender.hasPrefix("mlp") {
                let l = Int(sender.dropFirst(3))!
                var hooks = Hooks()
                hooks.add(c.parallelAttnMLP ? .residPre(l) : .residMid(l), Hooks.replace(with: tensor(try input(sender, x))))
                return try model.runWithCache(.tokens([seqs[x]]), select: .names([.mlpOut(l)]), hooks: hooks).1[.mlpOut(l)]!.scalars
            }
            let (l, h) = Self.head(sender)
            var captured: [HookName: Tensor] = [:]
            for (kind, name) in [("q", HookName.q(l)), ("k", .k(l)), ("v", .v(l))] {
                var hooks = Hooks()
                hooks.add(.residPre(l), Hooks.replace(with: tensor(try input("\(sender).\(kind)", x))))
                captured[name] = try model.runWithCache(.tokens([seqs[x]]), select: .names([name]), hooks: hooks).1[name]!
            }
            var hooks = Hooks()
            hooks.add(.residPre(l), Hooks.replace(with: tensor(try input("\(sender).q", x))))
            hooks.add(.k(l), Hooks.replace(with: captured[.k(l)]!))
            hooks.add(.v(l), Hooks.replace(with: captured[.v(l)]!))
            let result = try model.runWithCache(.tokens([seqs[x]]), select: .names([.result(l)]), hooks: hooks,
                                                options: ForwardOptions(useAttnResult: true)).1[.result(l)]!
            return slice(result, head: h)
        }

        func logits(_ x: Int) throws -> Tensor {
            var hooks = Hooks()
            hooks.add(.residPost(c.nLayers - 1), Hooks.replace(with: tensor(try input("logits", x))))
            return try model.run(.tokens([seqs[x]]), hooks: hooks)
        }
    }

    /// Mean next-token loss of `tokens` under `logits` at positions from..<T−1.
    static func loss(_ logits: Tensor, _ tokens: [Int], from: Int) -> Float {
        let v = logits.shape[2]
        var total = 0.0
        for p in from..<(tokens.count - 1) {
            let row = logits.scalars[(p * v)..<((p + 1) * v)].map(Double.init)
            let m = row.max()!
            total += m + log(row.reduce(0) { $0 + exp($1 - m) }) - row[tokens[p + 1]]
        }
        return Float(total / Double(tokens.count - 1 - from))
    }

    static func sequences(_ n: Int, length: Int, vocab: Int, seed: UInt64) -> [[Int]] {
        var rng = SeededGenerator(seed: seed, stream: 3)
        return (0..<n).map { _ in (0..<length).map { _ in rng.nextInt(vocab) } }
    }

    static func gpt2() throws -> HookedTransformer { try InterpFixtures.model() }
    static func llama() throws -> HookedTransformer {
        try ModelLoader.load(path: InterpFixtures.directory.appendingPathComponent("memit-llama").path).model
    }
    static func pythia() throws -> HookedTransformer {
        try ModelLoader.load(path: InterpFixtures.directory.appendingPathComponent("zoo/pythia").path).model
    }

    func checkAgainstBruteForce(_ model: HookedTransformer, _ edges: [Edge], rest: ScrubHypothesis.Rest? = nil, from: Int = 2) throws {
        let seqs = Self.sequences(2, length: 7, vocab: min(model.config.dVocab, 500), seed: 11)
        let hypothesis = ScrubHypothesis(name: "h", edges: edges, rest: rest)
        let result = try model.causalScrub(hypothesis, sequences: seqs, lossFrom: from, seed: 5)
        let logits = try model.scrubbedLogits(hypothesis, sequences: seqs, seed: 5)
        let brute = try BruteForce(model, seqs, edges, restKept: rest == .kept)
        var moved: Float = 0
        for x in 0..<2 {
            let expected = try brute.logits(x)
            let worst = zip(logits[x].scalars, expected.scalars).map { abs($0 - $1) }.max()!
            #expect(worst < 1e-5, "sequence \(x): scrubbed logits differ from the brute force's by \(worst)")
            #expect(abs(result.perSequence[x] - Self.loss(expected, seqs[x], from: from)) < 1e-4)
            let own = try model.run(.tokens([seqs[x]]))
            moved = max(moved, zip(own.scalars, expected.scalars).map { abs($0 - $1) }.max()!)
        }
        // The hypothesis moves the logits by far more than the tolerance (the float error is ~1e-6), so the
        // comparison can fail.
        #expect(moved > 2e-4, "the hypothesis moves the logits by only \(moved)")
        // The fully scrubbed model reads the other sequence's logits.
        var none: Float = 0
        for x in 0..<2 { none += Self.loss(try model.run(.tokens([seqs[1 - x]])), seqs[x], from: from) / 2 }
        #expect(abs(result.fullyScrubbedLoss - none) < 1e-4)
        var own: Float = 0
        for x in 0..<2 { own += Self.loss(try model.run(.tokens([seqs[x]])), seqs[x], from: from) / 2 }
        #expect(abs(result.modelLoss - own) < 1e-4)
    }

    @Test func inductionHypothesisEqualsBruteForceOnGPT2() throws {
        let m = try Self.gpt2()
        try checkAgainstBruteForce(m, ScrubHypothesis.induction(previousToken: (0, 1), induction: (1, 2)).edges, rest: .kept)
    }

    @Test func inductionHypothesisEqualsBruteForceOnLlama() throws {
        // Grouped-query attention: L2H1's key and value inputs are shared with L2H0, whose query keeps everything.
        let m = try Self.llama()
        try checkAgainstBruteForce(m, ScrubHypothesis.induction(previousToken: (1, 3), induction: (2, 1)).edges, rest: .kept)
    }

    @Test func restKeptWithWildcardsEqualsBruteForceOnLlama() throws {
        // Claims about an MLP (it reads the embeddings and one head) and one head's inputs; a wildcard edge;
        // every other input kept.
        try checkAgainstBruteForce(try Self.llama(), [
            Edge(from: "embed", to: "mlp1"), Edge(from: "L0H2", to: "mlp1"), Edge(from: "mlp1", to: "L3H0.k"),
            Edge(from: "L1H1", to: "L3H0.k"), Edge(from: "*", to: "L3H0.q"), Edge(from: "embed", to: "L3H0.v"),
        ], rest: .kept)
    }

    @Test func mixedHypothesisEqualsBruteForceOnGPT2() throws {
        try checkAgainstBruteForce(try Self.gpt2(), [
            Edge(from: "embed", to: "L0H0.q"), Edge(from: "embed", to: "L0H0.v"), Edge(from: "L0H0", to: "mlp0"),
            Edge(from: "embed", to: "mlp0"), Edge(from: "mlp0", to: "L1H3.q"), Edge(from: "L0H2", to: "L1H3.v"),
            Edge(from: "embed", to: "L1H3.k"), Edge(from: "L1H3", to: "logits"), Edge(from: "mlp1", to: "logits"),
            Edge(from: "mlp0", to: "mlp1"), Edge(from: "L1H0", to: "mlp1"), Edge(from: "embed", to: "logits"),
            Edge(from: "L0H3", to: "L1H0.k"), Edge(from: "embed", to: "L0H3.k"),
        ])
    }

    @Test func groupedQueryHypothesisEqualsBruteForceOnLlama() throws {
        // L2H2 and L2H3 share key-value head 1: the edges into L2H2.v and L2H3.k reach both.
        try checkAgainstBruteForce(try Self.llama(), [
            Edge(from: "embed", to: "L0H1.q"), Edge(from: "embed", to: "L0H1.k"), Edge(from: "embed", to: "L0H1.v"),
            Edge(from: "L0H1", to: "L2H3.k"), Edge(from: "L1H0", to: "L2H2.v"), Edge(from: "embed", to: "L2H3.q"),
            Edge(from: "L2H3", to: "logits"), Edge(from: "mlp1", to: "logits"), Edge(from: "L0H1", to: "mlp1"),
            Edge(from: "embed", to: "mlp1"), Edge(from: "L2H2", to: "logits"), Edge(from: "mlp3", to: "logits"),
            Edge(from: "L2H3", to: "mlp3"),
        ])
    }

    @Test func parallelBlocksEqualBruteForceOnPythia() throws {
        try checkAgainstBruteForce(try Self.pythia(), [
            Edge(from: "embed", to: "mlp0"), Edge(from: "embed", to: "L0H1.k"), Edge(from: "embed", to: "L0H1.q"),
            Edge(from: "L0H1", to: "mlp1"), Edge(from: "mlp0", to: "L1H0.v"), Edge(from: "mlp1", to: "logits"),
            Edge(from: "L1H0", to: "logits"), Edge(from: "embed", to: "logits"),
        ])
    }

    @Test func fullHypothesisIsTheModel() throws {
        for model in [try Self.gpt2(), try Self.llama()] {
            let seqs = Self.sequences(4, length: 9, vocab: 100, seed: 2)
            let r = try model.causalScrub(.full, sequences: seqs, lossFrom: 3, seed: 1)
            #expect(abs(r.scrubbedLoss - r.modelLoss) < 1e-4)
            #expect(abs(r.lossRecovered - 1) < 1e-3)
            let n = try model.causalScrub(.none, sequences: seqs, lossFrom: 3, seed: 1)
            #expect(abs(n.scrubbedLoss - n.fullyScrubbedLoss) < 1e-6)
            #expect(n.lossRecovered == 0)
            #expect(n.fullyScrubbedLoss > n.modelLoss)
        }
    }

    /// Every edge but those out of L0H2: on a model whose L0H2 writes nothing (W_O zeroed) the scrubbed model is
    /// the model; on the original it is not (so the comparison can fail: the random fixture's L0H2 moves the loss by
    /// ~4e-4, twenty times the float error).
    @Test func droppingAHeadThatWritesNothingChangesNothing() throws {
        let m = try Self.gpt2()
        let c = m.config
        var senders = ["embed"] + (0..<c.nHeads).map { "L0H\($0)" }.filter { $0 != "L0H2" }
        var edges: [Edge] = []
        for h in 0..<c.nHeads { for k in ["q", "k", "v"] { edges.append(Edge(from: "embed", to: "L0H\(h).\(k)")) } }
        edges += senders.map { Edge(from: $0, to: "mlp0") }
        senders.append("mlp0")
        for h in 0..<c.nHeads { edges += senders.map { Edge(from: $0, to: "L1H\(h)") } }
        senders += (0..<c.nHeads).map { "L1H\($0)" }
        edges += senders.map { Edge(from: $0, to: "mlp1") }
        senders.append("mlp1")
        edges += senders.map { Edge(from: $0, to: "logits") }
        let hypothesis = ScrubHypothesis(name: "no L0H2", edges: edges)

        var w = m.weights
        var wO = w.blocks[0].wO.scalars
        for i in 0..<c.dHead { for j in 0..<c.dModel { wO[(2 * c.dHead + i) * c.dModel + j] = 0 } }
        w.blocks[0].wO = Tensor(unchecked: w.blocks[0].wO.shape, wO)
        let silent = try HookedTransformer(config: c, weights: w)

        let seqs = Self.sequences(3, length: 8, vocab: 300, seed: 9)
        let onSilent = try silent.causalScrub(hypothesis, sequences: seqs, lossFrom: 2)
        #expect(abs(onSilent.scrubbedLoss - onSilent.modelLoss) < 2e-5, "\(onSilent.scrubbedLoss) vs \(onSilent.modelLoss)")
        let onOriginal = try m.causalScrub(hypothesis, sequences: seqs, lossFrom: 2)
        #expect(abs(onOriginal.scrubbedLoss - onOriginal.modelLoss) > 2e-4)
    }

    @Test func resamplingSeparatelyDrawsEachPartFromItsOwnSequence() throws {
        // With several sequences, `separately` and `together` differ, and each is fixed by the seed.
        let m = try Self.gpt2()
        let seqs = Self.sequences(6, length: 8, vocab: 300, seed: 4)
        var h = ScrubHypothesis.induction(previousToken: (0, 1), induction: (1, 2))
        let together = try m.causalScrub(h, sequences: seqs, lossFrom: 2, seed: 3)
        #expect(try m.causalScrub(h, sequences: seqs, lossFrom: 2, seed: 3).perSequence == together.perSequence)
        h.resample = .separately
        let separately = try m.causalScrub(h, sequences: seqs, lossFrom: 2, seed: 3)
        #expect(separately.perSequence != together.perSequence)
        #expect(separately.modelLoss == together.modelLoss)
    }

    @Test func badHypothesesAndInputsAreClearErrors() throws {
        let m = try Self.gpt2()
        let seqs = Self.sequences(2, length: 6, vocab: 100, seed: 1)
        func message(_ h: ScrubHypothesis, _ s: [[Int]] = []) -> String {
            do { _ = try m.causalScrub(h, sequences: s.isEmpty ? seqs : s); return "no error" } catch { return "\(error)" }
        }
        #expect(message(ScrubHypothesis(name: "x", edges: [Edge(from: "L7H0", to: "logits")])).contains("layer"))
        #expect(message(ScrubHypothesis(name: "x", edges: [Edge(from: "L0H9", to: "logits")])).contains("head"))
        #expect(message(ScrubHypothesis(name: "x", edges: [Edge(from: "attn0", to: "logits")])).contains("is not embed"))
        #expect(message(ScrubHypothesis(name: "x", edges: [Edge(from: "embed", to: "L1H0.z")])).contains("is not logits"))
        #expect(message(ScrubHypothesis(name: "x", edges: [Edge(from: "L1H0", to: "L0H1.q")])).contains("cannot reach"))
        #expect(message(ScrubHypothesis(name: "x", edges: [Edge(from: "mlp1", to: "mlp1")])).contains("cannot reach"))
        #expect(message(.full, [seqs[0]]).contains("at least two"))
        #expect(message(.full, [seqs[0], [1, 2, 3]]).contains("one length"))
        #expect(message(.full, [seqs[0], [1, 2, 3, 4, 5, 60000]]).contains("60000"))
        #expect(message(.full, [Array(repeating: 1, count: 65), Array(repeating: 2, count: 65)]).contains("context"))

        let gemma = try ModelLoader.load(path: InterpFixtures.directory.appendingPathComponent("zoo/gemma3").path).model
        #expect(throws: InterpError.self) { try gemma.causalScrub(.full, sequences: [[1, 2, 3], [3, 2, 1]]) }

        func decoded(_ json: String) -> String {
            do { _ = try ScrubHypothesis.decode(Data(json.utf8)); return "no error" } catch { return "\(error)" }
        }
        #expect(decoded(#"{"name": "a", "edge": []}"#).contains("edge"))
        #expect(decoded(#"{"name": "a", "edges": [{"from": "embed", "too": "logits"}]}"#).contains("too"))
        #expect(decoded(#"{"name": "a", "edges": [], "resample": "sometimes"}"#).contains("expected"))
        #expect(decoded("[1, 2]").contains("JSON object"))
        #expect(try ScrubHypothesis.decode(Data(#"{"name": "a", "edges": [{"from": "embed", "to": "logits"}]}"#.utf8)).edges.count == 1)
    }
}
