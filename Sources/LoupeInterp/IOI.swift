// Indirect object identification (Wang et al. 2022, "Interpretability in the Wild"): "When Mary and John
// went to the store, John gave a drink to" → " Mary". The dataset (templates × names × places × objects, in
// the ABBA and BABA orders), the ABC corruption (every name replaced by a fresh one, so that no name
// repeats), the logit difference IO − S at END, and the circuit found by path patching, stage by stage:
//
//   1. heads → logits (direct path): name movers lower the logit difference when corrupted, negative name
//      movers raise it;
//   2. heads → the name movers' queries at END: S-inhibition heads;
//   3. heads → the S-inhibition heads' values: induction heads (S2 attends to S1+1) and duplicate-token
//      heads (S2 attends to S1);
//   4. heads → the induction heads' keys: previous-token heads (S1+1 attends to S1).
//
// Each head carries its evidence: the path-patching effect (the change in the mean logit difference as a
// fraction of the clean one) and the attention that the class is defined by, averaged over the prompts.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor

/// One IOI prompt, its ABC corruption, and the positions the circuit is read at.
public struct IOIPrompt: Sendable, Codable, Equatable {
    /// The prompt (it ends before the indirect object) and its corruption.
    public var text: String
    public var corrupted: String
    /// The indirect object and the subject, as tokens' texts (with their leading space).
    public var io: String
    public var s: String
    /// Which template, and `ABBA` (IO first) or `BABA` (S first).
    public var template: Int
    public var order: String
    public var tokens: [Int]
    public var corruptedTokens: [Int]
    public var ioToken: Int
    public var sToken: Int
    /// Positions: the IO, the subject's first mention (S1), the token after it (S1+1), its second (S2), the last (END).
    public var ioPosition: Int
    public var s1Position: Int
    public var s2Position: Int
    public var endPosition: Int
    public var s1PlusOnePosition: Int { s1Position + 1 }
}

/// The IOI dataset generator.
public enum IOIDataset {
    /// The paper's templates in the BABA order (`[B]` the subject, `[A]` the indirect object), cut before
    /// the answer. ABBA prompts swap the first two names.
    public static let templates = [
        "Then, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to",
        "Then, [B] and [A] had a lot of fun at the [PLACE]. [B] gave a [OBJECT] to",
        "Then, [B] and [A] were working at the [PLACE]. [B] decided to give a [OBJECT] to",
        "Then, [B] and [A] were thinking about going to the [PLACE]. [B] wanted to give a [OBJECT] to",
        "Then, [B] and [A] had a long argument, and afterwards [B] said to",
        "After [B] and [A] went to the [PLACE], [B] gave a [OBJECT] to",
        "When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give it to",
        "When [B] and [A] got a [OBJECT] at the [PLACE], [B] decided to give the [OBJECT] to",
        "While [B] and [A] were working at the [PLACE], [B] gave a [OBJECT] to",
        "While [B] and [A] were commuting to the [PLACE], [B] gave a [OBJECT] to",
        "After the lunch, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to",
        "Afterwards, [B] and [A] went to the [PLACE]. [B] gave a [OBJECT] to",
        "Then, [B] and [A] had a long argument. Afterwards [B] said to",
        "The [PLACE] [B] and [A] went to had a [OBJECT]. [B] gave it to",
        "Friends [B] and [A] found a [OBJECT] at the [PLACE]. [B] gave it to",
    ]
    /// First names; those that are not one token (with a leading space) in a model's vocabulary are left out.
    public static let names = [
        "Mary", "John", "Alice", "Bob", "Sarah", "Michael", "David", "James", "Robert", "William", "Richard",
        "Thomas", "Daniel", "Paul", "Mark", "George", "Kevin", "Jessica", "Jennifer", "Emily", "Laura", "Anna",
        "Lisa", "Karen", "Susan", "Linda", "Nancy", "Rachel", "Kate", "Emma", "Tom", "Peter", "Andrew", "Chris",
        "Steven", "Brian", "Jason", "Eric", "Jacob", "Ryan", "Adam", "Sam", "Max", "Jack", "Henry", "Charles",
        "Joseph", "Frank", "Victoria", "Amy", "Helen", "Grace", "Rose", "Lucy", "Jane", "Tim", "Joe", "Dan",
        "Martin", "Simon", "Anthony", "Edward", "Patrick", "Scott", "Sophie", "Julia", "Claire", "Ben", "Alex",
    ]
    public static let places = ["store", "garden", "restaurant", "school", "hospital", "office", "house", "station", "park", "library"]
    public static let objects = ["ring", "kiss", "bone", "basketball", "computer", "necklace", "drink", "snack", "book", "letter"]

