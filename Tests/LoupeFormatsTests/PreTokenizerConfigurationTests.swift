// Tests of the pre-tokenizers beyond GPT-2's (SmolLM2, Llama 3, Qwen2), of `tokenizer.json` pre-tokenizer
// configurations, and of loading from GGUF vocabulary data.
//
// Expected ids and pieces come from Hugging Face `tokenizers` (never from this code), through the fixtures that
// `scripts/make_tokenizer_fixtures.py` writes from the SmolLM2-135M-Instruct GGUF's vocabulary:
// `Tests/Fixtures/smollm2-tokenizer.json` (SmolLM2's tokenizer) and `*-tokenizer-cases.json`. The Llama 3 and
// Qwen2 tokenizers are synthetic: SmolLM2's with the `overrides` of their cases file (pre-tokenizer, added
// tokens, post-processor, `model.ignore_merges`) written into a temporary tokenizer.json. Each case runs
// through `init(tokenizerJSON:)` and through `init(ggufTokens:…)`, whose arrays are read out of that JSON.

import Foundation
import Testing
@testable import LoupeFormats

// MARK: - Configurations, GGUF data and errors

@Suite("Pre-tokenizers: configurations and errors")
struct PreTokenizerConfigurationTests {
    static let byteLevel = #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#
    static let byteLevelNoRegex = #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}"#
    static let llama3Split = #"{"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false}"#

    /// A tiny tokenizer.json with the given `pre_tokenizer` value (nil: no such key).
    static func tokenizerJSON(preTokenizer: String?) -> String {
        let pre = preTokenizer.map { "\"pre_tokenizer\": \($0)," } ?? ""
        return """
            {\(pre) "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "1": 4, "Ġ1": 5}, "merges": ["a b", "Ġ 1"]}}
            """
    }

