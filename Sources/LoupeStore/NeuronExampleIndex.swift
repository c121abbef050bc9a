// A SQLite store (GRDB) of each neuron's max-activating examples over a corpus, for one layer of one model.
// The corpus is read document by document, in windows that never cross a document, so an example's place is
// (document, position) and a shard of the corpus (`--shard I/N`, see Corpus.swift) finds exactly the examples
// that a whole run finds in its documents. Every batch of windows is committed together with the place
// reached: a killed build resumes where its last commit left off. The meta table is the result's manifest
// (model, corpus, shard, settings, progress, Loupe version); `merge` combines the N shards of one job into
// the index a single run would have built.

import Foundation
import GRDB
import LoupeFormats
import LoupeInterp
import LoupeModels
import LoupeTensor

/// Problems with an example index.
public enum IndexError: Error, Equatable, CustomStringConvertible {
    case otherModel(path: String, expected: String, found: String)
    case otherSettings(path: String, expected: String, found: String)
    case database(path: String, reason: String)
    case merge(String)

    public var description: String {
        switch self {
        case .otherModel(let p, let e, let f):
            return "\(p) was built for another model (\(f)); this one is \(e). Use a new --db file."
        case .otherSettings(let p, let e, let f):
            return "\(p) was built with \(f); asked for \(e). Use the same settings or a new --db file."
        case .database(let p, let r): return "\(p): \(r)"
        case .merge(let r): return r
        }
    }
}

/// A neuron's stored example.
public struct StoredExample: Sendable, Equatable {
    public let neuron: Int
    public let activation: Float
    /// The corpus document, the token position in it, the tokens around it, and where the position sits among them.
    public let document: Int
    public let position: Int
    public let context: [Int]
    public let focus: Int

    public init(neuron: Int, activation: Float, document: Int, position: Int, context: [Int], focus: Int) {
        (self.neuron, self.activation, self.document, self.position, self.context, self.focus) = (neuron, activation, document, position, context, focus)
    }

    /// Best first: higher activation, then earlier in the corpus. A total order, so a whole run and a merge
    /// of shards keep the same k.
    static func ranks(_ a: StoredExample, before b: StoredExample) -> Bool {
        if a.activation != b.activation { return a.activation > b.activation }
        return (a.document, a.position) < (b.document, b.position)
    }
}

/// What an index is, where its build has got to, and who made it: the index's meta table. The shard's
/// provenance and progress (`record`) read as the manifest's own fields: `manifest.nextDocument`.
@dynamicMemberLookup
public struct IndexManifest: Equatable, Sendable, Codable {
    public static let currentFormat = 2

    public var format: Int
    /// The sizes stored rows are checked against.
    public var dMLP: Int
    public var dVocab: Int
    public var layer: Int
    public var k: Int
    public var context: Int
    public var window: Int
    public var record: ShardRecord

    public subscript<T>(dynamicMember key: WritableKeyPath<ShardRecord, T>) -> T {
        get { record[keyPath: key] }
        set { record[keyPath: key] = newValue }
    }

    /// The settings two results must share to be parts of one job.
    var job: [(String, String)] {
        [("layer", String(layer)), ("k", String(k)), ("context", String(context)), ("window", String(window)),
         ("d_mlp", String(dMLP)), ("d_vocab", String(dVocab))]
    }

    fileprivate var rows: [(String, String)] {
        [("format", String(format)), ("d_mlp", String(dMLP)), ("d_vocab", String(dVocab)),
         ("layer", String(layer)), ("k", String(k)), ("context", String(context)), ("window", String(window))] + record.pairs
    }

    /// Reads and checks a stored manifest.
    fileprivate init(meta: [String: String], path: String) throws {
        let bad = { (reason: String) -> Error in IndexError.database(path: path, reason: reason) }
        if meta["format"] == nil, meta["settings"] != nil {
            throw bad("this index was built by an earlier Loupe (before shards and documents); build it again with a new --db file")
        }
        let fields = StoredFields(meta: meta, bad: bad)
        format = try fields.count("format")
        guard format == Self.currentFormat else {
            throw bad("index format \(format); this Loupe reads format \(Self.currentFormat). Build it again with this Loupe, or read it with the Loupe that built it")
        }
        dMLP = try fields.count("d_mlp", min: 1)
        dVocab = try fields.count("d_vocab", min: 1)
        layer = try fields.count("layer")
        k = try fields.count("k", min: 1)
        context = try fields.count("context")
        window = try fields.count("window", min: 1)
        record = try ShardRecord(pairs: meta, bad: bad)
    }

