// First and second moments of one hook point's activations over a corpus (or one shard of it): the count,
// the sum and the sum of outer products — the mean, and ROME's key statistics C = E[k kᵀ] at an MLP's
// hook_post, follow from them. The corpus is read document by document in windows that never cross a
// document, as the neuron index reads it; every position is counted. Sums are kept in float64 and stored
// as F64 safetensors with the manifest (ShardRecord and settings) in the header's __metadata__, so shards
// merge by adding their sums, and a stopped run resumes from the last file it wrote.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor

/// Problems with an activation-statistics file.
public enum StatisticsError: Error, Equatable, CustomStringConvertible {
    case file(path: String, reason: String)
    case otherJob(path: String, expected: String, found: String)
    case merge(String)
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let r): return r
        case .file(let p, let r): return "\(p): \(r)"
        case .otherJob(let p, let e, let f):
            return "\(p) was computed with \(f); asked for \(e). Use the same model and settings, or a new --out file."
        case .merge(let r): return r
        }
    }
}

/// The moments of one hook point over a corpus shard.
@dynamicMemberLookup
public struct ActivationStatistics: Sendable {
    public static let format = "loupe-activation-stats/1"
    /// The widest hook whose outer products are kept: 16,384² float64 sums are 2 GB.
    public static let maxOuterWidth = 16_384

    public let hook: String
    /// Values per position (the hook's trailing dimensions flattened).
    public let width: Int
    public let window: Int
    /// Whether the sum of outer products is kept (width² values).
    public let outer: Bool
    public var record: ShardRecord
    /// Σ x over every counted position, and Σ x xᵀ (`[width, width]`, row-major) when `outer`.
    public internal(set) var sum: [Double]
    public internal(set) var sumOuter: [Double]

    public subscript<T>(dynamicMember key: KeyPath<ShardRecord, T>) -> T { record[keyPath: key] }

    /// Positions counted.
    public var count: Int { record.tokens }

    /// E[x] (zeros before anything is counted).
    public var mean: [Double] { sum.map { count > 0 ? $0 / Double(count) : 0 } }

    /// E[x xᵀ], `[width, width]` row-major (empty without `outer`).
    public var secondMoment: [Double] { sumOuter.map { count > 0 ? $0 / Double(count) : 0 } }

    /// Cov[x] = E[x xᵀ] − E[x] E[x]ᵀ (empty without `outer`).
    public var covariance: [Double] {
        guard outer else { return [] }
        let m = mean, s = secondMoment
        return (0..<(width * width)).map { s[$0] - m[$0 / width] * m[$0 % width] }
    }

    /// The settings two results must share to be parts of one job.
    var job: [(String, String)] {
        [("hook", hook), ("width", String(width)), ("window", String(window)), ("outer", outer ? "1" : "0")]
    }

    /// Fresh statistics of `hook` for `shard` of `corpus`.
    public init(model: HookedTransformer, hook: HookName, corpus: CorpusIdentity, shard: Shard = .whole, window: Int, outer: Bool = true) throws {
        try model.checkHook(hook)
        guard window >= 1, window <= model.config.nCtx else {
            throw StatisticsError.invalid("window must be 1…\(model.config.nCtx) (the model's context), found \(window)")
        }
        guard corpus.documents >= 1 else { throw StatisticsError.invalid("a corpus has at least one document, found \(corpus.documents)") }
        // One vector a position: a hook whose width changes with the window's length (attention patterns
        // and scores, [head, query, key]) has no per-position moments.
        let widths = try [[0], [0, 0]].map { try model.hookRows(hook, windows: [$0], dropFirst: false).shape[1] }
        guard widths[0] == widths[1] else {
            throw StatisticsError.invalid("\(hook) is not one vector per position (its width grows with the window: \(widths[0]), \(widths[1])); choose a residual, MLP or attention-output hook")
        }
        if outer, widths[0] > Self.maxOuterWidth {
            throw StatisticsError.invalid("\(hook) is \(widths[0]) wide: its sum of outer products would take \(widths[0] * widths[0] * 8 / 1_000_000) MB; use --no-outer, or a narrower hook")
        }
        self.hook = hook.description
        width = widths[0]
        self.window = window
        self.outer = outer
        record = ShardRecord(model: weightsFingerprint(of: model, layer: hook.layer ?? 0), corpus: corpus, shard: shard)
        sum = [Double](repeating: 0, count: width)
        sumOuter = outer ? [Double](repeating: 0, count: width * width) : []
    }

