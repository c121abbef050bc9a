// GPT-2's byte ↔ printable-character table.
// Reference: `bytes_to_unicode` in https://github.com/openai/gpt-2/blob/master/src/encoder.py

/// GPT-2's reversible map from bytes to printable characters, in which byte-level vocabularies
/// (`encoder.json`, `tokenizer.json`, GGUF) spell their tokens: printable Latin-1 bytes stand for
/// themselves, the other 68 bytes (controls, space, U+007F–U+00A0, U+00AD) become U+0100…U+0143,
/// so a space is `Ġ` (U+0120) and a newline `Ċ` (U+010A).
public enum ByteLevelAlphabet {
    /// `scalars[b]` spells byte `b`.
    public static let scalars: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                // 256 + n for the n-th non-printable byte: always a valid scalar (at most U+0143).
                table[byte] = Unicode.Scalar(next) ?? "\0"
                next += 1
            }
        }
        return table
    }()

    /// The byte a character of the alphabet spells, or nil for a character outside it.
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let value = scalar.value
        guard value < UInt32(inverse.count) else { return nil }
        let b = inverse[Int(value)]
        return b < 0 ? nil : UInt8(b)
    }

    /// The token spelling of raw bytes: one alphabet character per byte.
    public static func spell<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var view = String.UnicodeScalarView()
        for b in bytes { view.append(scalars[Int(b)]) }
        return String(view)
    }

    /// `inverse[scalar.value]` = byte, or -1; covers U+0000…U+0143.
    private static let inverse: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in scalars.enumerated() { table[Int(scalar.value)] = Int16(byte) }
        return table
    }()
}
