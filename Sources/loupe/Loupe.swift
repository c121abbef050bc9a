// The `loupe` command-line tool. Each subcommand parses, calls the library, and renders.

import ArgumentParser
import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor

@main
struct Loupe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loupe",
        abstract: "A mechanistic-interpretability workbench for transformer language models.",
        version: loupeVersion,
        subcommands: [Run.self, Generate.self, Fill.self, Embed.self, Similarity.self, Eval.self, Cache.self, HooksCommand.self, Lens.self, LensEval.self, Probe.self, Attention.self, Heads.self, Patch.self,
                      Path.self, Attribute.self, Trace.self, Ablate.self, IOI.self, Scrub.self, Circuits.self, Edit.self, Neurons.self, NeuronIndex.self, ActivationStats.self, Merge.self, PCA.self, ReportCommand.self, ProcessWeights.self, Fetch.self, Models.self, Train.self, Features.self,
                      Compare.self, Bench.self, Serve.self])
}

/// Where the model comes from.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "A model: a known name (see `loupe models`; austen ships with Loupe), a .gguf file, or a Hugging Face folder (config.json + model.safetensors + tokenizer files; GPT-2's when none).")
    var model: String = ModelRegistry.defaultModel

    @Option(name: .long, parsing: .unconditional, help: "Threads for BLAS and Loupe's kernels.", transform: Count.positive)
    var threads: Int = 2

    @Flag(name: .long, help: "Make float32 copies of the weights at load (the reference path; 4 bytes a parameter) instead of running the file's weights in place (a GGUF's quantized blocks, a folder's safetensors).")
    var dequantize = false

    /// The model. Commands that read next-token predictions refuse a bidirectional (masked-LM) model unless
    /// `encoders` says they handle one.
    func load(encoders: Bool = false) throws -> LoadedModel {
        BLAS.setThreads(threads)
        let path = try resolveModel(model)
        let loaded = try ModelLoader.load(path: path, dequantize: dequantize)
        if loaded.model.config.bidirectional && !encoders {
            throw ValidationError("\(model) is a masked-LM encoder (\(loaded.model.config.architecture)): it predicts [MASK] tokens, not the next one. `loupe fill`, `embed`, `similarity`, `hooks`, `cache`, `attention`, `heads --prompt`, `patch` and `compare` work on it; this command needs a causal model")
        }
        return loaded
    }
}

/// The path of a model given by name or path, fetching a known one on first use (progress on stderr).
func resolveModel(_ name: String) throws -> String {
    try ModelRegistry.resolve(name) { FileHandle.standardError.write(Data("fetch \(name): \($0)\n".utf8)) }
}

/// What the model reads: text or token ids.
struct PromptOptions: ParsableArguments {
    @Option(name: .long, help: "Text to tokenize.")
    var prompt: String?

    @Option(name: .long, help: "Comma-separated token ids, e.g. 464,3290,318.")
    var ids: String?

    @Flag(name: .long, help: "Wrap --prompt in the model's chat template as a user message (instruct models).")
    var chat = false

    func validate() throws {
        guard ParseChecks.enabled else { return }
        if (prompt == nil) == (ids == nil) { throw ValidationError("give exactly one of --prompt TEXT or --ids 1,2,3") }
    }

    func tokens(_ loaded: LoadedModel) throws -> [Int] {
        if let ids { return try parseIDs(ids, option: "--ids") }
        guard let prompt, !prompt.isEmpty else { throw ValidationError("--prompt is empty: nothing to run") }
        return try encodePrompt(prompt, chat: chat, loaded: loaded)
    }
}

/// A JSON Lines file: one `T` per non-empty line; errors name the option, the line and what a line holds
/// (`shape`, e.g. `{"prompt": …, "answer": …}`), and an empty file is an error.
func readJSONLines<T: Decodable>(_ path: String, option: String, shape: String) throws -> [T] {
    let text = try readText(path, chars: nil, option: option)
    var out: [T] = []
    for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let line = raw.trimmingCharacters(in: .whitespaces)
        if line.isEmpty { continue }
        do { out.append(try JSONDecoder().decode(T.self, from: Data(line.utf8))) } catch {
            throw ValidationError("\(option) \(path), line \(i + 1): expected \(shape); \(error)")
        }
    }
    guard !out.isEmpty else { throw ValidationError("\(option) \(path) holds no lines") }
    return out
}

/// A UTF-8 text file (its first `chars` characters when given); errors name the option and the problem.
func readText(_ path: String, chars: Int?, option: String = "--text") throws -> String {
    do {
        return try readUTF8Text(path: path, characters: chars)
    } catch {
        throw ValidationError("\(option): \(error)")
    }
}

/// A head given as `LAYER.HEAD` (e.g. `5.1`).
func parseHead(_ value: String?, option: String) throws -> (layer: Int, head: Int) {
    let parts = value?.split(separator: ".", omittingEmptySubsequences: false).map { Int($0) } ?? []
    guard parts.count == 2, let layer = parts[0], let head = parts[1] else {
        throw ValidationError("\(option) must be LAYER.HEAD, e.g. 5.1; found '\(value ?? "nothing")'")
    }
    return (layer, head)
}

/// Comma-separated token ids.
func parseIDs(_ list: String, option: String) throws -> [Int] {
    try list.split(separator: ",", omittingEmptySubsequences: false).map {
        let p = $0.trimmingCharacters(in: .whitespaces)
        guard let v = Int(p) else { throw ValidationError("\(option): '\(p)' is not an integer token id") }
        return v
    }
}

/// Tokens for a prompt as the model expects them: through the chat template when asked, with BOS when
/// the tokenizer adds one.
func encodePrompt(_ prompt: String, chat: Bool, loaded: LoadedModel) throws -> [Int] {
    let tokenizer = try loaded.requireTokenizer()
    let text = chat ? try ChatTemplate.render(template: loaded.chatTemplate, user: prompt) : prompt
    let tokens = tokenizer.encodeForModel(text)
    guard !tokens.isEmpty else { throw ValidationError("the prompt encodes to no tokens") }
    return tokens
}

/// Writes JSON to standard output.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// A token's text, quoted and with control characters escaped, for tables.
func shown(_ text: String) -> String { text.quotedForDisplay }

extension LoadedModel {
    var summary: String {
        let c = model.config
        return "\(c.architecture): \(c.nLayers) layers, d_model \(c.dModel), \(c.nHeads) heads, d_vocab \(c.dVocab), n_ctx \(c.nCtx)"
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
