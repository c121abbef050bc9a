// Text generation with a KV cache: greedy, or sampled with temperature, top-k and top-p.

import LoupeTensor

/// How the next token is chosen.
public struct SamplingOptions: Sendable, Equatable {
    /// 0 means greedy (argmax).
    public var temperature: Float
    /// Keep only the k most likely tokens (0: no limit).
    public var topK: Int
    /// Keep the smallest set of tokens whose probability adds up to at least p (1: no limit).
    public var topP: Float
    public var seed: UInt64

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
    }

    public static let greedy = SamplingOptions()

    func validate() throws {
        guard temperature >= 0, temperature.isFinite else {
            throw ModelError.unsupported("temperature must be a finite number ≥ 0, found \(temperature)")
        }
        guard topK >= 0 else { throw ModelError.unsupported("top-k must be ≥ 0, found \(topK)") }
        guard topP > 0, topP <= 1 else { throw ModelError.unsupported("top-p must be in (0, 1], found \(topP)") }
    }
}

/// A small, fast, seedable generator (xoshiro256**, seeded by SplitMix64).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    /// Generators with the same seed and different `stream`s give independent sequences (stream 0 is
    /// the plain seeded generator).
    public init(seed: UInt64, stream: UInt64 = 0) {
        var x = seed ^ (stream &* 0x9E37_79B9_7F4A_7C15)
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// A uniform float in [0, 1).
    public mutating func nextUnit() -> Float { Float(next() >> 40) * (1.0 / Float(1 << 24)) }

    /// A standard normal sample (Box–Muller).
    public mutating func nextGaussian() -> Float {
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300)
        let u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// A uniform integer in `0..<n` (n > 0).
    public mutating func nextInt(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// Picks the next token from one row of logits (Hugging Face's order: temperature, then top-k, then top-p).
public func sampleToken(_ logits: ArraySlice<Float>, options: SamplingOptions, rng: inout SeededGenerator) -> Int {
    guard !logits.isEmpty else { return 0 }
    if options.temperature == 0 {
        var best = logits.startIndex
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return best - logits.startIndex
    }
    // Candidates, most likely first: the top k, or every token when top-p needs them ranked.
    let k = options.topK > 0 ? min(options.topK, logits.count) : logits.count
    let candidates: [(index: Int, value: Float)]
    if k == logits.count && options.topP >= 1 {
        candidates = logits.enumerated().map { (index: $0.offset, value: $0.element) }   // no ranking needed
    } else {
        candidates = topK(logits, k: k)
    }
    let t = options.temperature
    let m = candidates.reduce(-Float.infinity) { max($0, $1.value) }
    var probs = candidates.map { Float(exp(Double(($0.value - m) / t))) }
    var keep = probs.count
    if options.topP < 1 {
        let total = probs.reduce(0, +)
        var cumulative: Float = 0
        keep = 0
        for p in probs {
            cumulative += p / total
            keep += 1
            if cumulative >= options.topP { break }
        }
        probs.removeLast(probs.count - keep)
    }
    var u = rng.nextUnit() * probs.reduce(0, +)
    for i in 0..<keep {
        u -= probs[i]
        if u < 0 { return candidates[i].index }
    }
    return candidates[keep - 1].index
}

extension HookedTransformer {
    /// Continues `prompt` by up to `maxTokens` tokens, one forward step per token through a KV cache.
    /// Stops early at `stopToken` (which is included). Returns only the new tokens.
    ///
    /// `hooks` run on every forward step, as TransformerLens's `generate` under hooks with its KV cache: the
    /// first step shows them the prompt's positions, each later step the one new position (attention
    /// patterns: its row over every key so far). Every position is seen once, with the value it has in an
    /// uncached run of the whole sequence under the same hooks — so position-wise hooks (steering, SAE
    /// splices, ablating a head) continue exactly as if the full sequence were rerun each token.
    public func generate(prompt: [Int], maxTokens: Int, sampling: SamplingOptions = .greedy, stopToken: Int? = nil,
                         hooks: Hooks = [:], onToken: ((Int) -> Void)? = nil) throws -> [Int] {
        try sampling.validate()
        guard !prompt.isEmpty else { throw ModelError.emptyInput }
        guard maxTokens >= 0 else { throw ModelError.unsupported("maxTokens must be ≥ 0, found \(maxTokens)") }
        if maxTokens == 0 { return [] }
        guard prompt.count + maxTokens <= config.nCtx + 1 else {
            throw ModelError.sequenceTooLong(length: prompt.count + maxTokens - 1, nCtx: config.nCtx)
        }
        var rng = SeededGenerator(seed: sampling.seed)
        var cache = KVCache(config: config)
        // Room for every position at once (the last token is never fed back): no regrowth, whose copies
        // would leave the smaller caches behind in the heap.
        cache.reserve(prompt.count + maxTokens - 1, maxContext: config.nCtx)
        // Only the last position's logits are needed, unless a hook reads the final norm or the logits
        // (it then sees every prompt position, as in an uncached run).
        var options = ForwardOptions()
        options.lastPositionOnly = !hooks.functions.keys.contains {
            [.lnFinalScale, .lnFinalNormalized, .unembedIn, .unembedOut].contains($0)
        }
        var logits = try run([prompt], kvCache: &cache, hooks: hooks, options: options)
        var out: [Int] = []
        for step in 0..<maxTokens {
            let v = config.dVocab
            let last = logits.scalars[(logits.count - v)...]
            let next = sampleToken(last, options: sampling, rng: &rng)
            out.append(next)
            onToken?(next)
            if next == stopToken || step == maxTokens - 1 { break }
            logits = try run([[next]], kvCache: &cache, hooks: hooks)
        }
        return out
    }
}

import Foundation
