// Llama 3's pre-tokenizer: the split pattern of its tokenizer.json (Meta's tiktoken pattern)
//
//     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// as Hugging Face `tokenizers` (Oniguruma) applies it, written out as a scanner over Unicode scalars. Qwen2's
// pattern is the same with `\p{N}` for `\p{N}{1,3}`.
// References: https://github.com/meta-llama/llama3 (`tokenizer.py`); llama.cpp `src/llama-vocab.cpp`.
//
// Classes are GPT-2's (`GPT2PreTokenizer.classify`); CR and LF are told apart from other whitespace by value.
// `(?i)` folds case as Unicode does: besides A–Z, only U+017F (ſ, long s) folds to one of the letters, to s.
// llama.cpp spells the group `'[sS]|'[tT]…`, so it differs on `'ſ`; this follows `tokenizers`.

/// The Llama 3 / Qwen2 split pattern, hand-compiled. Pieces never cross a special-token boundary: the caller
/// splits the text at special tokens first and runs the scanner on each segment.
enum Llama3PreTokenizer {
    /// Calls `body(start, end)` for each piece `start..<end` of `range`, in order; the pieces tile `range`.
    ///
    /// - Parameters:
    ///   - scalars: scalar values of the whole text.
    ///   - classes: `GPT2PreTokenizer.classify(scalars[i]).rawValue` for every `i`.
    ///   - range: the segment to split (a piece never looks past `range.upperBound`).
    ///   - maxNumberRun: 3 for Llama 3 (`\p{N}{1,3}`), 1 for Qwen2 (`\p{N}`).
    @inline(__always)
    static func split(
        scalars: UnsafeBufferPointer<UInt32>, classes: UnsafeBufferPointer<UInt8>, range: Range<Int>,
        maxNumberRun: Int, _ body: (Int, Int) -> Void
    ) {
        let letter = GPT2PreTokenizer.ScalarClass.letter.rawValue
        let number = GPT2PreTokenizer.ScalarClass.number.rawValue
        let whitespace = GPT2PreTokenizer.ScalarClass.whitespace.rawValue
        let other = GPT2PreTokenizer.ScalarClass.other.rawValue
        let apostrophe: UInt32 = 0x27, space: UInt32 = 0x20, cr: UInt32 = 0x0D, lf: UInt32 = 0x0A
        let end = range.upperBound
        var i = range.lowerBound
        while i < end {
            let c = scalars[i]
            let cls = classes[i]

            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if c == apostrophe && i + 1 < end {
                let n1 = folded(scalars[i + 1])
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 {  // s t m d
                    body(i, i + 2); i += 2; continue
                }
                if i + 2 < end {
                    let n2 = folded(scalars[i + 2])
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                        body(i, i + 3); i += 3; continue  // re ve ll
                    }
                }
            }

            // [^\r\n\p{L}\p{N}]?\p{L}+ : a run of letters, with at most one leading scalar that is neither a
            // letter, a number, CR nor LF (any other whitespace or punctuation).
            var j = -1
            if cls == letter {
                j = i
            } else if cls != number && c != cr && c != lf && i + 1 < end && classes[i + 1] == letter {
                j = i + 1
            }
            if j >= 0 {
                var k = j + 1
                while k < end && classes[k] == letter { k += 1 }
                body(i, k); i = k; continue
            }

            // \p{N}{1,3}
            if cls == number {
                var k = i + 1
                while k < end && k - i < maxNumberRun && classes[k] == number { k += 1 }
                body(i, k); i = k; continue
            }

            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`: an optional U+0020, a run of other scalars, then any CRs and LFs.
            j = c == space && i + 1 < end && classes[i + 1] == other ? i + 1 : i
            if classes[j] == other {
                var k = j + 1
                while k < end && classes[k] == other { k += 1 }
                while k < end && (scalars[k] == cr || scalars[k] == lf) { k += 1 }
                body(i, k); i = k; continue
            }

            // Whitespace. `\s*[\r\n]+`: if the whitespace run holds a CR or LF, the piece ends after the last
            // one (`\s*` backs off to it).
            var k = i
            var afterNewline = -1
            while k < end && classes[k] == whitespace {
                if scalars[k] == cr || scalars[k] == lf { afterNewline = k + 1 }
                k += 1
            }
            if afterNewline > 0 {
                body(i, afterNewline); i = afterNewline; continue
            }
            // `\s+(?!\S)|\s+`: as in GPT-2, the run backs off one scalar when a non-space follows, so that
            // scalar can lead the next piece; a single whitespace before a non-space is taken by `\s+`.
            if k < end && k - i >= 2 { k -= 1 }
            body(i, k); i = k
        }
    }

    /// The lowercase ASCII letter a scalar matches case-insensitively (A–Z → a–z, ſ → s); others unchanged.
    @inline(__always)
    private static func folded(_ value: UInt32) -> UInt32 {
        if value >= 0x41 && value <= 0x5A { return value + 0x20 }
        if value == 0x17F { return 0x73 }
        return value
    }
}
