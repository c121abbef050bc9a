// GPT-2's pre-tokenizer: the split pattern of OpenAI's `encoder.py`
//
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// as the Python `regex` module applies it, written out as a scanner over Unicode scalars.
// Reference: https://github.com/openai/gpt-2/blob/master/src/encoder.py
//
// Classes: letters are general category L*, numbers N*, whitespace is the Unicode White_Space property
// (what `regex` means by `\s`; it excludes U+001C–U+001F, which Python's `str.isspace` includes).
// Everything else, marks and controls included, is "other".

/// The GPT-2 split pattern, hand-compiled. Pieces never cross a special-token boundary: the caller
/// splits the text at special tokens first and runs the scanner on each segment.
enum GPT2PreTokenizer {
    /// What the pattern distinguishes about a scalar.
    enum ScalarClass: UInt8 {
        case letter, number, whitespace, other
    }

    /// The class of one scalar value.
    @inline(__always)
    static func classify(_ value: UInt32) -> ScalarClass {
        if value < 0x80 {
            switch value {
            case 0x41...0x5A, 0x61...0x7A: return .letter
            case 0x30...0x39: return .number
            case 0x09...0x0D, 0x20: return .whitespace
            default: return .other
            }
        }
        guard let scalar = Unicode.Scalar(value) else { return .other }
        let properties = scalar.properties
        if properties.isWhitespace { return .whitespace }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }

    /// Calls `body(start, end)` for each piece `start..<end` of `range`, in order; the pieces tile `range`.
    ///
    /// - Parameters:
    ///   - scalars: scalar values of the whole text.
    ///   - classes: `classify(scalars[i]).rawValue` for every `i`.
    ///   - range: the segment to split (a piece never looks past `range.upperBound`).
    @inline(__always)
    static func split(
        scalars: UnsafeBufferPointer<UInt32>, classes: UnsafeBufferPointer<UInt8>, range: Range<Int>,
        _ body: (Int, Int) -> Void
    ) {
        let letter = ScalarClass.letter.rawValue, number = ScalarClass.number.rawValue
        let whitespace = ScalarClass.whitespace.rawValue
        let apostrophe: UInt32 = 0x27, space: UInt32 = 0x20
        let end = range.upperBound
        var i = range.lowerBound
        while i < end {
            let c = scalars[i]

            // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, ASCII apostrophe only)
            if c == apostrophe && i + 1 < end {
                let n1 = scalars[i + 1]
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 {  // s t m d
                    body(i, i + 2); i += 2; continue
                }
                if i + 2 < end {
                    let n2 = scalars[i + 2]
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                        body(i, i + 3); i += 3; continue  // re ve ll
                    }
                }
            }

            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional leading U+0020, then a run of
            // one class. A space followed by whitespace (or by nothing) falls through to `\s`.
            var j = i
            if c == space && i + 1 < end && classes[i + 1] != whitespace { j = i + 1 }
            let cls = classes[j]
            if cls != whitespace {
                var k = j + 1
                if cls == letter || cls == number {
                    while k < end && classes[k] == cls { k += 1 }
                } else {
                    while k < end {
                        let ck = classes[k]
                        if ck == letter || ck == number || ck == whitespace { break }
                        k += 1
                    }
                }
                body(i, k); i = k; continue
            }

            // `\s+(?!\S)|\s+`: the greedy run backs off one scalar when a non-space follows, so that
            // scalar can lead the next piece; a single whitespace before a non-space is taken by `\s+`.
            var k = i + 1
            while k < end && classes[k] == whitespace { k += 1 }
            if k < end && k - i >= 2 { k -= 1 }
            body(i, k); i = k
        }
    }

    /// The pieces of `text` as strings (for tests and inspection; the encoder uses `split` directly).
    static func pieces(of text: String) -> [String] {
        PreTokenizer.gpt2.pieces(of: text)
    }
}
