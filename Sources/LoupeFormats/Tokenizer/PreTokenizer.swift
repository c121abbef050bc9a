// The pre-tokenizers of byte-level BPE models: how a text is cut into pieces before merging (a merge never
// crosses a piece boundary). Each is the split that Hugging Face `tokenizers` performs for the model family,
// written out as a scanner over Unicode scalars.
// References: https://github.com/huggingface/tokenizers (`pre_tokenizers/{byte_level,digits,split,sequence}.rs`);
// llama.cpp `src/llama-vocab.cpp` (`tokenizer.ggml.pre` names and their patterns).

/// How a byte-level BPE tokenizer splits text into pieces before merging.
///
/// ```swift
/// PreTokenizer.smollm.pieces(of: "In 2024 we")   // ["In", " ", "2", "0", "2", "4", " we"]
/// PreTokenizer.llama3.pieces(of: "In 2024 we")   // ["In", " ", "202", "4", " we"]
/// ```
///
/// Letters are general category L*, numbers N* (decimal digits, letter numbers such as Ⅻ, other numbers such
/// as ² and ½), whitespace is the Unicode White_Space property (what the regex engines mean by `\s`).
public enum PreTokenizer: String, Sendable, CaseIterable, CustomStringConvertible {
    /// GPT-2's pattern `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    /// (Hugging Face `ByteLevel(use_regex: true)`; also GPT-NeoX, Pythia, Phi-2, OLMo, MPT).
    case gpt2
    /// Every number scalar a piece of its own, then GPT-2's pattern within the text between: SmolLM, SmolLM2,
    /// StarCoder (Hugging Face `Sequence[Digits(individual_digits: true), ByteLevel]`). Unlike `.gpt2`, a space
    /// before a digit is never joined to it: `" 42"` is `" "`, `"4"`, `"2"`.
    case smollm
    /// Llama 3's pattern (llama.cpp's `llama-bpe`), applied by a Split before `ByteLevel(use_regex: false)`:
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
    /// Numbers go in runs of at most three, contractions match in any case, one non-letter (a space, a tab,
    /// a quote) joins the word after it, and newlines gather with the whitespace before them.
    case llama3
    /// Qwen2's pattern: Llama 3's with single numbers (`\p{N}` for `\p{N}{1,3}`).
    case qwen2

    public var description: String { rawValue }

    /// The pieces of `text` as strings. Special tokens are not recognized here (the tokenizer splits them
    /// out before pre-tokenizing); for inspection and tests.
    public func pieces(of text: String) -> [String] {
        let scalars = text.unicodeScalars.map(\.value)
        let classes = scalars.map { GPT2PreTokenizer.classify($0).rawValue }
        var result: [String] = []
        scalars.withUnsafeBufferPointer { s in
            classes.withUnsafeBufferPointer { c in
                split(scalars: s, classes: c, range: 0..<s.count) { start, end in
                    var piece = String.UnicodeScalarView()
                    for v in s[start..<end] { if let u = Unicode.Scalar(v) { piece.append(u) } }
                    result.append(String(piece))
                }
            }
        }
        return result
    }

    /// Calls `body(start, end)` for each piece `start..<end` of `range`, in order; the pieces tile `range`.
    ///
    /// - Parameters:
    ///   - scalars: scalar values of the whole text.
    ///   - classes: `GPT2PreTokenizer.classify(scalars[i]).rawValue` for every `i`.
    ///   - range: the segment to split (a piece never looks past `range.upperBound`).
    @inline(__always)
    func split(
        scalars: UnsafeBufferPointer<UInt32>, classes: UnsafeBufferPointer<UInt8>, range: Range<Int>,
        _ body: (Int, Int) -> Void
    ) {
        switch self {
        case .gpt2:
            GPT2PreTokenizer.split(scalars: scalars, classes: classes, range: range, body)
        case .smollm:
            // Digits(individual_digits) isolates each number scalar; ByteLevel's regex then runs on each
            // stretch between them, so no GPT-2 piece spans a digit.
            let number = GPT2PreTokenizer.ScalarClass.number.rawValue
            var start = range.lowerBound
            for i in range where classes[i] == number {
                if start < i { GPT2PreTokenizer.split(scalars: scalars, classes: classes, range: start..<i, body) }
                body(i, i + 1)
                start = i + 1
            }
            if start < range.upperBound {
                GPT2PreTokenizer.split(scalars: scalars, classes: classes, range: start..<range.upperBound, body)
            }
        case .llama3:
            Llama3PreTokenizer.split(scalars: scalars, classes: classes, range: range, maxNumberRun: 3, body)
        case .qwen2:
            Llama3PreTokenizer.split(scalars: scalars, classes: classes, range: range, maxNumberRun: 1, body)
        }
    }
}

