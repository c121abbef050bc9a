// Activation statistics over a corpus: equal to moments computed directly from the hook's activations,
// equal (to float64 rounding) when computed in shards and merged, bit-identical when stopped and resumed.

import Foundation
import LoupeFormats
import LoupeModels
import LoupeStore
import Testing

@Suite struct ActivationStatisticsTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gpt2-tiny")
    static let documents = ShardMergeTests.documents
    static let corpus = CorpusIdentity(digest: "stats-test", documents: documents.count)
    static let hook = HookName.residPost(1)

    func file() -> String { FileManager.default.temporaryDirectory.appendingPathComponent("loupe-stats-\(UUID().uuidString).safetensors").path }

    func compute(_ model: HookedTransformer, shard: Shard = .whole, hook: HookName = hook, path: String? = nil,
                 maxWindows: Int? = nil) throws -> (ActivationStatistics, String) {
        let path = path ?? file()
        let fresh = try ActivationStatistics(model: model, hook: hook, corpus: Self.corpus, shard: shard, window: 16)
        let stats = try model.accumulateStatistics(fresh, path: path, document: { Self.documents[$0] }, windowsPerCommit: 1, maxWindows: maxWindows)
        return (stats, path)
    }

    func close(_ a: [Double], _ b: [Double], _ tolerance: Double) -> Bool {
        let scale = max(a.map(abs).max() ?? 0, 1e-30)
        return a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * scale }
    }

    /// The moments equal sums taken directly, in float64, over the hook's activations on every window.
    @Test func momentsEqualDirectSums() throws {
        let model = try ModelLoader.load(path: Self.fixture.path).model
        let (stats, path) = try compute(model)
        let d = model.config.dModel
        var sum = [Double](repeating: 0, count: d), outer = [Double](repeating: 0, count: d * d), count = 0
        for doc in Self.documents {
            for start in stride(from: 0, to: doc.count, by: 16) {
                let rows = try model.hookRows(Self.hook, windows: [Array(doc[start..<min(start + 16, doc.count)])], dropFirst: false)
                for r in 0..<rows.shape[0] {
                    let x = (0..<d).map { Double(rows.scalars[r * d + $0]) }
                    for i in 0..<d {
                        sum[i] += x[i]
                        for j in 0..<d { outer[i * d + j] += x[i] * x[j] }
                    }
                    count += 1
                }
            }
        }
        #expect(stats.count == count && stats.width == d && stats.finished)
        #expect(close(stats.sum, sum, 1e-9))
        #expect(close(stats.sumOuter, outer, 1e-6))   // products a window in float32
        let mean = sum.map { $0 / Double(count) }
        let covariance = (0..<(d * d)).map { outer[$0] / Double(count) - mean[$0 / d] * mean[$0 % d] }
        #expect(close(stats.covariance, covariance, 1e-5))
        // Read back from the file: the same sums, exactly.
        let reread = try ActivationStatistics(contentsOf: path)
        #expect(reread.sum == stats.sum && reread.sumOuter == stats.sumOuter && reread.record == stats.record)
        let file = try SafetensorsFile(path: path)
        #expect(try file.tensor("mean").shape == [d] && file.tensor("second_moment").shape == [d, d])
    }

    @Test func shardsMergedEqualOneRun() throws {
        let model = try ModelLoader.load(path: Self.fixture.path).model
        let (whole, _) = try compute(model)
        for n in [2, 3, 8] {
            let parts = try (1...n).map { try compute(model, shard: Shard(index: $0, count: n)).1 }
            let out = file()
            let merged = try ActivationStatistics.merge(shards: parts.reversed(), into: out)
            #expect(merged.count == whole.count)
            #expect(close(merged.sum, whole.sum, 1e-13) && close(merged.sumOuter, whole.sumOuter, 1e-13), "N = \(n)")
            var asRun = merged.record
            asRun.mergedFrom = 0
            #expect(asRun == whole.record)
            #expect(try ActivationStatistics(contentsOf: out).sum == merged.sum)
        }
    }

    @Test func aStoppedRunResumesBitForBit() throws {
        let model = try ModelLoader.load(path: Self.fixture.path).model
        let shard = try Shard(parsing: "1/2")
        let (straight, _) = try compute(model, shard: shard)
        let path = file()
        var runs = 0
        repeat {
            runs += 1
        } while try !compute(model, shard: shard, path: path, maxWindows: 1).0.finished && runs < 20
        #expect(runs == 4)   // documents 0..<3 (40 tokens: 3 windows; 3 tokens: 1; none), one window a run
        let resumed = try ActivationStatistics(contentsOf: path)
        #expect(resumed.sum == straight.sum && resumed.sumOuter == straight.sumOuter && resumed.record == straight.record)
    }

    @Test func refusesOtherJobsAndDamagedFiles() throws {
        let model = try ModelLoader.load(path: Self.fixture.path).model
        let parts = try (1...2).map { try compute(model, shard: Shard(index: $0, count: 2)).1 }
        let otherHook = try compute(model, shard: Shard(index: 2, count: 2), hook: .residPost(0)).1
        func refusal(_ shards: [String]) -> String {
            do { try ActivationStatistics.merge(shards: shards, into: file()); return "merged" } catch { return "\(error)" }
        }
        #expect(refusal([parts[0]]).contains("shard 2/2 missing"))
        #expect(refusal([parts[0], otherHook]).contains("has hook blocks.0.hook_resid_post"))
        #expect(refusal(parts) == "merged")
        // Resuming a file with another hook.
        #expect(throws: StatisticsError.self) {
            let fresh = try ActivationStatistics(model: model, hook: .residPost(0), corpus: Self.corpus, shard: Shard(index: 1, count: 2), window: 16)
            try model.accumulateStatistics(fresh, path: parts[0], document: { Self.documents[$0] })
        }
        // Attention patterns and scores are not one vector a position: refused, naming the hook.
        for hook in [HookName.pattern(0), .attnScores(1)] {
            do {
                _ = try ActivationStatistics(model: model, hook: hook, corpus: Self.corpus, window: 16)
                Issue.record("\(hook) accepted")
            } catch {
                #expect("\(error)".contains("not one vector per position"), "\(error)")
            }
        }
        // hook_z is: heads × d_head a position.
        #expect(try ActivationStatistics(model: model, hook: .z(0), corpus: Self.corpus, window: 16).width == model.config.dModel)
        // A file whose declared width disagrees with its arrays, and a file that is not statistics.
        let stats = try ActivationStatistics(contentsOf: parts[0])
        var metadata = try SafetensorsFile(path: parts[0]).metadata
        metadata["width"] = String(stats.width + 1)
        let damaged = self.file()
        try writeSafetensors(doubles: [("sum", [stats.width], stats.sum), ("sum_outer", [stats.width, stats.width], stats.sumOuter)],
                             metadata: metadata, to: URL(fileURLWithPath: damaged))
        #expect(throws: StatisticsError.self) { try ActivationStatistics(contentsOf: damaged) }
        metadata["format"] = "something-else"
        try writeSafetensors(doubles: [("sum", [stats.width], stats.sum)], metadata: metadata, to: URL(fileURLWithPath: damaged))
        do {
            _ = try ActivationStatistics(contentsOf: damaged)
            Issue.record("read a file of another format")
        } catch {
            #expect("\(error)".contains("not Loupe activation statistics"))
        }
    }
}