    init(model: String, dMLP: Int, dVocab: Int, layer: Int, k: Int, context: Int, window: Int, corpus: CorpusIdentity, shard: Shard) {
        (format, self.dMLP, self.dVocab) = (Self.currentFormat, dMLP, dVocab)
        (self.layer, self.k, self.context, self.window) = (layer, k, context, window)
        record = ShardRecord(model: model, corpus: corpus, shard: shard)
    }
}

/// The max-activating examples of one layer's neurons over one corpus (or one shard of it).
public final class NeuronExampleIndex {
    public let path: String
    public private(set) var manifest: IndexManifest
    private let queue: DatabaseQueue

    public var layer: Int { manifest.layer }
    public var k: Int { manifest.k }

    /// An identity for the weights, so an index is never read for another model.
    public static func fingerprint(of model: HookedTransformer, layer: Int) -> String { weightsFingerprint(of: model, layer: layer) }

    /// Opens (or creates) the index at `path` for `model`'s `layer` over `shard` of `corpus`, with `k`
    /// examples per neuron, `context` tokens either side and windows of `window` tokens. An existing index
    /// must match all of these (it is then resumed).
    public init(path: String, model: HookedTransformer, layer: Int, corpus: CorpusIdentity, shard: Shard = .whole,
                k: Int, context: Int, window: Int) throws {
        guard layer >= 0 && layer < model.config.nLayers else {
            throw InterpError.outOfRange(what: "layer", value: layer, count: model.config.nLayers)
        }
        guard k >= 1, context >= 0, window >= 1 else { throw InterpError.invalid("k and window must be ≥ 1, context ≥ 0") }
        guard window <= model.config.nCtx else {
            throw InterpError.invalid("window must be 1…\(model.config.nCtx) (the model's context), found \(window)")
        }
        guard corpus.documents >= 1 else { throw InterpError.invalid("a corpus has at least one document, found \(corpus.documents)") }
        let asked = IndexManifest(model: Self.fingerprint(of: model, layer: layer), dMLP: model.config.dMLP, dVocab: model.config.dVocab,
                                  layer: layer, k: k, context: context, window: window, corpus: corpus, shard: shard)
        self.path = path
        queue = try Self.openQueue(path)
        manifest = asked
        manifest = try wrap {
            try queue.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    CREATE TABLE IF NOT EXISTS examples (
                        neuron INTEGER NOT NULL, activation REAL NOT NULL, document INTEGER NOT NULL, position INTEGER NOT NULL,
                        context BLOB NOT NULL, focus INTEGER NOT NULL);
                    CREATE INDEX IF NOT EXISTS examples_by_neuron ON examples (neuron, activation DESC);
                    """)
                let stored = try Self.meta(db, path: path)
                if stored.isEmpty {
                    for (key, value) in asked.rows {
                        try db.execute(sql: "INSERT INTO meta (key, value) VALUES (?, ?)", arguments: [key, value])
                    }
                    return asked
                }
                let found = try IndexManifest(meta: stored, path: path)
                if found.mergedFrom > 0 {
                    throw IndexError.otherSettings(path: path, expected: "a shard to build", found: "a merge of \(found.mergedFrom) shards, which is finished")
                }
                if let (key, want, have) = ShardRecord.firstDifference(asked: asked.record, asked.job, found: found.record, found.job) {
                    if key == "model" { throw IndexError.otherModel(path: path, expected: want, found: have) }
                    throw IndexError.otherSettings(path: path, expected: "\(key) \(want)", found: "\(key) \(have)")
                }
                return found
            }
        }
    }

    /// Opens an existing index for reading, checking that it belongs to `model` and `layer`.
    public convenience init(openExisting path: String, model: HookedTransformer, layer: Int) throws {
        try self.init(openExisting: path)
        let fingerprint = Self.fingerprint(of: model, layer: layer)
        guard manifest.layer == layer else {
            throw IndexError.otherSettings(path: path, expected: "layer \(layer)", found: "layer \(manifest.layer)")
        }
        guard manifest.model == fingerprint, manifest.dMLP == model.config.dMLP, manifest.dVocab == model.config.dVocab else {
            throw IndexError.otherModel(path: path, expected: fingerprint, found: manifest.model)
        }
    }

    /// Opens an existing index (a shard or a merge) for reading, without a model: its manifest is checked
    /// for consistency, and rows against the sizes it records.
    public init(openExisting path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw FileError.notFound(path: path) }
        self.path = path
        queue = try Self.openQueue(path)
        let stored: [String: String]
        do {
            stored = try queue.read { db in try Self.meta(db, path: path) }
        } catch let e as IndexError {
            throw e
        } catch {
            throw IndexError.database(path: path, reason: "not a Loupe neuron index (\(error))")
        }
        manifest = try IndexManifest(meta: stored, path: path)
    }

    private static func openQueue(_ path: String) throws -> DatabaseQueue {
        do { return try DatabaseQueue(path: path) } catch { throw IndexError.database(path: path, reason: "\(error)") }
    }

    /// The meta table as text; a key twice or a value that is not text is an error.
    private static func meta(_ db: Database, path: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT key, value FROM meta") {
            guard let key = String.fromDatabaseValue(row["key"]), let value = String.fromDatabaseValue(row["value"]) else {
                throw IndexError.database(path: path, reason: "a meta row is not text (key \(row["key"] as DatabaseValue), value \(row["value"] as DatabaseValue))")
            }
            guard out.updateValue(value, forKey: key) == nil else {
                throw IndexError.database(path: path, reason: "meta key '\(key)' is stored twice")
            }
        }
        return out
    }

    private func wrap<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as IndexError { throw e } catch let e as InterpError { throw e } catch {
            throw IndexError.database(path: path, reason: "\(error)")
        }
    }

    private static let columns = "neuron, activation, document, position, context, focus"
    private static let order = "activation DESC, document, position"

    /// Every stored example, by neuron, best first.
    public func allExamples() throws -> [Int: [StoredExample]] {
        try wrap {
            try queue.read { db in
                var out: [Int: [StoredExample]] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT \(Self.columns) FROM examples ORDER BY neuron, \(Self.order)") {
                    let e = try example(row)
                    out[e.neuron, default: []].append(e)
                }
                return out
            }
        }
    }

    /// One neuron's examples, best first.
    public func examples(neuron: Int) throws -> [StoredExample] {
        try wrap {
            try queue.read { db in
                try Row.fetchAll(db, sql: "SELECT \(Self.columns) FROM examples WHERE neuron = ? ORDER BY \(Self.order)",
                                 arguments: [neuron]).map(example)
            }
        }
    }

    /// One stored row, checked: a database is input, and a tampered one must give an error, not a trap.
    private func example(_ row: Row) throws -> StoredExample {
        func bad(_ what: String) -> IndexError { .database(path: path, reason: "an example row has \(what); the index is damaged") }
        let (dMLP, dVocab) = (manifest.dMLP, manifest.dVocab)
        guard let neuron = Int.fromDatabaseValue(row["neuron"]), (0..<dMLP).contains(neuron) else {
            throw bad("neuron \(row["neuron"] as DatabaseValue), expected 0..<\(dMLP)")
        }
        guard let activation = Double.fromDatabaseValue(row["activation"]), activation.isFinite else {
            throw bad("activation \(row["activation"] as DatabaseValue), expected a finite number")
        }
        guard let document = Int.fromDatabaseValue(row["document"]), (0..<manifest.documents).contains(document) else {
            throw bad("document \(row["document"] as DatabaseValue), expected 0..<\(manifest.documents)")
        }
        guard let position = Int.fromDatabaseValue(row["position"]), position >= 0 else {
            throw bad("position \(row["position"] as DatabaseValue), expected a position ≥ 0")
        }
        guard let blob = Data.fromDatabaseValue(row["context"]), blob.count % 4 == 0 else {
            throw bad("a context that is not a blob of 32-bit token ids")
        }
        let context = stride(from: 0, to: blob.count, by: 4).map { i in
            Int(Int32(littleEndian: blob[blob.startIndex + i..<blob.startIndex + i + 4].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
        }
        if let id = context.first(where: { !(0..<dVocab).contains($0) }) { throw bad("token id \(id) in its context, outside 0..<\(dVocab)") }
        guard let focus = Int.fromDatabaseValue(row["focus"]), (0..<context.count).contains(focus) else {
            throw bad("focus \(row["focus"] as DatabaseValue), expected 0..<\(context.count) (its context's length)")
        }
        return StoredExample(neuron: neuron, activation: Float(activation), document: document, position: position, context: context, focus: focus)
    }

    private static func insert(_ e: StoredExample, _ db: Database) throws {
        var blob = Data()
        for t in e.context { withUnsafeBytes(of: Int32(t).littleEndian) { blob.append(contentsOf: $0) } }
        try db.execute(sql: "INSERT INTO examples (\(columns)) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [e.neuron, Double(e.activation), e.document, e.position, blob, e.focus])
    }

    private static func writeMeta(_ manifest: IndexManifest, _ db: Database) throws {
        for (key, value) in manifest.rows {
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [key, value])
        }
    }

    /// Replaces the examples of the given neurons and records the place reached, in one transaction.
    func commit(_ best: [Int: [StoredExample]], changed: Set<Int>, progress: IndexManifest) throws {
        try wrap {
            try queue.write { db in
                for n in changed {
                    try db.execute(sql: "DELETE FROM examples WHERE neuron = ?", arguments: [n])
                    for e in best[n] ?? [] { try Self.insert(e, db) }
                }
                try Self.writeMeta(progress, db)
            }
        }
        manifest = progress
    }

    /// Checks the stored examples against the manifest: at most k a neuron, each inside the indexed part of
    /// the shard. Returns them, by neuron.
    func checkedExamples() throws -> [Int: [StoredExample]] {
        let best = try allExamples()
        for (n, list) in best { _ = try checked(list, neuron: n) }
        return best
    }

    /// `list` (one neuron's examples), checked against the manifest.
    func checked(_ list: [StoredExample], neuron n: Int) throws -> [StoredExample] {
        let m = manifest
        if list.count > m.k {
            throw IndexError.database(path: path, reason: "neuron \(n) has \(list.count) examples stored, more than k = \(m.k)")
        }
        if let e = list.first(where: { $0.document < m.firstDocument || $0.document >= m.endDocument }) {
            throw IndexError.database(path: path, reason: "neuron \(n) has an example in document \(e.document), outside the shard's documents \(m.firstDocument)..<\(m.endDocument)")
        }
        if let e = list.first(where: { ($0.document, $0.position) >= (m.nextDocument, m.nextPosition) }) {
            throw IndexError.database(path: path, reason: "neuron \(n) has an example at document \(e.document) token \(e.position), beyond the place indexed (document \(m.nextDocument) token \(m.nextPosition))")
        }
        return list
    }

    /// Combines the finished shards of one job into `output` (which must not exist): every neuron's k best
    /// examples over all shards, which is what one run over the whole corpus keeps. Refuses shards of other
    /// models, corpora or settings, a shard given twice, a missing or unfinished one. The result is written
    /// to a temporary file and renamed, so a merge that is stopped leaves no partial index behind.
    @discardableResult
    public static func merge(shards paths: [String], into output: String) throws -> IndexManifest {
        guard !paths.isEmpty else { throw IndexError.merge("give the shard results to merge") }
        guard !FileManager.default.fileExists(atPath: output) else {
            throw IndexError.merge("\(output) exists; give a new file for the merged index")
        }
        let shards = try paths.map { try NeuronExampleIndex(openExisting: $0) }
        let count: Int, tokens: Int
        do {
            (count, tokens) = try ShardRecord.checkShardSet(shards.map { ($0.path, $0.manifest.record, $0.manifest.job) })
        } catch let e as ShardSetError {
            throw IndexError.merge(e.description)
        }
        let first = shards[0].manifest
        var merged = first
        merged.record = first.record.merged(count: count, tokens: tokens)

        let temporary = output + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.removeItem(atPath: temporary)
        do {
            let queue = try openQueue(temporary)
            try queue.write { db in
                try db.execute(sql: """
                    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    CREATE TABLE examples (
                        neuron INTEGER NOT NULL, activation REAL NOT NULL, document INTEGER NOT NULL, position INTEGER NOT NULL,
                        context BLOB NOT NULL, focus INTEGER NOT NULL);
                    CREATE INDEX examples_by_neuron ON examples (neuron, activation DESC);
                    """)
                try writeMeta(merged, db)
                // Neuron by neuron, so memory holds N·k examples at a time, whatever the layer's width.
                for n in 0..<first.dMLP {
                    let all = try shards.flatMap { try $0.checked($0.examples(neuron: n), neuron: n) }
                    for e in all.sorted(by: StoredExample.ranks).prefix(first.k) { try insert(e, db) }
                }
            }
            try queue.close()
            guard rename(temporary, output) == 0 else {
                throw IndexError.merge("cannot move the merged index to \(output): \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        return merged
    }
}

extension HookedTransformer {
    /// Builds (or resumes) `index` over its shard's documents; `document(i)` gives document i's tokens.
    /// Each document is read in windows of `index`'s window size that never cross into the next; every
    /// `windowsPerCommit` windows the examples found and the place reached are committed together. Stops
    /// early after `maxWindows` windows (for tests and partial runs). Returns the manifest as committed.
    @discardableResult
    public func buildNeuronIndex(_ index: NeuronExampleIndex, document: (Int) throws -> [Int],
                                 windowsPerCommit: Int = 8, maxWindows: Int? = nil,
                                 progress: ((IndexManifest) -> Void)? = nil) throws -> IndexManifest {
        var state = index.manifest
        let (m, k, window, context) = (config.dMLP, state.k, state.window, state.context)
        guard state.dMLP == m else {
            throw IndexError.otherModel(path: index.path, expected: "d_mlp \(m)", found: "d_mlp \(state.dMLP)")
        }
        var best = try index.checkedExamples()
        if state.finished { return state }
        var changed = Set<Int>()
        var windows = 0, uncommitted = 0
        var tokens = state.nextDocument < state.endDocument ? try document(state.nextDocument) : []
        func flush() throws {
            state.finished = state.nextDocument == state.endDocument
            try index.commit(best, changed: changed, progress: state)
            changed.removeAll()
            uncommitted = 0
        }
        outer: while state.nextDocument < state.endDocument {
            if state.nextPosition > tokens.count {
                throw IndexError.database(path: index.path, reason: "the index has reached token \(state.nextPosition) of document \(state.nextDocument), which has \(tokens.count) tokens: the corpus or tokenizer has changed; use a new --db file")
            }
            while state.nextPosition < tokens.count {
                if let maxWindows, windows >= maxWindows { break outer }
                let start = state.nextPosition
                let chunk = Array(tokens[start..<min(start + window, tokens.count)])
                let acts = try neuronActivations(layer: index.layer, tokens: chunk)   // [pos, d_mlp]
                if let i = acts.scalars.firstIndex(where: { !$0.isFinite }) {
                    throw InterpError.invalid("neuron \(i % m) is \(acts.scalars[i]) at document \(state.nextDocument) token \(start + i / m): the model overflows on this text, and an index keeps finite activations only")
                }
                for n in 0..<m {
                    var list = best[n] ?? []
                    let floor = list.count == k ? list.last?.activation ?? -Float.infinity : -Float.infinity
                    var touched = false
                    for p in 0..<chunk.count {
                        // Later places rank below earlier ones at equal activation: an equal one cannot enter a full list.
                        let a = acts.scalars[p * m + n]
                        guard a > floor || list.count < k else { continue }
                        let at = start + p
                        let lo = max(0, at - context), hi = min(tokens.count, at + context + 1)
                        list.append(StoredExample(neuron: n, activation: a, document: state.nextDocument, position: at,
                                                  context: Array(tokens[lo..<hi]), focus: at - lo))
                        touched = true
                    }
                    if touched {
                        best[n] = Array(list.sorted(by: StoredExample.ranks).prefix(k))
                        changed.insert(n)
                    }
                }
                guard state.record.advance(by: chunk.count) else {
                    throw IndexError.database(path: index.path, reason: "meta tokens \(state.tokens) overflows when counting on; the index is damaged")
                }
                windows += 1
                uncommitted += 1
                if uncommitted >= windowsPerCommit { try flush() }
                progress?(state)
            }
            state.nextDocument += 1
            state.nextPosition = 0
            if state.nextDocument < state.endDocument { tokens = try document(state.nextDocument) }
        }
        if state != index.manifest || state.nextDocument == state.endDocument && !state.finished { try flush() }
        progress?(state)
        return state
    }

    /// Builds an index over one in-memory document (a whole run over a one-document corpus).
    @discardableResult
    public func buildNeuronIndex(_ index: NeuronExampleIndex, tokens: [Int], windowsPerCommit: Int = 8,
                                 maxWindows: Int? = nil) throws -> IndexManifest {
        try buildNeuronIndex(index, document: { _ in tokens }, windowsPerCommit: windowsPerCommit, maxWindows: maxWindows)
    }
}
