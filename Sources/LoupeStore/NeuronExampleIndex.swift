// A SQLite store (GRDB) of each neuron's max-activating examples over a corpus, for one layer of one model.
// Built window by window; every batch of windows is committed together with the position reached, so a
// build that is killed resumes where its last commit left off and loses no finished work. Queries (and the
// explorer) read the examples without recomputing anything.

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

    public var description: String {
        switch self {
        case .otherModel(let p, let e, let f):
            return "\(p) was built for another model (\(f)); this one is \(e). Use a new --db file."
        case .otherSettings(let p, let e, let f):
            return "\(p) was built with other settings (\(f)); asked for \(e). Use the same settings or a new --db file."
        case .database(let p, let r): return "\(p): \(r)"
        }
    }
}

/// A neuron's stored example.
public struct StoredExample: Sendable, Equatable {
    public let neuron: Int
    public let activation: Float
    /// Token position in the corpus, the tokens around it, and where the position sits among them.
    public let position: Int
    public let context: [Int]
    public let focus: Int
}

/// The max-activating examples of one layer's neurons over one corpus.
public final class NeuronExampleIndex {
    public let path: String
    public let layer: Int
    public let k: Int
    private let queue: DatabaseQueue
    /// What stored rows are checked against: the layer's neurons and the model's vocabulary.
    private let dMLP: Int, dVocab: Int

    /// An identity for the weights, so an index is never read for another model: the config and a sample
    /// of the embedding and of this layer's MLP weights.
    public static func fingerprint(of model: HookedTransformer, layer: Int) -> String {
        let c = model.config
        var hasher = SHA256()
        for t in [model.weights.wE, model.weights.blocks[layer].wOut] {
            let sample = Array(t.scalars.prefix(4096))
            sample.withUnsafeBytes { hasher.update($0) }
        }
        return "\(c.architecture) L\(c.nLayers) d\(c.dModel) H\(c.nHeads) mlp\(c.dMLP) V\(c.dVocab) " + hasher.finalizeHex().prefix(16)
    }

