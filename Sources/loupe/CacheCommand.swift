import ArgumentParser
import Foundation
import LoupeFormats
import LoupeModels
import LoupeTensor

struct Cache: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a prompt and save activations under their TransformerLens hook names.",
        discussion: """
            Tensors keep the batch dimension, as TransformerLens's run_with_cache returns them. attn.hook_result is saved only when --names matches it.

            Example:
              loupe cache --prompt "The Eiffel Tower is in" --names 'blocks.1.attn' --out acts.safetensors
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var input: PromptOptions

    @Option(name: .long, help: "Output .safetensors file.")
    var out: String

    @Option(name: .long, help: "Only hook points whose full name matches this regular expression (searched, not anchored).")
    var names: String?

    @Flag(name: .long, help: "Process the weights first, as TransformerLens's from_pretrained does (fold LayerNorm, centre writing weights and unembed, fold value biases).")
    var processed = false

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    struct Output: Encodable {
        struct Entry: Encodable { let name: String; let shape: [Int] }
        let out: String
        let tokens: Int
        let megabytes: Double
        let hooks: [Entry]
    }

    func run() throws {
        let loaded = try modelOptions.load(encoders: true)
        let model = processed ? try loaded.model.processed() : loaded.model
        let tokens = try input.tokens(loaded)
        let selection = try HookSelection.select(model: model, pattern: names)
        let (_, cache) = try model.runWithCache(.tokens([tokens]), select: selection)
        let named = cache.names.map { (name: $0.description, tensor: cache[$0]!) }
        try writeSafetensors(named, metadata: ["source": loaded.source, "processed": String(processed),
                                               "tokens": tokens.map(String.init).joined(separator: ",")],
                             to: URL(fileURLWithPath: out))
        let mb = Double(cache.byteCount) / 1_048_576
        if json {
            try printJSON(Output(out: out, tokens: tokens.count, megabytes: mb, hooks: named.map { .init(name: $0.name, shape: $0.tensor.shape) }))
            return
        }
        let width = named.map(\.name.count).max() ?? 10
        for (name, t) in named { print(name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + "\(t.shape)") }
        print(String(format: "\n%d hook points, %.2f MB, %d tokens → %@", named.count, mb, tokens.count, out))
    }
}

/// Hook points chosen by a regular expression over TransformerLens names.
enum HookSelection {
    static func select(model: HookedTransformer, pattern: String?) throws -> CacheSelection {
        guard let pattern else { return .all }
        let regex: NSRegularExpression
        do { regex = try NSRegularExpression(pattern: pattern) } catch {
            throw ValidationError("--names: '\(pattern)' is not a valid regular expression")
        }
        let chosen = model.hookNames(includeResult: true).filter {
            let s = $0.description
            return regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
        }
        guard !chosen.isEmpty else { throw HookError.noMatch(pattern: pattern) }
        return .names(Set(chosen))
    }
}