// MARK: - GGUF names

extension PreTokenizer {
    /// One value of GGUF's `tokenizer.ggml.pre`.
    struct GGUFName: Sendable {
        let name: String
        let preTokenizer: PreTokenizer
        /// llama.cpp's `ignore_merges` (Hugging Face's `model.ignore_merges`): a piece that is itself a
        /// vocabulary token is emitted whole, without merging.
        let ignoresMerges: Bool
        /// Whether llama.cpp adds BOS for this name when the GGUF has no `tokenizer.ggml.add_bos_token`.
        let addsBOSByDefault: Bool
    }

    /// The names llama.cpp gives (in `llama-vocab.cpp`) to the pre-tokenizers above, plus `gpt2`.
    /// `default` (what llama.cpp assumes when a GGUF names none) is taken as GPT-2's pattern, the byte-level
    /// BPE default of Hugging Face `tokenizers`; llama.cpp itself then runs a legacy approximation of it.
    static let ggufNames: [GGUFName] = {
        var names: [GGUFName] = []
        func add(_ list: [String], _ preTokenizer: PreTokenizer, ignoresMerges: Bool = false, addsBOS: Bool = false) {
            names += list.map {
                GGUFName(name: $0, preTokenizer: preTokenizer, ignoresMerges: ignoresMerges, addsBOSByDefault: addsBOS)
            }
        }
        add(["default", "gpt2", "gpt-2", "phi-2", "mpt", "olmo", "jais", "gigachat", "jina-es", "jina-de", "jina-v2-es",
             "jina-v2-de", "a.x-4.0", "mellum", "trillion", "granite-docling", "exaone4"], .gpt2)
        add(["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"], .smollm)
        add(["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
            .llama3, ignoresMerges: true, addsBOS: true)
        add(["dbrx", "smaug-bpe"], .llama3)
        add(["qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2", "hunyuan"], .qwen2)
        return names.sorted { $0.name < $1.name }
    }()

    /// The entry for a `tokenizer.ggml.pre` value, or nil.
    static func gguf(named name: String) -> GGUFName? {
        ggufNames.first { $0.name == name }
    }
}

extension PreTokenizer {
    /// A text's UTF-8 bytes, its scalar values, their pre-tokenizer classes, and where each scalar's UTF-8
    /// starts (one entry more than scalars: the end), as `split` and the byte-level pieces need them.
    static func scan(_ text: String) -> (utf8: [UInt8], scalars: [UInt32], classes: [UInt8], starts: [Int]) {
        let utf8 = Array(text.utf8)
        var scalars: [UInt32] = [], classes: [UInt8] = [], starts: [Int] = []
        scalars.reserveCapacity(utf8.count)
        classes.reserveCapacity(utf8.count)
        starts.reserveCapacity(utf8.count + 1)
        var offset = 0
        for scalar in text.unicodeScalars {
            scalars.append(scalar.value)
            classes.append(GPT2PreTokenizer.classify(scalar.value).rawValue)
            starts.append(offset)
            offset += UTF8.width(scalar)
        }
        starts.append(offset)
        return (utf8, scalars, classes, starts)
    }
}
