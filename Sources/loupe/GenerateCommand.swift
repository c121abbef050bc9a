import ArgumentParser
import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Continue a prompt, greedily or by sampling, with a KV cache.",
        discussion: """
            Examples:
              loupe generate --model smollm2-135m --chat --prompt "Name three primary colors." --max-tokens 40
              loupe generate --prompt "It is a truth" --temperature 0.8 --top-p 0.9 --seed 1
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Text to continue.")
    var prompt: String

    @Flag(name: .long, help: "Wrap --prompt in the model's chat template as a user message (instruct models).")
    var chat = false

    @Option(name: .long, parsing: .unconditional, help: "How many tokens to generate at most.", transform: Count.nonNegative)
    var maxTokens: Int = 32

    @Option(name: .long, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .long, parsing: .unconditional, help: "Sample only from the k most likely tokens (0: all).", transform: Count.nonNegative)
    var topK: Int = 0

    @Option(name: .long, help: "Sample only from the smallest set of tokens with probability ≥ p.")
    var topP: Float = 1

    @Option(name: .long, help: "Random seed for sampling.")
    var seed: UInt64 = 0

    @Flag(name: .long, help: "Print JSON instead of streaming text.")
    var json = false

    struct Output: Encodable { let prompt: String; let promptTokens: [Int]; let tokens: [Int]; let text: String }

    func run() throws {
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        let loaded = try modelOptions.load()
        let tok = try loaded.requireTokenizer()
        guard !prompt.isEmpty else { throw ValidationError("--prompt is empty: nothing to continue") }
        let ids = try encodePrompt(prompt, chat: chat, loaded: loaded)
        let sampling = SamplingOptions(temperature: temperature, topK: topK, topP: topP, seed: seed)
        if !json && !chat { FileHandle.standardOutput.write(Data(prompt.utf8)) }
        // Stream whole characters: a token may end inside a UTF-8 sequence.
        var pending: [UInt8] = []
        let stop = tok.eosID ?? tok.endOfText ?? loaded.model.config.eosTokenID
        var out = try loaded.model.generate(prompt: ids, maxTokens: maxTokens, sampling: sampling, stopToken: stop) { id in
            guard !json, id != stop, let bytes = try? tok.decodeBytes([id]) else { return }
            pending += bytes
            if String(validatingCString: pending.map { CChar(bitPattern: $0) } + [0]) != nil {
                FileHandle.standardOutput.write(Data(pending))
                pending = []
            }
        }
        if let stop, out.last == stop { out.removeLast() }   // the end-of-text marker is not part of the text
        let text = (try? tok.decode(out)) ?? out.map { loaded.tokenText($0) }.joined()
        if json {
            try printJSON(Output(prompt: prompt, promptTokens: ids, tokens: out, text: text))
        } else {
            if !pending.isEmpty { FileHandle.standardOutput.write(Data(String(decoding: pending, as: UTF8.self).utf8)) }
            print("")
        }
    }
}
