// Corpus jobs: work over a whole corpus that can be split by document into shards (`--shard I/N`), one a
// machine (a Slurm array task, a Kubernetes Indexed Job pod), each resumable, then combined by `loupe merge`.

import ArgumentParser
import Foundation
import LoupeFormats
import LoupeModels
import LoupeRender
import LoupeStore

/// The corpus and the shard of it a job reads.
struct CorpusOptions: ParsableArguments {
    @Option(name: [.customLong("corpus"), .customLong("text")], parsing: .upToNextOption,
            help: "Text files, .jsonl files (one document a line: {\"text\": …}) or folders of them, in order.")
    var corpus: [String] = []

    @Option(name: .long, help: "Do part I of N of the job (1-based: 1/4 … 4/4), split by document; merge the parts with `loupe merge`.",
            transform: { try Shard(parsing: $0) })
    var shard: Shard = .whole

    @Option(name: .long, parsing: .unconditional, help: "Plain text is cut into documents at the first blank line after this many bytes.",
            transform: Count.positive)
    var documentBytes: Int = Corpus.defaultDocumentBytes

    func validate() throws {
        guard ParseChecks.enabled else { return }
        guard !corpus.isEmpty else { throw ValidationError("give the corpus: --corpus FILE_OR_FOLDER …") }
    }

    func open() throws -> Corpus { try Corpus(paths: corpus, documentBytes: documentBytes) }
}

/// A shard's documents as a job reads them: each tokenized on demand, and progress through them measured in
/// their bytes — a bar on a terminal, a line every tenth of the way in a log (a cluster job's standard
/// error is a file).
final class ShardReader {
    private let corpus: Corpus
    private let tokenizer: BPETokenizer
    private let bar: ProgressBar
    private let total: Int
    private let first: Int
    private let offsets: [Int]   // bytes before each of the shard's documents
    private var logged = 0
    private let logging = isatty(STDERR_FILENO) == 0
    private let label: String
    private var length = (document: -1, tokens: 0)
    /// "shard 2/4 (documents 5..<10 of 19) ", or nothing for a whole run.
    let part: String

    init(corpus: Corpus, tokenizer: BPETokenizer, shard: Shard, label: String) {
        let documents = shard.documents(of: corpus.count)
        var offsets = [0]
        for d in documents { offsets.append(offsets.last! + corpus.byteCount(of: d)) }
        (self.corpus, self.tokenizer, self.offsets, self.label) = (corpus, tokenizer, offsets, label)
        total = offsets.last!
        first = documents.lowerBound
        bar = ProgressBar(total: total, label: label)
        part = shard == .whole ? "" : "shard \(shard) (documents \(documents.lowerBound)..<\(documents.upperBound) of \(corpus.count)) "
    }

    /// Document `d`'s tokens (with BOS where the model wants one).
    func tokens(_ d: Int) throws -> [Int] {
        let tokens = try tokenizer.encodeForModel(corpus.text(d))
        length = (d, tokens.count)
        return tokens
    }

    /// Progress as a result records it.
    func update(_ record: ShardRecord) {
        let i = record.nextDocument - first
        guard i >= 0, i < offsets.count else { return }
        let size = i + 1 < offsets.count ? offsets[i + 1] - offsets[i] : 0
        let fraction = length.document == record.nextDocument && length.tokens > 0 ? Double(record.nextPosition) / Double(length.tokens) : 0
        let done = offsets[i] + Int(Double(size) * fraction)
        let extra = "bytes, document \(record.nextDocument), \(record.tokens) tokens"
        // In a log: a line every tenth of the shard (the format cluster logs are read in), not the bar's lines.
        if bar.drawsInPlace { bar.update(completed: done, extra: extra) }
        if logging, total > 0, done * 10 / total > logged {
            logged = done * 10 / total
            FileHandle.standardError.write(Data("\(label): \(logged * 10)% (\(extra))\n".utf8))
        }
    }