    /// Opens (or creates) the index at `path` for `model`'s `layer` over a corpus identified by `corpus`
    /// (e.g. the text's sha256), with `k` examples per neuron, `context` tokens either side and windows of
    /// `window` tokens. An existing index must match all of these.
    public init(path: String, model: HookedTransformer, layer: Int, corpus: String, k: Int, context: Int, window: Int) throws {
        guard layer >= 0 && layer < model.config.nLayers else {
            throw InterpError.outOfRange(what: "layer", value: layer, count: model.config.nLayers)
        }
        guard k >= 1, context >= 0, window >= 1 else { throw InterpError.invalid("k and window must be ≥ 1, context ≥ 0") }
        guard window <= model.config.nCtx else {
            throw InterpError.invalid("window must be 1…\(model.config.nCtx) (the model's context), found \(window)")
        }
        self.path = path
        self.layer = layer
        self.k = k
        (dMLP, dVocab) = (model.config.dMLP, model.config.dVocab)
        do {
            queue = try DatabaseQueue(path: path)
        } catch {
            throw IndexError.database(path: path, reason: "\(error)")
        }
        let fingerprint = Self.fingerprint(of: model, layer: layer)
        let settings = "layer \(layer), corpus \(corpus.prefix(16)), k \(k), context \(context), window \(window)"
        try wrap {
            try queue.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    CREATE TABLE IF NOT EXISTS examples (
                        neuron INTEGER NOT NULL, activation REAL NOT NULL, position INTEGER NOT NULL,
                        context BLOB NOT NULL, focus INTEGER NOT NULL);
                    CREATE INDEX IF NOT EXISTS examples_by_neuron ON examples (neuron, activation DESC);
                    """)
                let stored = try Self.meta(db, path: path)
                if stored.isEmpty {
                    try db.execute(sql: "INSERT INTO meta (key, value) VALUES ('model', ?), ('settings', ?), ('k', ?), ('next_token', '0')",
                                   arguments: [fingerprint, settings, String(k)])
                } else {
                    if stored["model"] != fingerprint {
                        throw IndexError.otherModel(path: path, expected: fingerprint, found: stored["model"] ?? "nothing")
                    }
                    if stored["settings"] != settings {
                        throw IndexError.otherSettings(path: path, expected: settings, found: stored["settings"] ?? "nothing")
                    }
                    guard stored["k"] == String(k), let next = stored["next_token"].flatMap({ Int($0) }), next >= 0 else {
                        throw IndexError.database(path: path, reason: "the stored state is inconsistent (k \(stored["k"] ?? "missing"), "
                                                  + "next_token \(stored["next_token"] ?? "missing")); use a new --db file")
                    }
                }
            }
        }
    }

    /// Opens an existing index for reading, checking that it belongs to `model` and `layer`.
    public init(openExisting path: String, model: HookedTransformer, layer: Int) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw FileError.notFound(path: path) }
        self.path = path
        self.layer = layer
        (dMLP, dVocab) = (model.config.dMLP, model.config.dVocab)
        do { queue = try DatabaseQueue(path: path) } catch { throw IndexError.database(path: path, reason: "\(error)") }
        let stored: [String: String]
        do {
            stored = try queue.read { db in try Self.meta(db, path: path) }
        } catch let e as IndexError {
            throw e
        } catch {
            throw IndexError.database(path: path, reason: "not a Loupe neuron index (\(error))")
        }
        let fingerprint = Self.fingerprint(of: model, layer: layer)
        guard stored["model"] == fingerprint else {
            throw IndexError.otherModel(path: path, expected: fingerprint, found: stored["model"] ?? "nothing")
        }
        guard let settings = stored["settings"], settings.hasPrefix("layer \(layer),") else {
            throw IndexError.otherSettings(path: path, expected: "layer \(layer)", found: stored["settings"] ?? "nothing")
        }
        guard let k = stored["k"].flatMap({ Int($0) }), k >= 1 else {
            throw IndexError.database(path: path, reason: "meta k is \(stored["k"].map { "\"\($0)\"" } ?? "missing"); expected a count ≥ 1")
        }
        self.k = k
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

    /// The corpus position the next window starts at (everything before it is indexed).
    public func nextToken() throws -> Int {
        let stored = try wrap { try queue.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'next_token'") } }
        guard let stored, let next = Int(stored), next >= 0 else {
            throw IndexError.database(path: path, reason: "meta next_token is \(stored.map { "\"\($0)\"" } ?? "missing"); expected a position ≥ 0")
        }
        return next
    }

    /// Every stored example, by neuron, best first.
    public func allExamples() throws -> [Int: [StoredExample]] {
        try wrap {
            try queue.read { db in
                var out: [Int: [StoredExample]] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT neuron, activation, position, context, focus FROM examples ORDER BY neuron, activation DESC, position") {
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
                try Row.fetchAll(db, sql: "SELECT neuron, activation, position, context, focus FROM examples WHERE neuron = ? ORDER BY activation DESC, position",
                                 arguments: [neuron]).map(example)
            }
        }
    }

    /// One stored row, checked: a database is input, and a tampered one must give an error, not a trap.
    private func example(_ row: Row) throws -> StoredExample {
        func bad(_ what: String) -> IndexError { .database(path: path, reason: "an example row has \(what); the index is damaged") }
        guard let neuron = Int.fromDatabaseValue(row["neuron"]), (0..<dMLP).contains(neuron) else {
            throw bad("neuron \(row["neuron"] as DatabaseValue), expected 0..<\(dMLP)")
        }
        guard let activation = Double.fromDatabaseValue(row["activation"]), activation.isFinite else {
            throw bad("activation \(row["activation"] as DatabaseValue), expected a finite number")
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
        return StoredExample(neuron: neuron, activation: Float(activation), position: position, context: context, focus: focus)
    }

    /// Replaces the examples of the given neurons and records the position reached, in one transaction.
    func commit(_ best: [Int: [StoredExample]], changed: Set<Int>, next: Int) throws {
        try wrap {
            try queue.write { db in
                for n in changed {
                    try db.execute(sql: "DELETE FROM examples WHERE neuron = ?", arguments: [n])
                    for e in best[n] ?? [] {
                        var blob = Data()
                        for t in e.context { withUnsafeBytes(of: Int32(t).littleEndian) { blob.append(contentsOf: $0) } }
                        try db.execute(sql: "INSERT INTO examples (neuron, activation, position, context, focus) VALUES (?, ?, ?, ?, ?)",
                                       arguments: [n, Double(e.activation), e.position, blob, e.focus])
                    }
                }
                try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'next_token'", arguments: [String(next)])
            }
        }
    }
}

extension HookedTransformer {
    /// Builds (or resumes) an index of the top examples of every neuron of `index.layer` over `tokens`,
    /// `window` tokens per forward pass, committing every `windowsPerCommit` windows. Stops early after
    /// `maxWindows` windows (for tests and partial runs). Returns the position reached.
    @discardableResult
    public func buildNeuronIndex(_ index: NeuronExampleIndex, tokens: [Int], window: Int, context: Int,
                                 windowsPerCommit: Int = 8, maxWindows: Int? = nil,
                                 progress: ((Int, Int) -> Void)? = nil) throws -> Int {
        let m = config.dMLP
        var best = try index.allExamples()
        var position = try index.nextToken()
        // Resuming: the stored state must fit this corpus and these settings.
        guard position <= tokens.count else {
            throw IndexError.database(path: index.path, reason: "the index has reached token \(position), past the corpus's \(tokens.count) tokens; use a new --db file")
        }
        for (n, list) in best {
            if list.count > index.k {
                throw IndexError.database(path: index.path, reason: "neuron \(n) has \(list.count) examples stored, more than k = \(index.k)")
            }
            if let e = list.first(where: { $0.position >= position }) {
                throw IndexError.database(path: index.path, reason: "neuron \(n) has an example at token \(e.position), beyond the \(position) tokens indexed")
            }
        }
        var changed = Set<Int>()
        var windows = 0
        while position < tokens.count {
            if let maxWindows, windows >= maxWindows { break }
            let chunk = Array(tokens[position..<min(position + window, tokens.count)])
            let acts = try neuronActivations(layer: index.layer, tokens: chunk)   // [pos, d_mlp]
            for n in 0..<m {
                var list = best[n] ?? []
                let floor = list.count == index.k ? list.last?.activation ?? -Float.infinity : -Float.infinity
                var touched = false
                for p in 0..<chunk.count {
                    let a = acts.scalars[p * m + n]
                    guard a > floor || list.count < index.k else { continue }
                    let at = position + p
                    let lo = max(0, at - context), hi = min(tokens.count, at + context + 1)
                    list.append(StoredExample(neuron: n, activation: a, position: at, context: Array(tokens[lo..<hi]), focus: at - lo))
                    touched = true
                }
                if touched {
                    list.sort { $0.activation > $1.activation || ($0.activation == $1.activation && $0.position < $1.position) }
                    best[n] = Array(list.prefix(index.k))
                    changed.insert(n)
                }
            }
            position += chunk.count
            windows += 1
            if windows % windowsPerCommit == 0 || position >= tokens.count {
                try index.commit(best, changed: changed, next: position)
                changed.removeAll()
            }
            progress?(position, tokens.count)
        }
        if !changed.isEmpty { try index.commit(best, changed: changed, next: position) }
        return position
    }
}
