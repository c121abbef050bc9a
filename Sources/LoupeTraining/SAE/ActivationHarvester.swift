// Activations of one hook point over a corpus, for training SAEs: the model runs on windows of the token
// stream (only the blocks up to the hook, via `stopAtLayer`), and the rows go through a shuffle buffer so
// that a batch mixes many windows and positions (as SAELens's `ActivationsStore`).
//
// Position 0 of every window is left out: it is the attention sink, whose residual norm in Llama-style
// models is tens of times the others', and SAEs are conventionally trained without it.

import Foundation
import LoupeModels
import LoupeTensor

/// Runs a model over a token stream, window by window, and returns one hook point's activations.
public struct ActivationHarvester {
    public let model: HookedTransformer
    public let hook: HookName
    public let tokens: [Int]
    /// Tokens per window (SAELens `context_size`).
    public let contextSize: Int
    /// Windows per forward pass.
    public let windowsPerBatch: Int
    /// The next window's first token, and how many times the stream has been read to its end.
    public var position = 0
    public private(set) var epochs = 0

    /// - Throws: `SAEError.invalid` when the stream is shorter than one window, or the hook is not the
    ///   model's (with `HookError`).
    public init(model: HookedTransformer, hook: HookName, tokens: [Int], contextSize: Int, windowsPerBatch: Int = 8) throws {
        try model.checkHook(hook)
        guard contextSize >= 2, contextSize <= model.config.nCtx else {
            throw SAEError.invalid("context size must be in 2…\(model.config.nCtx), found \(contextSize)")
        }
        guard tokens.count >= contextSize else {
            throw SAEError.invalid("the corpus has \(tokens.count) tokens, fewer than one window of \(contextSize)")
        }
        self.model = model
        self.hook = hook
        self.tokens = tokens
        self.contextSize = contextSize
        self.windowsPerBatch = max(1, windowsPerBatch)
    }

    /// Activations per window (positions 1…contextSize−1).
    public var rowsPerWindow: Int { contextSize - 1 }

    /// Windows in one pass over the stream.
    public var windowCount: Int { tokens.count / contextSize }

    /// The hook's activations for the next `windowsPerBatch` windows: `[rows, d_in]`. Wraps around to
    /// the start of the stream at its end (counting `epochs`).
    public mutating func next() throws -> Tensor {
        var batch: [[Int]] = []
        for _ in 0..<windowsPerBatch {
            if position + contextSize > tokens.count { position = 0; epochs += 1 }
            batch.append(Array(tokens[position..<(position + contextSize)]))
            position += contextSize
        }
        return try ActivationHarvester.activations(model: model, hook: hook, windows: batch, dropFirst: true)
    }

    /// The activations of `hook` on `windows` `[batch][pos]` (all the same length), as `[rows, d_in]`
    /// rows in window order, without position 0 of each window when `dropFirst`.
    public static func activations(model: HookedTransformer, hook: HookName, windows: [[Int]], dropFirst: Bool) throws -> Tensor {
        try model.hookRows(hook, windows: windows, dropFirst: dropFirst)
    }
}

/// A fixed-size buffer of activation rows served in shuffled batches. When half of it has been served,
/// the served rows are replaced by fresh ones and the whole buffer is shuffled again, so every batch
/// mixes rows from many fills.
public struct ShuffleBuffer {
    public let capacity: Int
    public let width: Int
    private var rows: [Float]
    private var filled = 0
    private var order: [Int] = []
    private var served = 0
    private var rng: SeededGenerator
    private var pending: [Float] = []   // rows produced beyond what a refill needed

    public init(capacity: Int, width: Int, seed: UInt64) {
        self.capacity = max(capacity, 2)
        self.width = width
        self.rows = [Float](repeating: 0, count: self.capacity * width)
        self.rng = SeededGenerator(seed: seed, stream: 23)
    }

    /// The next `size` rows `[size, width]`, calling `source` for fresh rows (`[n, width]`) as needed.
    public mutating func next(_ size: Int, source: () throws -> Tensor) throws -> Tensor {
        guard size >= 1, size <= capacity / 2 else {
            throw SAEError.invalid("batch size must be in 1…\(capacity / 2) (half the shuffle buffer), found \(size)")
        }
        if filled < capacity || served + size > capacity / 2 { try refill(source) }
        var out = [Float](repeating: 0, count: size * width)
        rows.withUnsafeBufferPointer { r in
            out.withUnsafeMutableBufferPointer { o in
                for i in 0..<size {
                    let src = order[served + i]
                    (o.baseAddress! + i * width).update(from: r.baseAddress! + src * width, count: width)
                }
            }
        }
        served += size
        return Tensor(unchecked: [size, width], out)
    }

    /// Replaces the served rows (or fills an empty buffer) and reshuffles.
    private mutating func refill(_ source: () throws -> Tensor) throws {
        let targets: [Int] = filled < capacity ? Array(filled..<capacity) : Array(order.prefix(served))
        var t = 0
        while t < targets.count {
            if pending.isEmpty {
                let fresh = try source()
                guard fresh.shape.last == width else {
                    throw SAEError.shape(tensor: "harvested activations", expected: [-1, width], found: fresh.shape)
                }
                pending = fresh.scalars
                if pending.isEmpty { throw SAEError.invalid("the activation source returned no rows") }
            }
            let take = min(pending.count / width, targets.count - t)
            for i in 0..<take {
                let dst = targets[t + i] * width
                rows.replaceSubrange(dst..<(dst + width), with: pending[(i * width)..<((i + 1) * width)])
            }
            pending.removeFirst(take * width)
            t += take
        }
        filled = capacity
        order = Array(0..<capacity)
        for i in stride(from: capacity - 1, to: 0, by: -1) { order.swapAt(i, rng.nextInt(i + 1)) }
        served = 0
    }
}
