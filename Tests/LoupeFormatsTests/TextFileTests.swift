import Foundation
import LoupeFormats
import Testing

@Suite struct TextFileTests {
    @Test func readsPrefixesAndRejectsBadFiles() throws {
        let good = try temporaryFile(Array("Émma Woodhouse, handsome".utf8), suffix: ".txt")
        #expect(try readUTF8Text(path: good) == "Émma Woodhouse, handsome")
        #expect(try readUTF8Text(path: good, characters: 4) == "Émma")
        #expect(throws: TextFileError.invalidLength(0)) { try readUTF8Text(path: good, characters: 0) }
        let bad = try temporaryFile([0xFF, 0xFE, 0x41], suffix: ".txt")
        #expect(throws: TextFileError.notUTF8(path: bad)) { try readUTF8Text(path: bad) }
        #expect(throws: FileError.notFound(path: "/nonexistent/emma.txt")) { try readUTF8Text(path: "/nonexistent/emma.txt") }
        let empty = try temporaryFile([], suffix: ".txt")
        #expect(try readUTF8Text(path: empty) == "")
    }
}
