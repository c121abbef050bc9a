// Tokens given as arguments (`--answer`, the explorer's answer boxes): ids, single-token text, and the caution
// for a word written without the leading space it has inside a sentence.

import LoupeModels
import Testing

@Suite struct TokenArgumentTests {
    /// The tiny GPT-2 fixture reads text with GPT-2's own tokenizer (bundled), so its ids are GPT-2's.
    static func model() throws -> HookedTransformer { try ModelLoader.load(path: Fixtures.gpt2Tiny.path).model }

    @Test func idsAndSingleTokenText() throws {
        let m = try Self.model()
        #expect(try m.singleToken(" Mary") == 5335)
        #expect(try m.singleToken("Mary") == 24119)
        #expect(try m.singleToken("5335") == 5335)
        #expect(throws: ModelError.self) { try m.singleToken(" Mary Jane") }
        #expect(throws: ModelError.self) { try m.singleToken("\(m.config.dVocab)") }
    }

    @Test func aBareWordWhoseSpacedFormIsCommonerIsCautioned() throws {
        let m = try Self.model()
        let caution = try #require(m.tokenCaution("Mary"))
        #expect(caution.contains("24119") && caution.contains("\" Mary\"") && caution.contains("5335"), "\(caution)")
        #expect(m.tokenCaution("the") != nil)        // "the" 1169, " the" 262
        #expect(m.tokenCaution(" Mary") == nil)      // already spaced
        #expect(m.tokenCaution("5335") == nil)       // an id
        #expect(m.tokenCaution("ing") == nil)        // a word piece: " ing" is no commoner token
        #expect(m.tokenCaution("Mary Jane") == nil)  // not one token: singleToken says so itself
    }
}
