// One lane for model computation, off Swift's cooperative thread pool.
//
// Why one lane for the whole process rather than one per model: the forward pass and the interp
// functions keep no shared mutable state (a `HookedTransformer` is an immutable value and each call
// allocates its own buffers), but OpenBLAS's thread count is process-wide, and the patching sweep sets it
// to 1 for its own parallel batches and restores it afterwards. Two sweeps at once, or a sweep beside a
// plain forward pass, would race on that setting (OpenBLAS documents `openblas_set_num_threads` as unsafe
// while other calls run). On a machine of a few cores, BLAS's own threads already use them, so running
// computations one after another loses little.

import Foundation
import Hummingbird

/// Runs blocking model work one item at a time on its own thread, in FIFO order, and refuses work
/// beyond `maxPending` waiting items (503) so that a flood of requests cannot queue without bound.
final class ComputeLane: @unchecked Sendable {
    private let queue = DispatchQueue(label: "loupe.server.compute", qos: .userInitiated)
    private let lock = NSLock()
    private var pending = 0
    let maxPending: Int

    init(maxPending: Int) { self.maxPending = maxPending }

    /// Runs `work` on the lane and returns its result; throws 503 when the lane is full.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try admit()
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                defer { self.release() }
                continuation.resume(with: Result { try work() })
            }
        }
    }

    /// Queues `work` without waiting for it (jobs report through their own state).
    func submit(_ work: @escaping @Sendable () -> Void) throws {
        try admit()
        queue.async {
            defer { self.release() }
            work()
        }
    }

    private func admit() throws {
        lock.lock(); defer { lock.unlock() }
        guard pending < maxPending else {
            throw APIError(.serviceUnavailable, "the server is busy: \(pending) requests are waiting for the model; try again shortly")
        }
        pending += 1
    }

    private func release() {
        lock.lock(); defer { lock.unlock() }
        pending -= 1
    }
}
