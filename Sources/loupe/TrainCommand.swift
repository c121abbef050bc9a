import ArgumentParser
import Foundation
import LoupeFormats

/// `loupe train …`: things Loupe learns from data.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a tokenizer or a model.",
        subcommands: [TrainTokenizer.self, TrainMax.self, TrainAdd.self, TrainFibonacci.self, TrainInduction.self, TrainSuperposition.self, TrainLM.self, TrainMLM.self, TrainSAE.self, TrainTunedLens.self])
}

struct TrainTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Train a byte-level BPE tokenizer (GPT-2 pre-tokenizer) on text files.",
        discussion: """
            Writes tokenizer.json (Hugging Face format), encoder.json and vocab.bpe into --out; Loupe's \
            tokenizer loaders and Hugging Face tokenizers read them. Ties between equally frequent pairs \
            go to the pair with the smaller (left id, right id), as in Hugging Face tokenizers.

            Example:
              loupe train tokenizer --corpus austen/*.txt --vocab-size 8192 --out austen-bpe
            """)

    @Option(name: [.customLong("corpus"), .customLong("text")], parsing: .upToNextOption, help: "UTF-8 text files, one text each.")
    var corpus: [String]

    @Option(name: .long, parsing: .unconditional, help: "Vocabulary size: 256 byte tokens + learned tokens + special tokens.", transform: Count.positive)
    var vocabSize: Int

    @Option(name: .long, help: "Output folder (created if missing).")
    var out: String

    @Option(name: .long, parsing: .unconditional, help: "Pairs seen fewer times are never merged.", transform: Count.nonNegative)
    var minFrequency: Int = 2

    @Option(name: .long, help: "A special token (repeatable; default <|endoftext|>).")
    var special: [String] = []

    @Flag(name: .long, help: "No special tokens.")
    var noSpecial = false

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    struct Output: Encodable {
        let vocabSize: Int
        let requestedVocabSize: Int
        let merges: Int
        let specialTokens: [String: Int]
        let corpusBytes: Int
        let bytesPerToken: Double
        let seconds: Double
        let files: [String]
    }

    func validate() throws {
        guard ParseChecks.enabled else { return }
        if corpus.isEmpty { throw ValidationError("--corpus: give at least one text file") }
        if noSpecial && !special.isEmpty { throw ValidationError("give --special or --no-special, not both") }
    }

    func run() throws {
        let texts = try corpus.map { try readText($0, chars: nil, option: "--corpus") }
        let specials = noSpecial ? [] : (special.isEmpty ? ["<|endoftext|>"] : special)
        let trainer = BPETrainer(vocabSize: vocabSize, specialTokens: specials, minFrequency: minFrequency)

        let clock = ContinuousClock()
        let started = clock.now
        let trained = try trainer.train(texts: texts) { done, total in
            if !json && (done % 1000 == 0 || done == total) {
                FileHandle.standardError.write(Data("merges \(done)/\(total)\n".utf8))
            }
        }
        let elapsed = clock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let files = try trained.write(to: URL(fileURLWithPath: out, isDirectory: true))
        let tokenizer = try trained.tokenizer()
        let bytesPerToken = tokenizer.bytesPerToken(texts)
        let corpusBytes = texts.reduce(0) { $0 + $1.utf8.count }

        if json {
            try printJSON(Output(vocabSize: trained.vocabSize, requestedVocabSize: trained.requestedVocabSize,
                                 merges: trained.merges.count, specialTokens: trained.specialTokens,
                                 corpusBytes: corpusBytes, bytesPerToken: bytesPerToken, seconds: seconds,
                                 files: files.map(\.path)))
            return
        }
        let short = trained.vocabSize < trained.requestedVocabSize
            ? " (asked for \(trained.requestedVocabSize): no pair left with count ≥ \(minFrequency))" : ""
        print("vocab size     \(trained.vocabSize)\(short)")
        print("merges         \(trained.merges.count)")
        print("special        \(trained.specialTokens.sorted { $0.value < $1.value }.map { "\(shown($0.key)) \($0.value)" }.joined(separator: ", "))")
        print("corpus         \(texts.count) file\(texts.count == 1 ? "" : "s"), \(corpusBytes) bytes")
        print(String(format: "bytes/token    %.3f (on the training corpus)", bytesPerToken))
        print(String(format: "time           %.2f s (training)", seconds))
        for file in files { print("wrote          \(file.path)") }
    }
}