    /// Reads a statistics file, checking its manifest and that its arrays have the sizes it declares.
    public init(contentsOf path: String) throws {
        let file = try SafetensorsFile(path: path)
        let meta = file.metadata
        let bad = { (reason: String) -> Error in StatisticsError.file(path: path, reason: reason) }
        guard meta["format"] == Self.format else {
            throw bad("not Loupe activation statistics (format \(meta["format"].map { "\"\($0)\"" } ?? "missing"), expected \"\(Self.format)\")")
        }
        let fields = StoredFields(meta: meta, bad: bad)
        hook = try fields.text("hook")
        width = try fields.count("width", min: 1)
        window = try fields.count("window", min: 1)
        outer = try fields.flag("outer")
        record = try ShardRecord(pairs: meta, bad: bad)
        sum = try file.doubles("sum")
        guard sum.count == width else { throw bad("sum has \(sum.count) values; width is \(width)") }
        if outer {
            guard width <= Self.maxOuterWidth else { throw bad("width \(width) with outer products: wider than \(Self.maxOuterWidth)") }
            let (n, overflow) = width.multipliedReportingOverflow(by: width)
            sumOuter = try file.doubles("sum_outer")
            guard !overflow, sumOuter.count == n else { throw bad("sum_outer has \(sumOuter.count) values; expected width² = \(width)²") }
        } else {
            sumOuter = []
        }
        if let i = (sum + sumOuter).firstIndex(where: { !$0.isFinite }) { throw bad("a sum is not finite (value \(i))") }
    }

    /// Writes the statistics (sums in float64; the mean and second moment in float32 for reading
    /// elsewhere) with the manifest, atomically.
    public func write(to path: String) throws {
        var metadata = Dictionary(uniqueKeysWithValues: record.pairs)
        metadata["format"] = Self.format
        for (key, value) in job { metadata[key] = value }
        var doubles: [(name: String, shape: [Int], values: [Double])] = [("sum", [width], sum)]
        if outer { doubles.append(("sum_outer", [width, width], sumOuter)) }
        var entries = doubles.map { name, shape, values in
            (name: name, dtype: SafetensorsDType.F64, shape: shape, data: values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { Data($0) })
        }
        let floats = [("mean", [width], mean)] + (outer ? [("second_moment", [width, width], secondMoment)] : [])
        for (name, shape, values) in floats {
            entries.append((name, .F32, shape, values.map { Float($0).bitPattern.littleEndian }.withUnsafeBytes { Data($0) }))
        }
        do {
            try writeSafetensors(entries: entries, metadata: metadata, to: URL(fileURLWithPath: path))
        } catch {
            throw StatisticsError.file(path: path, reason: "cannot write: \(error)")
        }
    }

    /// Adds `rows` (`[n, width]`): their sum, and Xᵀ X (one float32 product a window, added in float64).
    mutating func add(_ rows: Tensor) throws {
        let n = rows.shape[0]
        guard n > 0 else { return }
        guard rows.shape[1] == width else {
            throw StatisticsError.invalid("\(hook) gave rows of \(rows.shape[1]) values; the statistics are \(width) wide")
        }
        if let i = rows.scalars.firstIndex(where: { !$0.isFinite }) {
            throw StatisticsError.invalid("\(hook) has a non-finite activation (\(rows.scalars[i]) at row \(i / width)): the model overflows on this text")
        }
        rows.scalars.withUnsafeBufferPointer { x in
            for r in 0..<n { for j in 0..<width { sum[j] += Double(x[r * width + j]) } }
            guard outer, let base = x.baseAddress else { return }
            var product = [Float](repeating: 0, count: width * width)
            product.withUnsafeMutableBufferPointer { p in
                BLAS.sgemm(transA: true, m: width, n: width, k: n, a: base, lda: width, b: base, ldb: width, c: p.baseAddress!, ldc: width)
            }
            for i in 0..<(width * width) { sumOuter[i] += Double(product[i]) }
        }
    }

    /// Combines the finished shards of one job into `output` (which must not exist): counts and sums
    /// added, in shard order. Refuses shards of other models, hooks, corpora or settings, a shard given
    /// twice, a missing or unfinished one.
    @discardableResult
    public static func merge(shards paths: [String], into output: String) throws -> ActivationStatistics {
        guard !FileManager.default.fileExists(atPath: output) else {
            throw StatisticsError.merge("\(output) exists; give a new file for the merged statistics")
        }
        let shards = try paths.map { try ActivationStatistics(contentsOf: $0) }
        let count: Int, tokens: Int
        do {
            (count, tokens) = try ShardRecord.checkShardSet(zip(paths, shards).map { ($0, $1.record, $1.job) })
        } catch let e as ShardSetError {
            throw StatisticsError.merge(e.description)
        }
        let ordered = shards.sorted { (try? Shard(parsing: $0.shard).index) ?? 0 < (try? Shard(parsing: $1.shard).index) ?? 0 }
        var merged = ordered[0]
        for s in ordered.dropFirst() {
            for j in 0..<merged.sum.count { merged.sum[j] += s.sum[j] }
            for j in 0..<merged.sumOuter.count { merged.sumOuter[j] += s.sumOuter[j] }
        }
        merged.record = ordered[0].record.merged(count: count, tokens: tokens)
        try merged.write(to: output)
        return merged
    }
}