    /// The names that are one token with a leading space.
    public static func singleTokenNames(_ tokenizer: BPETokenizer) -> [(name: String, token: Int)] {
        names.compactMap { n in
            let ids = tokenizer.encode(" " + n, allowSpecial: false)
            return ids.count == 1 ? (n, ids[0]) : nil
        }
    }

    /// `count` prompts, half ABBA and half BABA, templates taken in turn, names/places/objects drawn with `seed`.
    /// - Throws: `InterpError.invalid` when fewer than five names are single tokens, or prompts cannot be built
    ///   (a template whose names do not tokenize on their own).
    public static func generate(count: Int, seed: UInt64, tokenizer: BPETokenizer, templates chosen: [Int]? = nil) throws -> [IOIPrompt] {
        guard count > 0 else { throw InterpError.invalid("an IOI dataset needs at least one prompt, found \(count)") }
        let pool = singleTokenNames(tokenizer)
        guard pool.count >= 5 else {
            throw InterpError.invalid("only \(pool.count) of the IOI names are single tokens in this vocabulary (at least 5 are needed)")
        }
        let use = chosen ?? Array(templates.indices)
        for t in use where !templates.indices.contains(t) { throw InterpError.outOfRange(what: "IOI template", value: t, count: templates.count) }
        guard !use.isEmpty else { throw InterpError.invalid("no IOI templates chosen") }
        var rng = SeededGenerator(seed: seed, stream: 11)
        var prompts: [IOIPrompt] = []
        var attempts = 0
        while prompts.count < count {
            attempts += 1
            guard attempts <= count * 50 else {
                throw InterpError.invalid("could not build \(count) IOI prompts whose names are single tokens in context (built \(prompts.count))")
            }
            let template = use[prompts.count % use.count]
            let abba = prompts.count % 2 == 0
            var picked: [Int] = []
            while picked.count < 5 {
                let i = rng.nextInt(pool.count)
                if !picked.contains(i) { picked.append(i) }
            }
            let (a, b) = (pool[picked[0]], pool[picked[1]])               // IO, S
            let (c, d, e) = (pool[picked[2]], pool[picked[3]], pool[picked[4]])   // the corruption's names
            let place = places[rng.nextInt(places.count)], object = objects[rng.nextInt(objects.count)]
            func fill(first: String, second: String, s2: String) -> String {
                var text = templates[template]
                    .replacingOccurrences(of: "[PLACE]", with: place).replacingOccurrences(of: "[OBJECT]", with: object)
                // BABA: "[B] and [A] … [B]"; the first two slots take `first` and `second`, the third `s2`.
                for name in [first, second, s2] {
                    guard let r = text.range(of: "[B]").map({ rb in
                        text.range(of: "[A]").map { ra in ra.lowerBound < rb.lowerBound ? ra : rb } ?? rb
                    }) ?? text.range(of: "[A]") else { break }
                    text.replaceSubrange(r, with: name)
                }
                return text
            }
            let text = abba ? fill(first: a.name, second: b.name, s2: b.name) : fill(first: b.name, second: a.name, s2: b.name)
            let corrupted = fill(first: c.name, second: d.name, s2: e.name)
            let tokens = tokenizer.encodeForModel(text), corruptedTokens = tokenizer.encodeForModel(corrupted)
            let ioAt = tokens.indices.filter { tokens[$0] == a.token }, sAt = tokens.indices.filter { tokens[$0] == b.token }
            guard tokens.count == corruptedTokens.count, ioAt.count == 1, sAt.count == 2 else { continue }
            prompts.append(IOIPrompt(text: text, corrupted: corrupted, io: " " + a.name, s: " " + b.name, template: template,
                                     order: abba ? "ABBA" : "BABA", tokens: tokens, corruptedTokens: corruptedTokens,
                                     ioToken: a.token, sToken: b.token, ioPosition: ioAt[0], s1Position: sAt[0],
                                     s2Position: sAt[1], endPosition: tokens.count - 1))
        }
        return prompts
    }
}

