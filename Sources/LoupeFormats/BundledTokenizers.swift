import Foundation

/// Tokenizer files that ship with Loupe.
public enum BundledTokenizers {
    /// The folder with GPT-2's `encoder.json` and `vocab.bpe`.
    public static var gpt2Directory: URL? {
        Bundle.module.url(forResource: "gpt2", withExtension: nil)
    }
}
