// Next-token predictions batched across concurrent requests.
//
// A prediction on a short prompt reads every weight once for a few tokens (memory-bound), so requests that
// arrive while the compute lane is busy wait, then run together as one left-padded batch: one pass over
// the weights serves them all. Left padding with an attention mask counts positions over real tokens only
// (as TransformerLens; `HookedTransformer`'s padded batches are checked against it), and only the last
// position, a real token in every row, is unembedded.

import Foundation
import LoupeModels

/// Collects the prediction requests of one model and runs them on the compute lane in batches.
final class PredictBatcher: @unchecked Sendable {
    struct Item {
        let tokens: [Int]
        let k: Int
        let continuation: CheckedContinuation<[TokenPrediction], Error>
    }

    private let lane: ComputeLane
    private let lock = NSLock()
    private var pending: [Item] = []
    private var scheduled = false
    private var batches = 0
    /// Most prompts in one batch, and most batch × width tokens.
    let maxBatch: Int, maxTokens: Int

    init(lane: ComputeLane, maxBatch: Int = 64, maxTokens: Int = 4096) {
        self.lane = lane
        self.maxBatch = maxBatch
        self.maxTokens = maxTokens
    }

    /// Requests waiting, and batches run so far (for tests and monitoring).
    var waiting: Int { lock.lock(); defer { lock.unlock() }; return pending.count }
    var batchesRun: Int { lock.lock(); defer { lock.unlock() }; return batches }

    /// The `k` most likely next tokens after `tokens`, computed in a batch with whatever else is waiting.
    func predict(_ analyses: Analyses, tokens: [Int], k: Int) async throws -> [TokenPrediction] {
        try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            guard pending.count < lane.maxPending else {
                lock.unlock()
                continuation.resume(throwing: APIError(.serviceUnavailable, "the server is busy: \(pending.count) predictions are waiting; try again shortly"))
                return
            }
            pending.append(Item(tokens: tokens, k: k, continuation: continuation))
            let schedule = !scheduled
            scheduled = true
            lock.unlock()
            if schedule { self.schedule(analyses) }
        }
    }

    /// Queues a drain of the pending requests on the lane (or fails them when the lane is full).
    private func schedule(_ analyses: Analyses) {
        do {
            try lane.submit { self.drain(analyses) }
        } catch {
            lock.lock()
            let failed = pending
            pending = []
            scheduled = false
            lock.unlock()
            for item in failed { item.continuation.resume(throwing: error) }
        }
    }

    /// Runs one batch of the waiting requests, then queues another drain if more are waiting.
    private func drain(_ analyses: Analyses) {
        lock.lock()
        var batch: [Item] = []
        var width = 0
        while let next = pending.first, batch.count < maxBatch,
              batch.isEmpty || (batch.count + 1) * max(width, next.tokens.count) <= maxTokens {
            batch.append(pending.removeFirst())
            width = max(width, next.tokens.count)
        }
        let more = !pending.isEmpty
        if !more { scheduled = false }
        batches += 1
        lock.unlock()
        if more { schedule(analyses) }
        do {
            let results = try analyses.predictBatch(batch.map { ($0.tokens, $0.k) })
            for (item, result) in zip(batch, results) { item.continuation.resume(returning: result) }
        } catch {
            for item in batch { item.continuation.resume(throwing: error) }
        }
    }
}