    static let supported: [(String?, PreTokenizer)] = [
        (nil, .gpt2),
        (byteLevel, .gpt2),
        (#"{"type": "ByteLevel", "add_prefix_space": false}"#, .gpt2),
        (#"{"type": "Sequence", "pretokenizers": [\#(byteLevel)]}"#, .gpt2),
        (#"{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, \#(byteLevel)]}"#, .smollm),
        (#"{"type": "Sequence", "pretokenizers": [\#(llama3Split), \#(byteLevelNoRegex)]}"#, .llama3),
        (#"{"type": "Sequence", "pretokenizers": [\#(llama3Split.replacingOccurrences(of: "{1,3}", with: "")), \#(byteLevelNoRegex)]}"#, .qwen2),
    ]

    @Test(arguments: supported.indices)
    func supportedPreTokenizer(_ index: Int) throws {
        let (config, expected) = Self.supported[index]
        let url = try PreTokenizerTestData.temporaryFile(text: Self.tokenizerJSON(preTokenizer: config))
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let tok = try BPETokenizer(tokenizerJSON: url)
        #expect(tok.preTokenizer == expected)
        // " 1": one piece (→ "Ġ1") for GPT-2; Digits and both Split patterns cut the space from the digit.
        #expect(tok.encode("ab 1") == (expected == .gpt2 ? [2, 5] : [2, 3, 4]))
    }

    /// Unsupported `pre_tokenizer` values and how the error names them.
    static let unsupported: [(String, String)] = [
        ("null", "null"),
        (#"{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}"#,
         #"Metaspace(prepend_scheme: "always", replacement: "▁", split: true)"#),
        (#"{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}"#,
         "ByteLevel(add_prefix_space: true, trim_offsets: true, use_regex: true)"),
        (#"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}"#, "ByteLevel(add_prefix_space: false, use_regex: false)"),
        (#"{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": false}, \#(byteLevel)]}"#,
         "Sequence[Digits(individual_digits: false), ByteLevel(add_prefix_space: false, trim_offsets: true, use_regex: true)]"),
        (#"{"type": "Sequence", "pretokenizers": [\#(llama3Split), \#(byteLevel)]}"#,
         #"Sequence[Split(behavior: "Isolated", invert: false, pattern: {Regex: "\#(PreTokenizer.llama3Pattern)"}), "#
            + "ByteLevel(add_prefix_space: false, trim_offsets: true, use_regex: true)]"),
        (#"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false}, \#(byteLevelNoRegex)]}"#,
         #"Sequence[Split(behavior: "Isolated", invert: false, pattern: {Regex: "\s+"}), ByteLevel(add_prefix_space: false, trim_offsets: true, use_regex: false)]"#),
        (#"{"type": "Whitespace"}"#, "Whitespace"),
    ]

    @Test(arguments: unsupported.indices)
    func unsupportedPreTokenizerThrows(_ index: Int) throws {
        let (config, summary) = Self.unsupported[index]
        let url = try PreTokenizerTestData.temporaryFile(text: Self.tokenizerJSON(preTokenizer: config))
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let error = #expect(throws: TokenizerError.self) { try BPETokenizer(tokenizerJSON: url) }
        #expect(error == .unsupportedPreTokenizer(path: url.path, found: summary))
        #expect(error?.description == "\(url.path): pre_tokenizer \(summary) is not supported; supported: "
                + "ByteLevel (GPT-2), Sequence[Digits(individual_digits: true), ByteLevel] (SmolLM2), "
                + "Sequence[Split(the Llama 3 or Qwen2 pattern), ByteLevel(use_regex: false)]")
    }

    /// Every name llama.cpp gives these pre-tokenizers loads, with its pre-tokenizer and `ignore_merges`.
    @Test func ggufNames() throws {
        let expected: [String: (PreTokenizer, Bool)] = [
            "default": (.gpt2, false), "gpt2": (.gpt2, false), "gpt-2": (.gpt2, false), "phi-2": (.gpt2, false),
            "mpt": (.gpt2, false), "olmo": (.gpt2, false), "jais": (.gpt2, false), "gigachat": (.gpt2, false),
            "jina-es": (.gpt2, false), "jina-de": (.gpt2, false), "jina-v2-es": (.gpt2, false), "jina-v2-de": (.gpt2, false),
            "a.x-4.0": (.gpt2, false), "mellum": (.gpt2, false), "trillion": (.gpt2, false),
            "granite-docling": (.gpt2, false), "exaone4": (.gpt2, false),
            "smollm": (.smollm, false), "starcoder": (.smollm, false), "refact": (.smollm, false),
            "command-r": (.smollm, false), "codeshell": (.smollm, false), "exaone": (.smollm, false),
            "minerva-7b": (.smollm, false),
            "llama3": (.llama3, true), "llama-v3": (.llama3, true), "llama-bpe": (.llama3, true), "falcon3": (.llama3, true),
            "falcon-h1": (.llama3, true), "pixtral": (.llama3, true), "midm-2.0": (.llama3, true), "lfm2": (.llama3, true),
            "jina-v5-nano": (.llama3, true), "dbrx": (.llama3, false), "smaug-bpe": (.llama3, false),
            "qwen2": (.qwen2, false), "deepseek-r1-qwen": (.qwen2, false), "kormo": (.qwen2, false),
            "megrez": (.qwen2, false), "stablelm2": (.qwen2, false), "hunyuan": (.qwen2, false),
        ]
        #expect(PreTokenizer.ggufNames.map(\.name) == expected.keys.sorted())
        for (name, (preTokenizer, ignoresMerges)) in expected {
            let tok = try BPETokenizer(ggufTokens: ["a", "b", "ab"], merges: ["a b"], tokenTypes: [1, 1, 1],
                                       preTokenizer: name, bosID: nil, eosID: nil, unknownID: nil, addBOS: false)
            #expect(tok.preTokenizer == preTokenizer, "\(name)")
            #expect(tok.ignoresMerges == ignoresMerges, "\(name)")
            // llama.cpp adds BOS by default exactly for the names that also ignore merges.
            #expect(BPETokenizer.ggufAddsBOSByDefault(preTokenizer: name) == ignoresMerges, "\(name)")
        }
        #expect(BPETokenizer.ggufAddsBOSByDefault(preTokenizer: "unknown") == false)
    }

    @Test func unknownGGUFPreTokenizerThrows() {
        for name in ["foo", "", "GPT2", "tekken", "deepseek-llm"] {
            let error = #expect(throws: TokenizerError.self) {
                try BPETokenizer(ggufTokens: ["a"], merges: [], tokenTypes: nil, preTokenizer: name,
                                 bosID: nil, eosID: nil, unknownID: nil, addBOS: false)
            }
            #expect(error == .unknownPreTokenizer(name: name, known: PreTokenizer.ggufNames.map(\.name)))
        }
        #expect(TokenizerError.unknownPreTokenizer(name: "foo", known: PreTokenizer.ggufNames.map(\.name)).description
                == "unknown pre-tokenizer \"foo\" (tokenizer.ggml.pre); known: a.x-4.0, codeshell, command-r, dbrx, deepseek-r1-qwen, "
                + "default, exaone, exaone4, falcon-h1, falcon3, gigachat, gpt-2, gpt2, granite-docling, hunyuan, "
                + "jais, jina-de, jina-es, jina-v2-de, jina-v2-es, jina-v5-nano, kormo, lfm2, llama-bpe, llama-v3, "
                + "llama3, megrez, mellum, midm-2.0, minerva-7b, mpt, olmo, phi-2, pixtral, qwen2, refact, "
                + "smaug-bpe, smollm, stablelm2, starcoder, trillion")
    }

    /// A small GGUF vocabulary: the letters a b c, Ġ, merges a+b and Ġ+ab, a control token `<s>` (BOS), an
    /// unknown-type token `<unk>`, a user-defined token `<tool>`, an unused and a byte-type token.
    static func tinyGGUF(addBOS: Bool = true, bosID: Int? = 6) throws -> BPETokenizer {
        try BPETokenizer(
            ggufTokens: ["a", "b", "c", "Ġ", "ab", "Ġab", "<s>", "</s>", "<unk>", "<tool>", "[UNUSED]", "<0x0A>"],
            merges: ["a b", "Ġ ab"], tokenTypes: [1, 1, 1, 1, 1, 1, 3, 3, 2, 4, 5, 6], preTokenizer: "gpt-2",
            bosID: bosID, eosID: 7, unknownID: 8, addBOS: addBOS)
    }

    @Test func ggufTokenTypes() throws {
        let tok = try Self.tinyGGUF()
        #expect(tok.vocabSize == 12)
        #expect(tok.specialTokens == ["<s>": 6, "</s>": 7, "<unk>": 8])
        #expect(tok.encode("ab ab") == [4, 5])
        // Control and unknown-type tokens only with allowSpecial; user-defined ones always (as llama.cpp).
        #expect(tok.encode("ab<s>ab</s>") == [4, 6, 4, 7])
        #expect(tok.encode("<unk><tool>") == [8, 9])
        #expect(tok.encode("ab<tool>c", allowSpecial: false) == [4, 9, 2])
        // With allowSpecial false "<s>" is text: "<", "s", ">" are bytes the vocabulary lacks, each → <unk>.
        #expect(tok.encode("<s>", allowSpecial: false) == [8, 8, 8])
        #expect(try tok.decode([6, 4, 9, 5, 7]) == "<s>ab<tool> ab</s>")
        // Unused and byte-type tokens are vocabulary entries spelled in the byte alphabet.
        #expect(tok.id(for: "[UNUSED]") == 10)
        #expect(try tok.tokenString(11) == "<0x0A>")
    }

    @Test func bosHandling() throws {
        var tok = try Self.tinyGGUF()
        #expect(tok.bosID == 6 && tok.eosID == 7 && tok.addsBOS)
        #expect(tok.encode("ab") == [4])              // encode never adds BOS
        #expect(tok.encodeForModel("ab") == [6, 4])
        #expect(tok.encodeForModel("") == [6])
        #expect(tok.encodeForModel("<s>ab") == [6, 6, 4])  // a BOS in the text is kept, as llama.cpp does
        tok.addsBOS = false
        #expect(tok.encodeForModel("ab") == [4])
        tok.addsBOS = true
        tok.bosID = nil
        #expect(tok.encodeForModel("ab") == [4])

        let off = try Self.tinyGGUF(addBOS: false)
        #expect(off.addsBOS == false && off.bosID == 6)
        #expect(off.encodeForModel("ab") == [4])
        let none = try Self.tinyGGUF(addBOS: false, bosID: nil)
        #expect(none.encodeForModel("ab") == [4])
    }

    /// GGUF data, by argument: `gguf(["a", "b"], bos: 2, addBOS: true)`.
    struct GGUFInput: Sendable {
        var tokens: [String]
        var merges: [String] = []
        var types: [Int]? = nil
        var bos: Int? = nil
        var eos: Int? = nil
        var unknown: Int? = nil
        var addBOS = false

        func load() throws -> BPETokenizer {
            try BPETokenizer(ggufTokens: tokens, merges: merges, tokenTypes: types, preTokenizer: "gpt2",
                             bosID: bos, eosID: eos, unknownID: unknown, addBOS: addBOS)
        }
    }

    /// Broken GGUF data, each with the error it must raise.
    static let brokenGGUF: [(String, GGUFInput, TokenizerError)] = [
        ("types not one per token", GGUFInput(tokens: ["a", "b"], types: [1]),
         .invalidVocab(reason: "1 token types for 2 tokens; expected one type per token")),
        ("type out of range", GGUFInput(tokens: ["a", "b"], types: [1, 7]),
         .invalidVocab(reason: "token \"b\" (id 1) has type 7; llama.cpp's types are 1 normal, 2 unknown, 3 control, "
            + "4 user-defined, 5 unused, 6 byte")),
        ("token listed twice", GGUFInput(tokens: ["a", "b", "a"]),
         .invalidVocab(reason: "token \"a\" is listed twice, as ids 0 and 2")),
        ("empty token", GGUFInput(tokens: ["a", ""]), .invalidVocab(reason: "an empty token has id 1")),
        ("merge without a space", GGUFInput(tokens: ["a", "b", "ab"], merges: ["a b", "ab"]),
         .malformedMerge(index: 1, content: "ab")),
        ("merge of an unknown token", GGUFInput(tokens: ["a", "ab"], merges: ["a b"]),
         .mergeTokenNotInVocab(rank: 0, merge: "a b", token: "b")),
        ("BOS outside the vocabulary", GGUFInput(tokens: ["a", "b"], bos: 2, addBOS: true),
         .invalidVocab(reason: "the BOS id 2 is outside 0..<2")),
        ("EOS negative", GGUFInput(tokens: ["a", "b"], eos: -1), .invalidVocab(reason: "the EOS id -1 is outside 0..<2")),
        ("BOS added but missing", GGUFInput(tokens: ["a", "b"], addBOS: true),
         .invalidVocab(reason: "addBOS is set but there is no BOS id")),
        ("unknown id names no token", GGUFInput(tokens: ["a", "b"], unknown: 5),
         .invalidVocab(reason: "the unknown-token id 5 names no token")),
    ]

    @Test(arguments: brokenGGUF.indices)
    func brokenGGUFThrows(_ index: Int) {
        let (name, input, expected) = Self.brokenGGUF[index]
        #expect(throws: expected, "\(name)") { _ = try input.load() }
    }

    /// A template's first special token must name a token.
    @Test func templateBOSOutsideVocabularyThrows() throws {
        let json = """
            {"pre_tokenizer": \(Self.byteLevel),
             "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                                "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [99], "tokens": ["<s>"]}}},
             "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}
            """
        let url = try PreTokenizerTestData.temporaryFile(text: json)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        #expect(throws: TokenizerError.malformedJSON(
            path: url.path, expected: "the post_processor's first special token (id 99) to be in the vocabulary")) {
            try BPETokenizer(tokenizerJSON: url)
        }
    }

    @Test func errorMessages() {
        let cases: [(TokenizerError, String)] = [
            (.unknownPreTokenizer(name: "foo\t", known: ["gpt2", "smollm"]),
             "unknown pre-tokenizer \"foo\\t\" (tokenizer.ggml.pre); known: gpt2, smollm"),
            (.unsupportedPreTokenizer(path: "/x/t.json", found: "Whitespace"),
             "/x/t.json: pre_tokenizer Whitespace is not supported; supported: ByteLevel (GPT-2), "
                + "Sequence[Digits(individual_digits: true), ByteLevel] (SmolLM2), "
                + "Sequence[Split(the Llama 3 or Qwen2 pattern), ByteLevel(use_regex: false)]"),
            (.malformedMerge(index: 3, content: "a  b"), "merge 3 \"a  b\": expected two tokens separated by one space"),
        ]
        for (error, message) in cases { #expect(error.description == message) }
    }
}
