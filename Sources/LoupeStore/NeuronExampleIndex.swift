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
        self.path = path
        self.layer = layer
        self.k = k
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
                let stored = try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT key, value FROM meta").map {
                    (String.fromDatabaseValue($0["key"]) ?? "", String.fromDatabaseValue($0["value"]) ?? "")
                })
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
                }
            }
        }
    }

    /// Opens an existing index for reading, checking that it belongs to `model` and `layer`.
    public init(openExisting path: String, model: HookedTransformer, layer: Int) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw FileError.notFound(path: path) }
        self.path = path
        self.layer = layer
        do { queue = try DatabaseQueue(path: path) } catch { throw IndexError.database(path: path, reason: "\(error)") }
        let stored: [String: String]
        do {
            stored = try queue.read { db in
                try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT key, value FROM meta").map {
                    (String.fromDatabaseValue($0["key"]) ?? "", String.fromDatabaseValue($0["value"]) ?? "")
                })
            }
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
        k = Int(stored["k"] ?? "") ?? 0
    }

    private func wrap<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as IndexError { throw e } catch let e as InterpError { throw e } catch {
            throw IndexError.database(path: path, reason: "\(error)")
        }
    }

    /// The corpus position the next window starts at (everything before it is indexed).
    public func nextToken() throws -> Int {
        try wrap { try queue.read { db in try Int(String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'next_token'") ?? "0") ?? 0 } }
    }

    /// Every stored example, by neuron, best first.
    public func allExamples() throws -> [Int: [StoredExample]] {
        try wrap {
            try queue.read { db in
                var out: [Int: [StoredExample]] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT neuron, activation, position, context, focus FROM examples ORDER BY neuron, activation DESC, position") {
                    let e = Self.example(row)
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
                                 arguments: [neuron]).map(Self.example)
            }
        }
    }

    private static func example(_ row: Row) -> StoredExample {
        let blob: Data = row["context"]
        let context = stride(from: 0, to: blob.count, by: 4).map { i in
            Int(Int32(littleEndian: blob[blob.startIndex + i..<blob.startIndex + i + 4].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
        }
        return StoredExample(neuron: row["neuron"], activation: Float(row["activation"] as Double), position: row["position"],
                             context: context, focus: row["focus"])
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
