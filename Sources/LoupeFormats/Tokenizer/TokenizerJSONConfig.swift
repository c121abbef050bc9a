// The parts of a Hugging Face `tokenizer.json` that are free-form objects: `pre_tokenizer` (which split the
// model uses) and `post_processor` (whether a BOS token is prepended).
// Reference: https://github.com/huggingface/tokenizers (`pre_tokenizers/mod.rs`, `processors/template.rs`).

/// Any JSON value, for the configuration objects of a `tokenizer.json`.
enum JSONValue: Decodable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    var bool: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    var array: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// A short rendering for error messages: `Type(key: value, …)` for objects with a `type`,
    /// `Sequence[…]` for sequences, JSON-like otherwise.
    var summary: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .number(let value): return value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
        case .string(let value): return "\"" + value + "\""
        case .array(let items): return "[" + items.map(\.summary).joined(separator: ", ") + "]"
        case .object(let fields):
            if let type = fields["type"]?.string {
                if type == "Sequence", let items = (fields["pretokenizers"] ?? fields["processors"])?.array {
                    return "Sequence[" + items.map(\.summary).joined(separator: ", ") + "]"
                }
                let rest = fields.filter { $0.key != "type" }.sorted { $0.key < $1.key }
                return rest.isEmpty ? type : type + "(" + rest.map { "\($0.key): \($0.value.summary)" }.joined(separator: ", ") + ")"
            }
            return "{" + fields.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.summary)" }.joined(separator: ", ") + "}"
        }
    }
}

extension PreTokenizer {
    /// The Llama 3 split pattern as its tokenizer.json spells it.
    static let llama3Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// The Qwen2 split pattern as its tokenizer.json spells it.
    static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The pre-tokenizer a `tokenizer.json` `pre_tokenizer` object describes, or nil if it is none of:
    /// - `ByteLevel(add_prefix_space: false, use_regex: true)` (alone or as a one-element Sequence): `.gpt2`;
    /// - `Sequence[Digits(individual_digits: true), ByteLevel(add_prefix_space: false, use_regex: true)]`: `.smollm`;
    /// - `Sequence[Split(Regex pattern, behavior: Isolated, invert: false), ByteLevel(add_prefix_space: false,
    ///   use_regex: false)]` with Llama 3's or Qwen2's pattern: `.llama3` or `.qwen2`.
    /// `trim_offsets` only affects offsets, which this tokenizer does not report.
    init?(tokenizerJSON config: JSONValue) {
        func isByteLevel(_ value: JSONValue, useRegex: Bool) -> Bool {
            value["type"]?.string == "ByteLevel"
                && (value["add_prefix_space"]?.bool ?? false) == false
                && (value["use_regex"]?.bool ?? true) == useRegex
        }
        if isByteLevel(config, useRegex: true) {
            self = .gpt2
            return
        }
        guard config["type"]?.string == "Sequence", let steps = config["pretokenizers"]?.array else { return nil }
        if steps.count == 1 && isByteLevel(steps[0], useRegex: true) {
            self = .gpt2
            return
        }
        guard steps.count == 2 else { return nil }
        let (first, second) = (steps[0], steps[1])
        if first["type"]?.string == "Digits", first["individual_digits"]?.bool == true, isByteLevel(second, useRegex: true) {
            self = .smollm
            return
        }
        if first["type"]?.string == "Split", first["behavior"]?.string == "Isolated",
           (first["invert"]?.bool ?? false) == false, let pattern = first["pattern"]?["Regex"]?.string,
           isByteLevel(second, useRegex: false) {
            switch pattern {
            case Self.llama3Pattern: self = .llama3
            case Self.qwen2Pattern: self = .qwen2
            default: return nil
            }
            return
        }
        return nil
    }
}

extension BPETokenizer {
    /// The special tokens a `tokenizer.json` `post_processor` puts at the start and at the end of every single
    /// sequence: a `TemplateProcessing` (alone or inside a `Sequence`) whose `single` template starts or ends with
    /// one special token, as Llama 3's `<|begin_of_text|> $A` or BERT's `[CLS] $A [SEP]`, or a `BertProcessing`'s
    /// `cls` and `sep`. Each is the first one found; nil where there is none.
    static func templateTokens(_ postProcessor: JSONValue?) -> (first: Int?, last: Int?) {
        guard let postProcessor else { return (nil, nil) }
        func id(_ v: JSONValue?) -> Int? {
            guard case .number(let x)? = v, x >= 0, x == x.rounded(), x < Double(Int32.max) else { return nil }
            return Int(x)
        }
        if postProcessor["type"]?.string == "BertProcessing" {
            return (id(postProcessor["cls"]?.array?.last), id(postProcessor["sep"]?.array?.last))
        }
        var candidates = [postProcessor]
        if postProcessor["type"]?.string == "Sequence" { candidates = postProcessor["processors"]?.array ?? [] }
        var first: Int?, last: Int?
        for processor in candidates where processor["type"]?.string == "TemplateProcessing" {
            guard let single = processor["single"]?.array, single.count >= 2 else { continue }
            func special(_ element: JSONValue) -> Int? {
                guard let name = element["SpecialToken"]?["id"]?.string,
                      let ids = processor["special_tokens"]?[name]?["ids"]?.array, ids.count == 1 else { return nil }
                return id(ids[0])
            }
            first = first ?? special(single[0])
            last = last ?? special(single[single.count - 1])
        }
        return (first, last)
    }
}
