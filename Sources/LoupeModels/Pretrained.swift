// One-call loading, as TransformerLens's `HookedTransformer.from_pretrained`.

import Foundation

extension HookedTransformer {
    /// Loads a model by name (`austen`, which ships with Loupe; `smollm2-135m`, fetched on first use and
    /// checked by sha256; see `ModelRegistry`), or from a `.gguf` file or Hugging Face folder, with its
    /// tokenizer, and processes its weights as TransformerLens's `from_pretrained` does by default (fold
    /// LayerNorm, centre writing weights, centre the unembedding, fold value biases). Logits are unchanged
    /// up to a constant per position (the centred unembedding); probabilities are unchanged.
    ///
    ///     let model = try HookedTransformer.pretrained("smollm2-135m")
    ///     let raw = try HookedTransformer.pretrained("austen", processing: nil)   // weights as stored
    ///
    /// - Parameters:
    ///   - processing: the steps to apply, or nil for the weights as stored.
    ///   - fetchLog: receives progress lines when the model has to be fetched; nil forbids fetching (an
    ///     unfetched model is then an error).
    public static func pretrained(_ nameOrPath: String,
                                  processing: WeightProcessing? = .transformerLensDefaults,
                                  fetchLog: ((String) -> Void)? = { _ in }) throws -> HookedTransformer {
        let path = try ModelRegistry.resolve(nameOrPath, fetchLog: fetchLog)
        let model = try ModelLoader.load(path: path).model
        guard let processing else { return model }
        return try model.processed(processing)
    }
}