/// A head of the IOI circuit and its evidence.
public struct IOIHead: Sendable, Codable, Equatable {
    public var layer: Int
    public var head: Int
    /// The path-patching effect that selected it: (patched − clean) / clean, of the mean logit difference.
    public var effect: Float
    /// The attention its class is defined by (e.g. END → IO for name movers), mean over the prompts, and what it is.
    public var attention: Float
    public var attentionFrom: String
    public var attentionTo: String
    public var name: String { "L\(layer)H\(head)" }
}

/// The circuit, with everything that found it.
public struct IOICircuit: Sendable {
    public var prompts: [IOIPrompt]
    /// Mean logit difference IO − S at END: clean, and on the ABC corruption.
    public var logitDiff: Float
    public var corruptedLogitDiff: Float
    /// Each prompt's clean logit difference.
    public var logitDiffs: [Float]
    public var nameMovers: [IOIHead] = []
    public var negativeNameMovers: [IOIHead] = []
    public var sInhibition: [IOIHead] = []
    public var induction: [IOIHead] = []
    public var duplicateToken: [IOIHead] = []
    public var previousToken: [IOIHead] = []
    /// Heads with an effect at stage 3 that neither attention pattern explains.
    public var otherS2Senders: [IOIHead] = []
    /// Each stage's `[n_layers, n_heads]` effect ((patched − clean) / clean), by stage name
    /// (`logits`, `name_mover_queries`, `s_inhibition_values`, `induction_keys`).
    public var stages: [(name: String, effect: Tensor)] = []
    /// Mean logit difference with a class's heads (or the whole circuit) zero-ablated (`hook_z`, every position).
    public var knockouts: [(name: String, heads: [String], logitDiff: Float)] = []
    /// `[n_layers, n_heads]` mean attention of each kind the classes are read by: `end_to_io`, `end_to_s2`,
    /// `s2_to_s1_plus_1`, `s2_to_s1`, `s1_plus_1_to_s1`.
    public var attention: [String: Tensor] = [:]

    public var classes: [(name: String, heads: [IOIHead])] {
        [("name_movers", nameMovers), ("negative_name_movers", negativeNameMovers), ("s_inhibition", sInhibition),
         ("induction", induction), ("duplicate_token", duplicateToken), ("previous_token", previousToken)]
    }
}

/// How the circuit is searched.
public struct IOISearch: Sendable {
    /// A head joins a class when its path-patching effect is at least this fraction of the clean logit difference.
    public var threshold: Float = 0.02
    /// At most this many heads per class (the strongest).
    public var maxHeads: Int = 6
    public init(threshold: Float = 0.02, maxHeads: Int = 6) { self.threshold = threshold; self.maxHeads = maxHeads }
}

extension HookedTransformer {
    /// The logit difference IO − S at END of each prompt, on its clean and on its corrupted text.
    public func ioiLogitDiffs(_ prompts: [IOIPrompt], hooks: Hooks = [:]) throws -> (clean: [Float], corrupted: [Float]) {
        var clean: [Float] = [], corrupted: [Float] = []
        let v = config.dVocab
        for p in prompts {
            var options = ForwardOptions()
            options.lastPositionOnly = true
            let a = try run(.tokens([p.tokens]), hooks: hooks, options: options)
            let b = try run(.tokens([p.corruptedTokens]), hooks: hooks, options: options)
            clean.append(a.scalars[p.ioToken] - a.scalars[p.sToken])
            corrupted.append(b.scalars[p.ioToken] - b.scalars[p.sToken])
            _ = v
        }
        return (clean, corrupted)
    }

