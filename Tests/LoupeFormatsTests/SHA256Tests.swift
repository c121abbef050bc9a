import Foundation
import LoupeFormats
import Testing

@Suite struct SHA256Tests {
    /// FIPS 180-4 examples and the well-known digests of short strings.
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ("The quick brown fox jumps over the lazy dog", "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"),
    ])
    func knownDigests(message: String, digest: String) {
        #expect(SHA256.hexDigest(Array(message.utf8)) == digest)
    }

    /// A million "a"s, fed in uneven pieces: the FIPS long-message example, and the block-boundary logic.
    @Test func millionAsInPieces() {
        var hasher = SHA256()
        let chunk = [UInt8](repeating: 0x61, count: 997)
        var left = 1_000_000
        while left > 0 {
            let n = min(left, chunk.count)
            chunk[0..<n].withUnsafeBytes { hasher.update($0) }
            left -= n
        }
        #expect(hasher.finalizeHex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func fileDigestMatchesTheSharedTokenizerPin() throws {
        // references.md pins GPT-2's vocab.bpe; the same file ships inside Loupe.
        let dir = try #require(BundledTokenizers.gpt2Directory)
        #expect(try SHA256.hexDigest(ofFile: dir.appendingPathComponent("vocab.bpe").path)
                == "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5")
    }
}