    func finish() { if bar.drawsInPlace { bar.finish() } }
}

struct NeuronIndex: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neuron-index",
        abstract: "Index every neuron's max-activating examples of one layer over a corpus into SQLite (resumable, shardable).",
        discussion: """
            The corpus is read document by document (a .jsonl line, or about --document-bytes of plain text), \
            in windows that never cross documents. Run the same command again to resume after an \
            interruption; a finished index is left as it is. With --shard I/N the command indexes part I of N \
            (one per machine); `loupe merge OUT SHARD…` combines the parts into the index one run would build. \
            Read the examples with `loupe neurons --db PATH`.

            Example:
              loupe neuron-index --model smollm2-135m --layer 20 --corpus books/ --db l20-part2.sqlite --shard 2/8
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, parsing: .unconditional, help: "The layer.", transform: Count.nonNegative) var layer: Int
    @OptionGroup var corpusOptions: CorpusOptions
    @Option(name: .long, help: "The SQLite file to build or resume.") var db: String
    @Option(name: .long, parsing: .unconditional, help: "Examples kept per neuron.", transform: Count.positive) var k: Int = 10
    @Option(name: .long, parsing: .unconditional, help: "Context tokens kept either side.", transform: Count.nonNegative) var context: Int = 8
    @Option(name: .long, parsing: .unconditional, help: "Tokens per forward pass (default: 128, or the model's context if shorter).", transform: Count.positive)
    var window: Int?
    @Flag(name: .long, help: "Print the index's manifest as JSON when done.") var json = false

    func run() throws {
        let loaded = try modelOptions.load()
        let tokenizer = try loaded.requireTokenizer()
        let window = self.window ?? min(128, loaded.model.config.nCtx)
        let corpus = try corpusOptions.open()
        let shard = corpusOptions.shard
        let index = try NeuronExampleIndex(path: db, model: loaded.model, layer: layer, corpus: corpus.identity, shard: shard,
                                           k: k, context: context, window: window)
        let before = index.manifest
        let reader = ShardReader(corpus: corpus, tokenizer: tokenizer, shard: shard, label: "neuron-index")
        let part = reader.part
        if before.finished {
            if json { try printJSON(before); return }
            print("\(db): \(part.isEmpty ? "" : part + "is ")already finished (\(before.tokens) tokens); nothing to do")
            return
        }
        if before.tokens > 0 {
            FileHandle.standardError.write(Data("resuming \(part)at document \(before.nextDocument), token \(before.nextPosition) (\(before.tokens) tokens indexed)\n".utf8))
        }
        let began = Date()
        let after = try loaded.model.buildNeuronIndex(index, document: reader.tokens) { reader.update($0.record) }
        reader.finish()
        let seconds = Date().timeIntervalSince(began)
        if json { try printJSON(after); return }
        let thisRun = after.tokens - before.tokens
        print(String(format: "indexed %@%d tokens of layer %d into %@ (%d this run in %.0f s, %.0f tokens/s)",
                     part, after.tokens, layer, db, thisRun, seconds, Double(thisRun) / max(seconds, 1e-3)))
    }
}

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Combine the shard results of one corpus job (`--shard I/N`) into the result of one whole run.",
        discussion: """
            Neuron indexes: every neuron's k best examples over all shards; activation statistics: counts \
            and sums added. Every shard 1/N … N/N must be \
            given once and finished, and all must come from the same model, corpus and settings; OUT must not \
            exist. The merged file is written under a temporary name and renamed when complete.

            Example:
              loupe merge l20.sqlite l20-part*.sqlite
            """)

    @Argument(help: "The merged result to write.") var output: String
    @Argument(help: "The shard results.") var shards: [String] = []
    @Flag(name: .long, help: "Print the merged manifest as JSON.") var json = false

    func validate() throws {
        guard ParseChecks.enabled else { return }
        guard !shards.isEmpty else { throw ValidationError("give the shard results after OUT: loupe merge OUT SHARD…") }
    }

    func run() throws {
        let began = Date()
        // The kind of result is read from the first shard's bytes: SQLite's header, else safetensors.
        let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: shards[0])).read(upToCount: 16) ?? Data()
        let record: ShardRecord
        if head.starts(with: Array("SQLite format 3\0".utf8)) {
            let merged = try NeuronExampleIndex.merge(shards: shards, into: output)
            if json { try printJSON(merged); return }
            record = merged.record
        } else {
            let merged = try ActivationStatistics.merge(shards: shards, into: output)
            if json { try printJSON(StatisticsSummary(merged)); return }
            record = merged.record
        }
        print(String(format: "merged %d shards (%d documents, %d tokens) into %@ in %.2f s",
                     record.mergedFrom, record.documents, record.tokens, output, Date().timeIntervalSince(began)))
    }
}

/// A statistics file's manifest and headline figures, for --json.
struct StatisticsSummary: Encodable {
    let hook: String, width: Int, window: Int, outer: Bool, count: Int
    let meanNorm: Double
    let record: ShardRecord

    init(_ s: ActivationStatistics) {
        (hook, width, window, outer, count, record) = (s.hook, s.width, s.window, s.outer, s.count, s.record)
        meanNorm = s.mean.reduce(0) { $0 + $1 * $1 }.squareRoot()
    }
}

struct ActivationStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activation-stats",
        abstract: "Mean and second moment of one hook point over a corpus, into safetensors (resumable, shardable).",
        discussion: """
            Counts every position of every window (documents read as by neuron-index) and keeps, in float64, \
            the sum and the sum of outer products of the hook's activations: the mean, E[x xᵀ] (ROME's key \
            statistics at blocks.L.mlp.hook_post) and the covariance follow. The file holds sum, sum_outer \
            (F64), mean and second_moment (F32), with the manifest in its metadata. Run it again to resume; \
            with --shard I/N it computes part I of N, and `loupe merge` adds the parts.

            Example:
              loupe activation-stats --model smollm2-135m --hook blocks.10.mlp.hook_post --corpus books/ --out l10-keys.safetensors
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: .long, help: "Hook point, e.g. blocks.10.mlp.hook_post.") var hook: String
    @OptionGroup var corpusOptions: CorpusOptions
    @Option(name: .long, help: "The safetensors file to write or resume.") var out: String
    @Option(name: .long, parsing: .unconditional, help: "Tokens per forward pass (default: 128, or the model's context if shorter).", transform: Count.positive)
    var window: Int?
    @Flag(name: .long, help: "Keep only the count and sum (no width² sum of outer products).") var noOuter = false
    @Flag(name: .long, help: "Print the result's manifest and headline figures as JSON.") var json = false

    func run() throws {
        let loaded = try modelOptions.load()
        let tokenizer = try loaded.requireTokenizer()
        let hookName = try HookName(parsing: hook)
        let window = self.window ?? min(128, loaded.model.config.nCtx)
        let corpus = try corpusOptions.open()
        let fresh = try ActivationStatistics(model: loaded.model, hook: hookName, corpus: corpus.identity, shard: corpusOptions.shard,
                                             window: window, outer: !noOuter)
        let reader = ShardReader(corpus: corpus, tokenizer: tokenizer, shard: corpusOptions.shard, label: "activation-stats")
        let began = Date()
        let stats = try loaded.model.accumulateStatistics(fresh, path: out, document: reader.tokens) { reader.update($0) }
        reader.finish()
        if json { try printJSON(StatisticsSummary(stats)); return }
        let seconds = Date().timeIntervalSince(began)
        let mean = stats.mean
        print(String(format: "%@%@ over %d positions (width %d) into %@ in %.0f s; |mean| = %.4f",
                     reader.part, hook, stats.count, stats.width, out, seconds, mean.reduce(0) { $0 + $1 * $1 }.squareRoot()))
    }
}
