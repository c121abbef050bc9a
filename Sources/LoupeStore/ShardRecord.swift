// What every corpus-job result records about itself, whatever it stores (a neuron index in SQLite, activation
// statistics in safetensors): the model and corpus it was computed from, its shard and documents, how far it
// has got, and whether it is a merge. Results keep it as text key/value pairs (SQLite's meta table, a
// safetensors header's __metadata__), and `checkShardSet` is the one check a merge makes of its parts.

import Foundation
import LoupeFormats
import LoupeModels

/// A corpus-job result's provenance and progress.
public struct ShardRecord: Equatable, Sendable, Codable {
    /// The weights' fingerprint (`weightsFingerprint`).
    public var model: String
    /// The corpus digest and its document count.
    public var corpus: String
    public var documents: Int
    /// This result's shard (`I/N`; `1/1` for a whole run or a merge) and its documents.
    public var shard: String
    public var firstDocument: Int
    public var endDocument: Int
    /// Everything before (nextDocument, nextPosition) is done; `tokens` counts it.
    public var nextDocument: Int
    public var nextPosition: Int
    public var tokens: Int
    public var finished: Bool
    /// How many shard results a merge combined (0: computed by a run).
    public var mergedFrom: Int
    public var loupeVersion: String

    /// A fresh record for `shard` of `corpus`: nothing done yet (an empty shard is finished at once).
    public init(model: String, corpus: CorpusIdentity, shard: Shard) {
        let range = shard.documents(of: corpus.documents)
        (self.model, self.corpus, documents, self.shard) = (model, corpus.digest, corpus.documents, shard.description)
        (firstDocument, endDocument, nextDocument, nextPosition, tokens) = (range.lowerBound, range.upperBound, range.lowerBound, 0, 0)
        (finished, mergedFrom, loupeVersion) = (range.isEmpty, 0, LoupeFormats.loupeVersion)
    }

    /// The record's key/value pairs, as results store them.
    public var pairs: [(String, String)] {
        [("model", model), ("corpus", corpus), ("documents", String(documents)), ("shard", shard),
         ("first_document", String(firstDocument)), ("end_document", String(endDocument)),
         ("next_document", String(nextDocument)), ("next_position", String(nextPosition)), ("tokens", String(tokens)),
         ("finished", finished ? "1" : "0"), ("merged_from", String(mergedFrom)), ("loupe_version", loupeVersion)]
    }

    /// Reads and checks a stored record: every key present, numbers in range, the progress inside the shard.
    /// `bad` makes the error for a reason.
    public init(pairs meta: [String: String], bad: @escaping (String) -> Error) throws {
        let fields = StoredFields(meta: meta, bad: bad)
        model = try fields.text("model")
        corpus = try fields.text("corpus")
        documents = try fields.count("documents", min: 1)
        shard = try fields.text("shard")
        firstDocument = try fields.count("first_document")
        endDocument = try fields.count("end_document")
        nextDocument = try fields.count("next_document")
        nextPosition = try fields.count("next_position")
        tokens = try fields.count("tokens")
        finished = try fields.flag("finished")
        mergedFrom = try fields.count("merged_from")
        loupeVersion = try fields.text("loupe_version")
        // Bounds compared one by one: a range of stored numbers would trap when they are out of order.
        let expected = (try? Shard(parsing: shard))?.documents(of: documents)
        guard let expected, expected.lowerBound == firstDocument, expected.upperBound == endDocument else {
            throw bad("meta shard \(shard) with documents \(firstDocument)..<\(endDocument) does not describe a shard of \(documents) documents")
        }
        guard nextDocument >= firstDocument, nextDocument <= endDocument, !(finished && nextDocument != endDocument) else {
            throw bad("meta next_document is \(nextDocument), outside the shard's documents \(firstDocument)...\(endDocument)"
                      + (finished ? " or short of its end for a finished shard" : ""))
        }
    }

    /// Records `n` more tokens done in the current document. False (and nothing changed) when the stored
    /// count was so large that it overflows: a damaged file.
    public mutating func advance(by n: Int) -> Bool {
        let (t, o1) = tokens.addingReportingOverflow(n), (p, o2) = nextPosition.addingReportingOverflow(n)
        guard !o1, !o2 else { return false }
        (tokens, nextPosition) = (t, p)
        return true
    }

    /// The record of a merge of `count` shards holding `tokens` tokens in all: the whole corpus, finished.
    public func merged(count: Int, tokens: Int) -> ShardRecord {
        var m = self
        (m.shard, m.firstDocument, m.endDocument) = (Shard.whole.description, 0, documents)
        (m.nextDocument, m.nextPosition, m.finished, m.tokens) = (documents, 0, true, tokens)
        (m.mergedFrom, m.loupeVersion) = (count, LoupeFormats.loupeVersion)
        return m
    }

