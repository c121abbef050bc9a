// `loupe neuron-index --shard I/N` run as N processes at once, then `loupe merge`, equals one
// `loupe neuron-index` over the whole corpus, exactly: the same examples and the same manifest.

import Foundation
import LoupeFormats
import LoupeStore
import Testing
@testable import loupe

@Suite struct ShardedJobTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `loupe` built with the tests (next to the test bundle).
    static func binary() throws -> String {
        let candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("loupe").path,
                          root.appendingPathComponent(".build/debug/loupe").path]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: candidates.joined(separator: " or ")])
        }
        return found
    }

    static func start(_ args: [String], script: String? = nil, environment: [String: String] = [:]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = try script.map { root.appendingPathComponent($0) } ?? URL(fileURLWithPath: binary())
        process.arguments = args
        if script != nil || !environment.isEmpty {
            // Without the scheduler variables of whatever runs the tests (a CI job inside Slurm, say).
            let inherited = ProcessInfo.processInfo.environment.filter { key, _ in
                !key.hasPrefix("SLURM_") && !["JOB_COMPLETION_INDEX", "LOUPE_SHARD", "LOUPE_SHARDS"].contains(key)
            }
            process.environment = inherited.merging(environment.merging(["LOUPE": try binary()]) { a, _ in a }) { _, b in b }
        }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        return (process, out)
    }

    static func finish(_ p: (Process, Pipe)) -> (Int32, String) {
        let text = String(decoding: p.1.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.0.waitUntilExit()
        return (p.0.terminationStatus, text)
    }

    /// `--shard` is checked while parsing, with the form it wants; a corpus job without a corpus says so.
    @Test(arguments: [("5/4", "1 ≤ I ≤ N"), ("0/3", "1 ≤ I ≤ N"), ("2", "written I/N"), ("a/b", "written I/N")])
    func badShardsAreRefused(_ shard: String, _ says: String) {
        let jobs = [["neuron-index", "--layer", "0", "--db", "d"], ["activation-stats", "--hook", "blocks.0.hook_resid_post", "--out", "o"]]
        for job in jobs {
            let args = job + ["--corpus", "c", "--shard", shard]
            do {
                _ = try Loupe.parseAsRoot(args)
                Issue.record("\(args) parsed")
            } catch {
                #expect(Loupe.message(for: error).contains(says), "\(args): \(Loupe.message(for: error))")
            }
        }
        do {
            _ = try Loupe.parseAsRoot(["neuron-index", "--layer", "0", "--db", "d"])
            Issue.record("no corpus parsed")
        } catch {
            #expect(Loupe.message(for: error).contains("give the corpus"))
        }
    }

    @Test func shardProcessesMergedEqualOneRun() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-sharded-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("corpus/news"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // A folder corpus: plain text cut into documents at blank lines, and JSON Lines.
        let paragraphs = (0..<12).map { i in
            "Paragraph \(i): the committee met on Tuesday and the minister said that \(i * 7) reports were late.\n\n"
        }
        try Data(paragraphs.joined().utf8).write(to: dir.appendingPathComponent("corpus/book.txt"))
        let lines = (0..<5).map { #"{"text": "Story \#($0): prices rose by \#($0 * 3) percent in the north.", "id": \#($0)}"# }
        try Data(lines.joined(separator: "\n").utf8).write(to: dir.appendingPathComponent("corpus/news/day1.jsonl"))

        let model = Self.root.appendingPathComponent("Tests/Fixtures/gpt2-tiny").path
        let common = ["neuron-index", "--model", model, "--layer", "1", "--corpus", dir.appendingPathComponent("corpus").path,
                      "--document-bytes", "200", "--k", "4", "--context", "3", "--window", "16"]
        let whole = dir.appendingPathComponent("whole.sqlite").path
        let n = 3
        let shards = (1...n).map { dir.appendingPathComponent("part\($0).sqlite").path }
        // All at once, as a job array would run them.
        let running = try [Self.start(common + ["--db", whole])]
            + (1...n).map { try Self.start(common + ["--db", shards[$0 - 1], "--shard", "\($0)/\(n)"]) }
        for p in running {
            let (status, output) = Self.finish(p)
            #expect(status == 0, "\(output)")
        }
        let merged = dir.appendingPathComponent("merged.sqlite").path
        let (status, output) = Self.finish(try Self.start(["merge", merged] + shards))
        #expect(status == 0 && output.contains("merged 3 shards"), "\(output)")

        let one = try NeuronExampleIndex(openExisting: whole)
        let combined = try NeuronExampleIndex(openExisting: merged)
        let corpus = try Corpus(paths: [dir.appendingPathComponent("corpus").path], documentBytes: 200)
        #expect(one.manifest.documents == corpus.count && corpus.count > 2 * n && one.manifest.finished)
        #expect(one.manifest.corpus == corpus.identity.digest)
        #expect(try combined.allExamples() == one.allExamples())
        #expect(try one.allExamples().count == 128)   // every neuron of the tiny model
        var asRun = combined.manifest
        asRun.mergedFrom = 0
        #expect(asRun == one.manifest)

        // Run again: a finished shard is left as it is.
        let again = Self.finish(try Self.start(common + ["--db", shards[0], "--shard", "1/\(n)"]))
        #expect(again.0 == 0 && again.1.contains("already finished"), "\(again.1)")
        // A merge that lacks a shard says which.
        let partial = Self.finish(try Self.start(["merge", dir.appendingPathComponent("partial.sqlite").path, shards[0], shards[2]]))
        #expect(partial.0 != 0 && partial.1.contains("shard 2/3 missing"), "\(partial.1)")
    }

    /// The cluster scripts (scripts/cluster, used by the Slurm batch files and the Kubernetes Jobs) find
    /// their shard in each engine's environment, and merge-task merges what they wrote: the same index as
    /// one run, for a Kubernetes Indexed Job's 0-based JOB_COMPLETION_INDEX and a Slurm array's 1-based
    /// task ids alike. A Slurm array that does not run 1-N is refused.
    @Test func clusterScriptsShardAndMerge() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = dir.appendingPathComponent("text.txt")
        try Data((0..<9).map { "Line \($0) of a short text about ships and harbours, number \($0 * $0).\n\n" }.joined().utf8).write(to: text)
        let model = Self.root.appendingPathComponent("Tests/Fixtures/gpt2-tiny").path
        let job = ["neuron-index", "--model", model, "--layer", "0", "--corpus", text.path, "--document-bytes", "100", "--k", "2", "--window", "8"]
        let whole = dir.appendingPathComponent("whole.sqlite").path
        let one = Self.finish(try Self.start(job + ["--db", whole]))
        #expect(one.0 == 0, "\(one.1)")
        let expected = try NeuronExampleIndex(openExisting: whole).allExamples()

        let engines: [(String, (Int) -> [String: String])] = [
            ("k8s", { ["JOB_COMPLETION_INDEX": String($0 - 1), "LOUPE_SHARDS": "3"] }),
            ("slurm", { ["SLURM_ARRAY_TASK_ID": String($0), "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "3"] }),
        ]
        for (engine, environment) in engines {
            let out = dir.appendingPathComponent(engine).path
            let tasks = try (1...3).map { try Self.start([out] + job, script: "scripts/cluster/shard-task", environment: environment($0)) }
            for t in tasks {
                let (status, output) = Self.finish(t)
                #expect(status == 0, "\(engine): \(output)")
            }
            #expect(FileManager.default.fileExists(atPath: out + "/part-3-of-3.sqlite"), "\(engine)")
            let merge = Self.finish(try Self.start([out, "3"], script: "scripts/cluster/merge-task"))
            #expect(merge.0 == 0, "\(engine): \(merge.1)")
            #expect(try NeuronExampleIndex(openExisting: out + "/index.sqlite").allExamples() == expected, "\(engine)")
        }
        // Activation statistics through the same scripts, the shard given by hand (LOUPE_SHARD=I/N).
        let statsJob = ["activation-stats", "--model", model, "--hook", "blocks.0.hook_resid_post", "--corpus", text.path,
                        "--document-bytes", "100", "--window", "8"]
        let wholeStats = dir.appendingPathComponent("whole.safetensors").path
        #expect(Self.finish(try Self.start(statsJob + ["--out", wholeStats])).0 == 0)
        let statsDir = dir.appendingPathComponent("stats").path
        for i in 1...3 {
            let task = Self.finish(try Self.start([statsDir] + statsJob, script: "scripts/cluster/shard-task", environment: ["LOUPE_SHARD": "\(i)/3"]))
            #expect(task.0 == 0, "\(task.1)")
        }
        let statsMerge = Self.finish(try Self.start([statsDir, "3"], script: "scripts/cluster/merge-task"))
        #expect(statsMerge.0 == 0, "\(statsMerge.1)")
        let merged = try ActivationStatistics(contentsOf: statsDir + "/stats.safetensors")
        let single = try ActivationStatistics(contentsOf: wholeStats)
        #expect(merged.count == single.count && merged.count > 0 && merged.mergedFrom == 3)
        #expect(zip(merged.sum, single.sum).allSatisfy { abs($0 - $1) <= 1e-9 * max(1, abs($1)) })

        let offset = Self.finish(try Self.start([dir.path] + job, script: "scripts/cluster/shard-task",
                                                environment: ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_MAX": "4"]))
        #expect(offset.0 == 2 && offset.1.contains("must be 1-N"), "\(offset.1)")
    }
}

/// CLI tests that run the `loupe` binary and read what it printed (stdout and stderr together).
protocol RunsLoupe {}
extension RunsLoupe {
    func run(_ args: [String]) throws -> (status: Int32, output: String) {
        let (process, pipe) = try ShardedJobTests.start(args)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
