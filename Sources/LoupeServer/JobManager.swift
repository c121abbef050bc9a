// Long computations (patching sweeps) as jobs: submitted, polled for progress, cancelled.

import Foundation

/// One job's state, written by the compute lane and read by pollers.
final class Job: @unchecked Sendable {
    let id: String
    let kind: String
    private let lock = NSLock()
    private let created = Date()
    private var started: Date?
    private var finished: Date?
    private var state = "queued"
    private var done = 0, total = 0
    private var result: JobResult?
    private var error: String?
    private var cancelRequested = false

    init(id: String, kind: String) { self.id = id; self.kind = kind }

    var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelRequested }
    var isActive: Bool { lock.lock(); defer { lock.unlock() }; return state == "queued" || state == "running" }

    /// Marks the job running, unless it was cancelled while queued (then returns false).
    func start() -> Bool {
        lock.lock(); defer { lock.unlock() }
        if cancelRequested { state = "cancelled"; finished = Date(); return false }
        state = "running"; started = Date()
        return true
    }

    func progress(_ d: Int, _ t: Int) { lock.lock(); done = d; total = t; lock.unlock() }

    func finish(_ outcome: Result<JobResult, Error>) {
        lock.lock(); defer { lock.unlock() }
        finished = Date()
        switch outcome {
        case .success(let r): state = "done"; result = r; done = max(done, total)
        case .failure(is CancellationError): state = "cancelled"
        case .failure(let e): state = "failed"; error = APIError.from(e).message
        }
    }

    /// Asks the job to stop: a queued job never starts, a running one stops before its next batch.
    func cancel() {
        lock.lock(); defer { lock.unlock() }
        cancelRequested = true
        if state == "queued" { state = "cancelled"; finished = Date() }
    }

    var status: JobStatus {
        lock.lock(); defer { lock.unlock() }
        let end = finished ?? Date()
        return JobStatus(id: id, kind: kind, state: state, done: done, total: total,
                         elapsedSeconds: end.timeIntervalSince(started ?? created), result: result, error: error)
    }
}

/// The server's jobs: at most `maxActive` queued or running, the last `maxKept` remembered.
actor JobManager {
    private var jobs: [String: Job] = [:]
    private var order: [String] = []
    private let maxActive: Int, maxKept: Int
    private let lane: ComputeLane

    init(lane: ComputeLane, maxActive: Int, maxKept: Int) {
        self.lane = lane
        self.maxActive = maxActive
        self.maxKept = maxKept
    }

    /// Queues `work` as a new job on the compute lane; 429 when `maxActive` jobs are already active.
    func submit(kind: String, work: @escaping @Sendable (Job) throws -> JobResult) throws -> Job {
        let active = jobs.values.filter(\.isActive).count
        guard active < maxActive else {
            throw APIError(.tooManyRequests, "\(active) jobs are queued or running (the limit is \(maxActive)); wait for one or cancel it")
        }
        let job = Job(id: UUID().uuidString.lowercased(), kind: kind)
        try lane.submit {
            guard job.start() else { return }
            job.finish(Result { try work(job) })
        }
        jobs[job.id] = job
        order.append(job.id)
        // Forget the oldest finished jobs beyond the limit.
        while order.count > maxKept, let i = order.firstIndex(where: { !(jobs[$0]?.isActive ?? false) }) {
            jobs[order.remove(at: i)] = nil
        }
        return job
    }

    func job(_ id: String) throws -> Job {
        guard let job = jobs[id] else { throw APIError.notFound("no job '\(id)' (finished jobs are kept until \(maxKept) newer ones)") }
        return job
    }

    func all() -> [JobStatus] { order.compactMap { jobs[$0]?.status } }
}
