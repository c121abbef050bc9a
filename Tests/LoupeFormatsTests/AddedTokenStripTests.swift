// Added tokens with `lstrip` / `rstrip` take the white space beside them, as Hugging Face `tokenizers` does
// (scripts/make_added_token_fixtures.py: the shipped austen BPE with [MASK] lstrip, <sep> rstrip, <both> both).

import Foundation
import Testing
@testable import LoupeFormats

@Suite struct AddedTokenStripTests {
    struct Case: Decodable { let text: String; let ids: [Int] }
    struct Fixture: Decodable { let cases: [Case] }

    @Test func stripsLikeHuggingFace() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let fixtureURL = root.appendingPathComponent("Tests/Fixtures/added-token-strip-cases.json")
        let fixtureJSON = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL)) as? [String: Any])
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: fixtureURL))
        var file = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf:
            root.appendingPathComponent("Sources/LoupeModels/Resources/austen-lm/tokenizer.json"))) as? [String: Any])
        file["added_tokens"] = (file["added_tokens"] as? [Any] ?? []) + (fixtureJSON["added_tokens"] as? [Any] ?? [])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loupe-strip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tokenizer.json")
        try JSONSerialization.data(withJSONObject: file).write(to: url)
        let tokenizer = try BPETokenizer(tokenizerJSON: url)
        #expect(tokenizer.stripsLeft == [4096, 4098] && tokenizer.stripsRight == [4097, 4098])
        #expect(fixture.cases.count >= 9)
        for c in fixture.cases {
            #expect(tokenizer.encode(c.text) == c.ids, "\(c.text.debugDescription)")
        }
        // Without allowSpecial the tokens are plain text and nothing is stripped.
        #expect(tokenizer.encode("a [MASK]", allowSpecial: false) == tokenizer.encode("a [MASK]", allowSpecial: false).filter { $0 < 4096 })
        #expect(try tokenizer.decode(tokenizer.encode("a [MASK]", allowSpecial: false)) == "a [MASK]")
    }
}
