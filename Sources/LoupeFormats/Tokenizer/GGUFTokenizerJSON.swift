// A Hugging Face `tokenizer.json` made from a GGUF file's byte-level BPE vocabulary, for models written back
// as Hugging Face folders: the vocabulary in id order, the merges, control/unknown/user-defined tokens as
// added tokens, and the pre-tokenizer `tokenizers` uses for the GGUF's `tokenizer.ggml.pre` (the same
// structure as SmolLM2's own tokenizer.json).

extension TrainedBPE {
    /// The `tokenizer.json` text for GGUF vocabulary arrays (see `BPETokenizer(ggufTokens:…)` for their meaning).
    /// - Throws: `TokenizerError.unknownPreTokenizer` for a pre-tokenizer other than GPT-2's and SmolLM's
    ///   (the only ones written so far), `.malformedMerge`, `.invalidVocab` for types not one per token.
    public static func tokenizerJSON(ggufTokens tokens: [String], merges: [String], tokenTypes: [Int]?,
                                     preTokenizer pre: String, unknownID: Int?) throws -> String {
        let byteLevel = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}"
        let preJSON: String
        switch PreTokenizer.gguf(named: pre)?.preTokenizer {
        case .gpt2?: preJSON = byteLevel
        case .smollm?:
            preJSON = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": true}, \(byteLevel)]}"
        default:
            throw TokenizerError.unknownPreTokenizer(name: pre + " (as a tokenizer.json: only the GPT-2 and SmolLM pre-tokenizers are written)",
                                                     known: ["gpt2", "smollm"])
        }
        if let tokenTypes, tokenTypes.count != tokens.count {
            throw TokenizerError.invalidVocab(reason: "\(tokenTypes.count) token types for \(tokens.count) tokens; expected one type per token")
        }
        var pairs: [(left: String, right: String)] = []
        pairs.reserveCapacity(merges.count)
        for (index, merge) in merges.enumerated() {
            guard let (a, b) = BPETokenizer.splitMerge(Substring(merge)) else {
                throw TokenizerError.malformedMerge(index: index, content: merge)
            }
            pairs.append((a, b))
        }
        // Unknown (2), control (3) and user-defined (4) tokens are matched literally: added tokens.
        let added = tokens.indices.filter { [2, 3, 4].contains(tokenTypes?[$0] ?? 1) }.map { (id: $0, content: tokens[$0]) }
        let unknown = unknownID.flatMap { tokens.indices.contains($0) ? tokens[$0] : nil }
        return byteLevelTokenizerJSON(
            tokens: tokens, merges: pairs, addedTokens: added, preTokenizer: preJSON, postProcessor: nil,
            decoder: "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true}",
            unknownToken: unknown)
    }
}