    /// What a stored result must share with the job asked of it to be resumed: corpus, the kind's own
    /// settings (`job`), shard, then model. The first difference as (key, asked, found), or nil.
    public static func firstDifference(asked: ShardRecord, _ askedJob: [(String, String)],
                                       found: ShardRecord, _ foundJob: [(String, String)]) -> (String, String, String)? {
        func settings(_ r: ShardRecord, _ job: [(String, String)]) -> [(String, String)] {
            [("corpus", String(r.corpus.prefix(16))), ("documents", String(r.documents))] + job + [("shard", r.shard), ("model", r.model)]
        }
        for ((key, want), (_, have)) in zip(settings(asked, askedJob), settings(found, foundJob)) where want != have {
            return (key, want, have)
        }
        return nil
    }

    /// Checks that `parts` are the N shards of one job, each once and finished, with the same model, corpus
    /// and settings (`job`: a result kind's own settings as key/value pairs). Returns N and the tokens of
    /// all the shards together.
    public static func checkShardSet(_ parts: [(path: String, record: ShardRecord, job: [(String, String)])]) throws -> (count: Int, tokens: Int) {
        guard let first = parts.first else { throw ShardSetError("give the shard results to merge") }
        var byIndex: [Int: String] = [:]
        var count = 0
        for (path, r, job) in parts {
            if r.mergedFrom > 0 { throw ShardSetError("\(path) is already a merge of \(r.mergedFrom) shards; merge the shards themselves") }
            // Settings first: a fingerprint samples the layer's weights, so another layer is another "model".
            let settings = [("corpus", String(r.corpus.prefix(16))), ("documents", String(r.documents))] + job
            let firstSettings = [("corpus", String(first.record.corpus.prefix(16))), ("documents", String(first.record.documents))] + first.job
            for ((key, a), (_, b)) in zip(firstSettings, settings) where a != b {
                throw ShardSetError("\(path) has \(key) \(b), \(first.path) has \(key) \(a): they are not shards of one job")
            }
            if r.model != first.record.model {
                throw ShardSetError("\(path) was computed with another model (\(r.model)) than \(first.path) (\(first.record.model))")
            }
            let shard = try Shard(parsing: r.shard)
            if count == 0 { count = shard.count }
            guard shard.count == count else {
                throw ShardSetError("\(path) is shard \(r.shard), \(first.path) is shard \(first.record.shard): a job is split one way")
            }
            if let other = byIndex.updateValue(path, forKey: shard.index) {
                throw ShardSetError("shard \(r.shard) is given twice (\(other) and \(path))")
            }
            guard r.finished else {
                throw ShardSetError("\(path) (shard \(r.shard)) is not finished: it has reached document \(r.nextDocument) of \(r.firstDocument)..<\(r.endDocument); run its job again to resume it")
            }
        }
        let missing = (1...count).filter { byIndex[$0] == nil }
        guard missing.isEmpty else {
            throw ShardSetError("shard\(missing.count > 1 ? "s" : "") \(missing.map { "\($0)/\(count)" }.joined(separator: ", ")) missing: a merge needs all \(count)")
        }
        var tokens = 0
        for (path, r, _) in parts {
            let (sum, overflow) = tokens.addingReportingOverflow(r.tokens)
            guard !overflow else { throw ShardSetError("\(path) claims \(r.tokens) tokens: the shards' total overflows; the file is damaged") }
            tokens = sum
        }
        return (count, tokens)
    }
}

/// Shard results that cannot be merged, and why.
public struct ShardSetError: Error, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Stored key/value text read as typed fields, each problem an error naming the key.
struct StoredFields {
    let meta: [String: String]
    let bad: (String) -> Error

    func text(_ key: String) throws -> String {
        guard let v = meta[key] else { throw bad("meta \(key) is missing; the file is damaged") }
        return v
    }

    func count(_ key: String, min: Int = 0) throws -> Int {
        let v = try text(key)
        guard let n = Int(v), n >= min else { throw bad("meta \(key) is \"\(v)\"; expected a whole number ≥ \(min)") }
        return n
    }

    func flag(_ key: String) throws -> Bool {
        let v = try text(key)
        guard v == "0" || v == "1" else { throw bad("meta \(key) is \"\(v)\"; expected 0 or 1") }
        return v == "1"
    }
}

/// An identity for a model's weights, so that a result is never read or merged for another model: the
/// config and a sample of the embedding and of `layer`'s MLP output weights.
public func weightsFingerprint(of model: HookedTransformer, layer: Int) -> String {
    let c = model.config
    var hasher = SHA256()
    for t in [model.weights.wE, model.weights.blocks[max(0, min(layer, c.nLayers - 1))].wOut] {
        let sample = Array(t.scalars.prefix(4096))
        sample.withUnsafeBytes { hasher.update($0) }
    }
    return "\(c.architecture) L\(c.nLayers) d\(c.dModel) H\(c.nHeads) mlp\(c.dMLP) V\(c.dVocab) " + hasher.finalizeHex().prefix(16)
}