extension HookedTransformer {
    /// Accumulates `stats` over its shard's documents (`document(i)` gives document i's tokens), in windows
    /// of `stats.window` tokens that never cross documents, writing the file at `path` every
    /// `windowsPerCommit` windows and at the end. Stops early after `maxWindows` windows. A file already
    /// at `path` for the same job is resumed; a finished one is returned as it is.
    @discardableResult
    public func accumulateStatistics(_ fresh: ActivationStatistics, path: String, document: (Int) throws -> [Int],
                                     windowsPerCommit: Int = 32, maxWindows: Int? = nil,
                                     progress: ((ShardRecord) -> Void)? = nil) throws -> ActivationStatistics {
        var stats = fresh
        if FileManager.default.fileExists(atPath: path) {
            let stored = try ActivationStatistics(contentsOf: path)
            if stored.record.mergedFrom > 0 {
                throw StatisticsError.otherJob(path: path, expected: "a shard to compute", found: "a merge of \(stored.record.mergedFrom) shards")
            }
            if let (key, want, have) = ShardRecord.firstDifference(asked: fresh.record, fresh.job, found: stored.record, stored.job) {
                throw StatisticsError.otherJob(path: path, expected: "\(key) \(want)", found: "\(key) \(have)")
            }
            stats = stored
        }
        if stats.record.finished {
            // An empty shard is finished before it starts; it still leaves its (empty) result for the merge.
            if !FileManager.default.fileExists(atPath: path) { try stats.write(to: path) }
            return stats
        }
        guard let hook = try? HookName(parsing: stats.hook) else { throw StatisticsError.file(path: path, reason: "hook \(stats.hook) is not a hook name") }
        var windows = 0, uncommitted = 0
        var tokens = stats.record.nextDocument < stats.record.endDocument ? try document(stats.record.nextDocument) : []
        outer: while stats.record.nextDocument < stats.record.endDocument {
            if stats.record.nextPosition > tokens.count {
                throw StatisticsError.file(path: path, reason: "it has reached token \(stats.record.nextPosition) of document \(stats.record.nextDocument), which has \(tokens.count) tokens: the corpus or tokenizer has changed; use a new --out file")
            }
            while stats.record.nextPosition < tokens.count {
                if let maxWindows, windows >= maxWindows { break outer }
                let start = stats.record.nextPosition
                let chunk = Array(tokens[start..<min(start + stats.window, tokens.count)])
                guard stats.record.advance(by: chunk.count) else {
                    throw StatisticsError.file(path: path, reason: "meta tokens \(stats.record.tokens) overflows when counting on; the file is damaged")
                }
                try stats.add(hookRows(hook, windows: [chunk], dropFirst: false))
                windows += 1
                uncommitted += 1
                if uncommitted >= windowsPerCommit {
                    try stats.write(to: path)
                    uncommitted = 0
                }
                progress?(stats.record)
            }
            stats.record.nextDocument += 1
            stats.record.nextPosition = 0
            if stats.record.nextDocument < stats.record.endDocument { tokens = try document(stats.record.nextDocument) }
        }
        stats.record.finished = stats.record.nextDocument == stats.record.endDocument
        try stats.write(to: path)
        progress?(stats.record)
        return stats
    }
}