    /// Finds the IOI circuit on `prompts` by path patching (four stages, see the file's header), then measures
    /// what zero-ablating each class costs. `progress` hears (stage, sender layers done, sender layers) per stage.
    public func ioiCircuit(_ prompts: [IOIPrompt], search: IOISearch = IOISearch(),
                           progress: ((String, Int, Int) -> Void)? = nil) throws -> IOICircuit {
        guard !prompts.isEmpty else { throw InterpError.invalid("the IOI circuit needs at least one prompt") }
        guard search.threshold > 0, search.maxHeads > 0 else {
            throw InterpError.invalid("the IOI search needs a positive threshold and head count, found \(search.threshold) and \(search.maxHeads)")
        }
        for p in prompts {
            for t in p.tokens + p.corruptedTokens + [p.ioToken, p.sToken] where t < 0 || t >= config.dVocab {
                throw InterpError.tokenOutOfRange(token: t, dVocab: config.dVocab)
            }
            guard p.tokens.count == p.corruptedTokens.count, p.endPosition == p.tokens.count - 1,
                  [p.ioPosition, p.s1Position, p.s2Position].allSatisfy({ (0..<p.endPosition).contains($0) }), p.s1Position < p.s2Position,
                  p.tokens[p.ioPosition] == p.ioToken, p.tokens[p.s1Position] == p.sToken, p.tokens[p.s2Position] == p.sToken else {
                throw InterpError.invalid("IOI prompt \(p.text.debugDescription): its tokens and positions disagree (IO at \(p.ioPosition), S at \(p.s1Position) and \(p.s2Position), END \(p.endPosition) of \(p.tokens.count) tokens)")
            }
        }
        let (nL, h) = (config.nLayers, config.nHeads)
        let pairs = prompts.map { PatchPair(clean: $0.tokens, corrupted: $0.corruptedTokens, metric: .logitDifference(answer: $0.ioToken, wrong: $0.sToken)) }
        let (clean, corrupted) = try ioiLogitDiffs(prompts)
        let mean = { (x: [Float]) in x.reduce(0, +) / Float(max(x.count, 1)) }
        var circuit = IOICircuit(prompts: prompts, logitDiff: mean(clean), corruptedLogitDiff: mean(corrupted), logitDiffs: clean)
        guard circuit.logitDiff > 0 else {
            throw InterpError.invalid(String(format: "the model does not do the task: the mean logit difference IO − S is %.3f (it must be positive for path patching to find a circuit)", circuit.logitDiff))
        }

        // The attention the classes are read by, mean over the prompts.
        let kinds = ["end_to_io", "end_to_s2", "s2_to_s1_plus_1", "s2_to_s1", "s1_plus_1_to_s1"]
        var sums = [String: [Double]](uniqueKeysWithValues: kinds.map { ($0, [Double](repeating: 0, count: nL * h)) })
        let patterns = Set((0..<nL).map { HookName.pattern($0) })
        for p in prompts {
            let (_, cache) = try runWithCache(.tokens([p.tokens]), select: .names(patterns))
            let T = p.tokens.count
            let reads: [(String, Int, Int)] = [("end_to_io", p.endPosition, p.ioPosition), ("end_to_s2", p.endPosition, p.s2Position),
                                               ("s2_to_s1_plus_1", p.s2Position, p.s1PlusOnePosition), ("s2_to_s1", p.s2Position, p.s1Position),
                                               ("s1_plus_1_to_s1", p.s1PlusOnePosition, p.s1Position)]
            for l in 0..<nL {
                guard let a = cache[.pattern(l)] else { throw InterpError.invalid("\(HookName.pattern(l)) was not cached") }   // [1, head, q, k]
                for head in 0..<h {
                    for (kind, q, k) in reads { sums[kind]![l * h + head] += Double(a.scalars[(head * T + q) * T + k]) }
                }
            }
        }
        for (kind, s) in sums { circuit.attention[kind] = Tensor(unchecked: [nL, h], s.map { Float($0 / Double(prompts.count)) }) }
        func attention(_ kind: String, _ l: Int, _ head: Int) -> Float { circuit.attention[kind]?.scalars[l * h + head] ?? 0 }

        var taken = Set<Int>()
        /// The effect tensor of a stage and the heads past the threshold in the given direction.
        func stage(_ name: String, _ index: Int, receiver: PathReceiver) throws -> (Tensor, [(Int, Int, Float)]) {
            let label = "stage \(index)/4: \(name)"
            let result = try pathPatch(pairs: pairs, receiver: receiver) { done, total in progress?(label, done, total) }
            let effect = result.values.scalars.map { ($0 - result.clean) / abs(result.clean) }
            let t = Tensor(unchecked: [nL, h], effect)
            circuit.stages.append((name, t))
            let cells = effect.enumerated().map { ($0.offset / h, $0.offset % h, $0.element) }
            return (t, cells)
        }
        func pick(_ cells: [(Int, Int, Float)], negative: Bool) -> [(Int, Int, Float)] {
            let chosen = cells.filter { !taken.contains($0.0 * h + $0.1) && (negative ? $0.2 <= -search.threshold : $0.2 >= search.threshold) }
                .sorted { abs($0.2) > abs($1.2) }.prefix(search.maxHeads)
            for c in chosen { taken.insert(c.0 * h + c.1) }
            return Array(chosen)
        }
        func head(_ c: (Int, Int, Float), _ kind: String, _ from: String, _ to: String) -> IOIHead {
            IOIHead(layer: c.0, head: c.1, effect: c.2, attention: attention(kind, c.0, c.1), attentionFrom: from, attentionTo: to)
        }

        // 1. Direct effect on the logits.
        let (_, direct) = try stage("logits", 1, receiver: .logits)
        circuit.nameMovers = pick(direct, negative: true).map { head($0, "end_to_io", "END", "IO") }
        circuit.negativeNameMovers = pick(direct, negative: false).map { head($0, "end_to_io", "END", "IO") }
        // 2. The name movers' queries at END.
        let movers = circuit.nameMovers + circuit.negativeNameMovers
        if !movers.isEmpty {
            let receivers = movers.map { PathReceiver.ReceiverHead(layer: $0.layer, head: $0.head, input: .q) }
            let (_, cells) = try stage("name_mover_queries", 2, receiver: .headInputs(receivers, position: .scored))
            circuit.sInhibition = pick(cells, negative: true).map { head($0, "end_to_s2", "END", "S2") }
        }
        // Keys and values belong to key-value heads: under grouped-query attention a query head's k and v are
        // its group's, shared with the group's other query heads.
        let group = h / max(config.nKeyValueHeads, 1)
        func keyValueReceivers(_ heads: [IOIHead], _ input: PathReceiver.HeadInput) -> [PathReceiver.ReceiverHead] {
            var seen = Set<PathReceiver.ReceiverHead>()
            return heads.compactMap { hd in
                let r = PathReceiver.ReceiverHead(layer: hd.layer, head: hd.head / group, input: input)
                return seen.insert(r).inserted ? r : nil
            }
        }
        // 3. The S-inhibition heads' values: induction or duplicate-token heads by where S2 attends.
        if !circuit.sInhibition.isEmpty {
            let receivers = keyValueReceivers(circuit.sInhibition, .v)
            let (_, cells) = try stage("s_inhibition_values", 3, receiver: .headInputs(receivers, position: .all))
            for c in pick(cells, negative: true) {
                let toNext = attention("s2_to_s1_plus_1", c.0, c.1), toS1 = attention("s2_to_s1", c.0, c.1)
                if max(toNext, toS1) < 0.1 {
                    circuit.otherS2Senders.append(head(c, "end_to_s2", "END", "S2"))
                } else if toNext >= toS1 {
                    circuit.induction.append(head(c, "s2_to_s1_plus_1", "S2", "S1+1"))
                } else {
                    circuit.duplicateToken.append(head(c, "s2_to_s1", "S2", "S1"))
                }
            }
        }
        // 4. The induction heads' keys: previous-token heads.
        if !circuit.induction.isEmpty {
            let receivers = keyValueReceivers(circuit.induction, .k)
            let (_, cells) = try stage("induction_keys", 4, receiver: .headInputs(receivers, position: .all))
            circuit.previousToken = pick(cells, negative: true).map { head($0, "s1_plus_1_to_s1", "S1+1", "S1") }
        }

        // What zeroing each class (and the whole circuit) costs.
        var all: [IOIHead] = []
        for (name, heads) in circuit.classes where !heads.isEmpty {
            all += heads
            circuit.knockouts.append((name, heads.map(\.name), mean(try ioiLogitDiffs(prompts, hooks: zeroHeads(heads)).clean)))
        }
        if !all.isEmpty {
            circuit.knockouts.append(("circuit", all.map(\.name), mean(try ioiLogitDiffs(prompts, hooks: zeroHeads(all)).clean)))
        }
        return circuit
    }

    /// Hooks that zero the heads' `hook_z` at every position.
    func zeroHeads(_ heads: [IOIHead]) -> Hooks {
        var hooks = Hooks()
        let dHead = config.dHead, h = config.nHeads
        for (layer, group) in Dictionary(grouping: heads, by: \.layer) {
            let indices = group.map(\.head)
            hooks.add(.z(layer)) { z, _ in                                   // [batch, pos, head, d_head]
                let rows = z.count / (h * dHead)
                z.scalars.withUnsafeMutableBufferPointer { p in
                    for r in 0..<rows { for head in indices { for j in 0..<dHead { p[(r * h + head) * dHead + j] = 0 } } }
                }
            }
        }
        return hooks
    }
}
