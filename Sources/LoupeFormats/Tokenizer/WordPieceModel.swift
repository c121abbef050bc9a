// WordPiece, as BERT's tokenizers run it (Hugging Face `tokenizers`: `normalizers/bert.rs`,
// `pre_tokenizers/bert.rs`, `models/wordpiece`): the text is normalized (control characters dropped, white
// space made spaces, CJK ideographs spaced apart, accents stripped, lower-cased), cut at white space and
// around every punctuation character, and each word is split greedily into the longest vocabulary pieces
// from its start, continuation pieces spelled with a "##" prefix. A word with no such split, or longer than
// `maxInputCharsPerWord` characters, is one unknown token.

import Foundation

/// BERT's normalizer (`BertNormalizer` in a `tokenizer.json`).
public struct BertNormalizer: Sendable, Equatable {
    /// Drop control characters (and U+0000, U+FFFD); turn every white-space character into a space.
    public var cleanText: Bool
    /// Put spaces around CJK ideographs, so that each is a word.
    public var handleChineseChars: Bool
    /// Decompose (NFD) and drop non-spacing marks. Hugging Face's default (`null`) follows `lowercase`.
    public var stripAccents: Bool
    /// Lower-case each character (its full lower-case mapping, without context).
    public var lowercase: Bool

    public init(cleanText: Bool = true, handleChineseChars: Bool = true, stripAccents: Bool = true, lowercase: Bool = true) {
        self.cleanText = cleanText; self.handleChineseChars = handleChineseChars
        self.stripAccents = stripAccents; self.lowercase = lowercase
    }

    /// The normalized text, as unicode scalars.
    func normalize(_ text: Substring) -> [Unicode.Scalar] {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.unicodeScalars.count)
        for u in text.unicodeScalars {
            if cleanText {
                if u.value == 0 || u.value == 0xFFFD || Self.isControl(u) { continue }
                if Self.isWhitespace(u) { scalars.append(" "); continue }
            }
            if handleChineseChars && Self.isChinese(u) {
                scalars += [" ", u, " "]
            } else {
                scalars.append(u)
            }
        }
        if stripAccents {
            var s = String.UnicodeScalarView()
            s.append(contentsOf: scalars)
            scalars = String(s).decomposedStringWithCanonicalMapping.unicodeScalars.filter {
                $0.properties.generalCategory != .nonspacingMark
            }
        }
        if lowercase {
            scalars = scalars.flatMap { u -> [Unicode.Scalar] in
                u.properties.changesWhenLowercased ? Array(u.properties.lowercaseMapping.unicodeScalars) : [u]
            }
        }
        return scalars
    }

    /// White space as BERT counts it: tab, newline, carriage return, and the Unicode White_Space property.
    static func isWhitespace(_ u: Unicode.Scalar) -> Bool {
        u == "\t" || u == "\n" || u == "\r" || u.properties.isWhitespace
    }

    /// "Other" characters (Cc, Cf, Cs, Co, Cn) but tab, newline and carriage return.
    static func isControl(_ u: Unicode.Scalar) -> Bool {
        if u == "\t" || u == "\n" || u == "\r" { return false }
        switch u.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT spaces apart.
    static func isChinese(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }

    /// Punctuation as BERT's pre-tokenizer counts it: ASCII punctuation and the Unicode P* categories.
    static func isPunctuation(_ u: Unicode.Scalar) -> Bool {
        if u.isASCII, (0x21...0x2F).contains(u.value) || (0x3A...0x40).contains(u.value)
            || (0x5B...0x60).contains(u.value) || (0x7B...0x7E).contains(u.value) { return true }
        switch u.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .closePunctuation, .finalPunctuation, .initialPunctuation,
             .otherPunctuation, .openPunctuation: return true
        default: return false
        }
    }
}

/// A WordPiece vocabulary with its normalizer and BERT's pre-tokenizer.
struct WordPieceModel: Sendable {
    /// Model tokens by their UTF-8 bytes ("##ing" with its prefix).
    let pieces: ByteStringTable
    let unknownID: Int32
    /// The spelling that marks a piece continuing a word ("##").
    let continuingPrefix: String
    /// Words longer than this (in characters) are one unknown token.
    let maxInputCharsPerWord: Int
    let normalizer: BertNormalizer

    /// Appends the ids of one segment of text (no special tokens in it).
    func encode(_ text: Substring, into out: inout [Int32]) {
        let scalars = normalizer.normalize(text)
        var word: [Unicode.Scalar] = []
        func flush() {
            if !word.isEmpty { encodeWord(word, into: &out) }
            word.removeAll(keepingCapacity: true)
        }
        for u in scalars {
            if BertNormalizer.isWhitespace(u) {
                flush()
            } else if BertNormalizer.isPunctuation(u) {
                flush()
                encodeWord([u], into: &out)
            } else {
                word.append(u)
            }
        }
        flush()
    }

    /// Greedy longest-match-first over one word.
    private func encodeWord(_ word: [Unicode.Scalar], into out: inout [Int32]) {
        guard word.count <= maxInputCharsPerWord else { out.append(unknownID); return }
        // Byte offset of each scalar boundary.
        var offsets = [0]
        var bytes: [UInt8] = []
        for u in word {
            bytes.append(contentsOf: String(u).utf8)
            offsets.append(bytes.count)
        }
        let prefix = Array(continuingPrefix.utf8)
        var found: [Int32] = []
        var start = 0
        var key: [UInt8] = []
        while start < word.count {
            var end = word.count
            var match: Int32?
            while start < end {
                key.removeAll(keepingCapacity: true)
                if start > 0 { key.append(contentsOf: prefix) }
                key.append(contentsOf: bytes[offsets[start]..<offsets[end]])
                if let id = pieces.lookup(key) { match = id; break }
                end -= 1
            }
            guard let id = match else { out.append(unknownID); return }
            found.append(id)
            start = end
        }
        out.append(contentsOf: found)
    }
}
