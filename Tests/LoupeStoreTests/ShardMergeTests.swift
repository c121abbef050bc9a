// A corpus job split into shards and merged equals one run over the whole corpus, exactly; a merge refuses
// parts that are not one job's, and a shard that is stopped resumes to the same result.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeStore
import Testing

@Suite struct ShardMergeTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gpt2-tiny")

    /// Seven documents of uneven lengths (one empty, some shorter than a window). Each starts with the same
    /// token, as documents that begin with BOS do: their first positions tie exactly, and ties must be
    /// broken the same way by a run and by a merge.
    static let documents: [[Int]] = [40, 3, 0, 57, 16, 21, 33].enumerated().map { d, n in
        (0..<n).map { $0 == 0 ? 50256 : ($0 * 7919 + d * 104_729 + 3) % 50257 }
    }
    static let corpus = CorpusIdentity(digest: "shard-test", documents: documents.count)

    func database() -> String { FileManager.default.temporaryDirectory.appendingPathComponent("loupe-shard-\(UUID().uuidString).sqlite").path }

    func build(_ model: HookedTransformer, shard: Shard, k: Int = 3, path: String? = nil, maxWindows: Int? = nil) throws -> NeuronExampleIndex {
        let index = try NeuronExampleIndex(path: path ?? database(), model: model, layer: 1, corpus: Self.corpus, shard: shard,
                                           k: k, context: 2, window: 16)
        try model.buildNeuronIndex(index, document: { Self.documents[$0] }, windowsPerCommit: 1, maxWindows: maxWindows)
        return index
    }

    @Test func shardsMergedEqualOneRun() throws {
        let model = try ModelLoader.load(path: Self.fixture.path).model
        let whole = try build(model, shard: .whole)
        let expected = try whole.allExamples()
        #expect(whole.manifest.finished && whole.manifest.tokens == Self.documents.map(\.count).reduce(0, +))
        #expect(expected.count == model.config.dMLP && expected.values.allSatisfy { $0.count == 3 })
        // Examples come from several documents, so the merge has real work to do, and some neurons keep
        // tied first positions of several documents.
        #expect(Set(expected.values.flatMap { $0.map(\.document) }).count >= 4)
        #expect(expected.values.contains { list in list.filter { $0.position == 0 }.count >= 2 })

        for n in [2, 3, 5, 8] {   // 8 shards of 7 documents: one shard is empty
            let parts = try (1...n).map { try build(model, shard: Shard(index: $0, count: n)) }
            #expect(parts.map(\.manifest.tokens).reduce(0, +) == whole.manifest.tokens)
            let out = database()
            // Given in any order.
            let merged = try NeuronExampleIndex.merge(shards: parts.reversed().map(\.path), into: out)
            let reread = try NeuronExampleIndex(openExisting: out, model: model, layer: 1)
            #expect(try reread.allExamples() == expected, "N = \(n)")
            var asRun = merged
            asRun.mergedFrom = 0
            #expect(asRun == whole.manifest, "N = \(n)")
            #expect(merged.mergedFrom == n && reread.manifest == merged)
        }
    }

    /// A shard stopped after each of its windows in turn, and resumed, ends where one uninterrupted run does.
    @Test func aStoppedShardResumesToTheSameResult() throws {
        let model = try ModelLoader.load(path: Self.fixture.path).model
        let shard = try Shard(parsing: "2/3")   // documents 2..<4: the empty one and the longest
        let straight = try build(model, shard: shard)
        let path = database()
        var runs = 0
        while true {
            let index = try build(model, shard: shard, path: path, maxWindows: 1)
            runs += 1
            if index.manifest.finished { break }
            #expect(runs < 20)
            if runs >= 20 { return }
        }
        #expect(runs == 4)   // an empty document, then 57 tokens in four windows of at most 16
        let resumed = try NeuronExampleIndex(openExisting: path, model: model, layer: 1)
        #expect(try resumed.allExamples() == straight.allExamples())
        #expect(resumed.manifest == straight.manifest)
    }

    @Test func mergeRefusesPartsOfOtherJobs() throws {
        let model = try ModelLoader.load(path: Self.fixture.path).model
        let parts = try (1...3).map { try build(model, shard: Shard(index: $0, count: 3)) }
        let paths = parts.map(\.path)
        func refusal(_ shards: [String], _ out: String? = nil) -> String {
            do {
                try NeuronExampleIndex.merge(shards: shards, into: out ?? database())
                return "merged"
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal([paths[0], paths[2]]).contains("shard 2/3 missing"))
        #expect(refusal(paths + [paths[1]]).contains("shard 2/3 is given twice"))
        let otherK = try build(model, shard: Shard(index: 2, count: 3), k: 4)
        #expect(refusal([paths[0], otherK.path, paths[2]]).contains("has k 4"))
        let otherModel = try NeuronExampleIndex(path: database(), model: model.processed(), layer: 1, corpus: Self.corpus,
                                                shard: Shard(index: 2, count: 3), k: 3, context: 2, window: 16)
        try model.processed().buildNeuronIndex(otherModel, document: { Self.documents[$0] })
        #expect(refusal([paths[0], otherModel.path, paths[2]]).contains("another model"))
        let otherSplit = try build(model, shard: Shard(index: 2, count: 4))
        #expect(refusal([paths[0], otherSplit.path, paths[2]]).contains("a job is split one way"))
        let unfinished = try build(model, shard: Shard(index: 2, count: 3), maxWindows: 1)
        #expect(refusal([paths[0], unfinished.path, paths[2]]).contains("is not finished"))

        let out = database()
        #expect(refusal(paths, out) == "merged")
        #expect(refusal(paths, out).contains("exists"))
        #expect(refusal([out]).contains("already a merge"))
        // A merge that fails leaves nothing behind.
        let failed = database()
        _ = refusal([paths[0], unfinished.path, paths[2]], failed)
        #expect(!FileManager.default.fileExists(atPath: failed))
        // A merge is finished; it is not resumed as a shard.
        #expect(throws: IndexError.self) {
            try NeuronExampleIndex(path: out, model: model, layer: 1, corpus: Self.corpus, k: 3, context: 2, window: 16)
        }
    }
}
