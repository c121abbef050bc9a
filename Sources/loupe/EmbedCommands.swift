// `loupe embed` and `loupe similarity`: sentence embeddings of a sentence-transformers encoder folder.

import ArgumentParser
import Foundation
import LoupeModels

/// Sentences from --file (one per line) or --sentence options, embedded as the model's folder says.
struct SentenceInput: ParsableArguments {
    @Option(name: .long, help: "A text file with one sentence per line (blank lines skipped).") var file: String?
    @Option(name: .long, help: "A sentence (repeat the option for several).") var sentence: [String] = []

    func sentences() throws -> [String] {
        var out = sentence
        if let file {
            out += try readText(file, chars: nil, option: "--file").split(separator: "\n").map {
                $0.trimmingCharacters(in: .whitespacesAndNewlines)
            }.filter { !$0.isEmpty }
        }
        guard !out.isEmpty else { throw ValidationError("give sentences: --file FILE (one per line) or --sentence TEXT") }
        return out
    }

    /// The embeddings of the sentences, with the model and the embedder its folder describes.
    func embed(_ modelOptions: ModelOptions) throws -> (sentences: [String], embeddings: [[Float]], tokens: [Int]) {
        let texts = try sentences()
        let loaded = try modelOptions.load(encoders: true)
        guard loaded.model.config.bidirectional else {
            throw ValidationError("\(modelOptions.model) is a causal model (\(loaded.model.config.architecture)); sentence embeddings need an encoder such as --model minilm-l6")
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: loaded.source, isDirectory: &isFolder), isFolder.boolValue else {
            throw ValidationError("\(modelOptions.model) is not a model folder with sentence-transformers modules")
        }
        let embedder = try SentenceEmbedder(folder: URL(fileURLWithPath: loaded.source))
        let tokenizer = try loaded.requireTokenizer()
        let ids = texts.map { embedder.tokens($0, tokenizer: tokenizer) }
        let vectors = try embedder.embed(ids, model: loaded.model)
        return (texts, vectors, ids.map(\.count))
    }
}

struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sentence embeddings from a sentence-transformers encoder (e.g. all-MiniLM-L6-v2).",
        discussion: """
            Each sentence is tokenized ([CLS] … [SEP], cut to the folder's max_seq_length), the sentences run \
            as one padded batch, and the last hidden states pooled and normalised as the folder's modules.json \
            says (mean pooling over each sentence's own tokens, then L2 normalisation, for all-MiniLM-L6-v2).

            Examples:
              loupe embed --model minilm-l6 --sentence "A man is playing a guitar." --sentence "Someone plays music."
              loupe embed --model minilm-l6 --file sentences.txt --json > embeddings.json
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var input: SentenceInput
    @Flag(name: .long, help: "Print JSON: {\"model\", \"sentences\", \"tokens\", \"embeddings\": [[...], ...]}.") var json = false

    struct Output: Encodable { let model: String; let sentences: [String]; let tokens: [Int]; let embeddings: [[Float]] }

    func run() throws {
        let (sentences, vectors, tokens) = try input.embed(modelOptions)
        if json {
            try printJSON(Output(model: modelOptions.model, sentences: sentences, tokens: tokens, embeddings: vectors))
            return
        }
        for (i, (s, v)) in zip(sentences, vectors).enumerated() {
            let head = v.prefix(6).map { String(format: "%+.4f", $0) }.joined(separator: " ")
            print("\(i)  \(shown(String(s.prefix(60))))  \(tokens[i]) tokens  [\(head) … ] (\(v.count) dims)")
        }
    }
}

struct Similarity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cosine similarities between sentence embeddings, as a table.",
        discussion: """
            Examples:
              loupe similarity --model minilm-l6 --sentence "A cat sits on the mat." --sentence "A dog lies on the rug." --sentence "Stocks fell sharply."
              loupe similarity --model minilm-l6 --file sentences.txt --json
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var input: SentenceInput
    @Flag(name: .long, help: "Print JSON: {\"model\", \"sentences\", \"cosine\": [[...]]}.") var json = false

    struct Output: Encodable { let model: String; let sentences: [String]; let cosine: [[Float]] }

    func run() throws {
        let (sentences, vectors, _) = try input.embed(modelOptions)
        let cosine = vectors.map { a in
            vectors.map { b -> Float in
                let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
                let na = a.reduce(0) { $0 + $1 * $1 }.squareRoot(), nb = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
                return dot / max(na * nb, 1e-12)
            }
        }
        if json {
            try printJSON(Output(model: modelOptions.model, sentences: sentences, cosine: cosine))
            return
        }
        for (i, s) in sentences.enumerated() { print("\(i)  \(s)") }
        print("")
        print("     " + sentences.indices.map { String(format: "%7d", $0) }.joined())
        for (i, row) in cosine.enumerated() {
            print(String(format: "%4d ", i) + row.map { String(format: "%7.3f", $0) }.joined())
        }
    }
}
