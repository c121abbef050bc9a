import Foundation

/// Problems reading a text corpus.
public enum TextFileError: Error, Equatable, CustomStringConvertible {
    case notUTF8(path: String)
    case invalidLength(Int)

    public var description: String {
        switch self {
        case .notUTF8(let p): return "\(p) is not UTF-8 text"
        case .invalidLength(let n): return "a character count must be positive, found \(n)"
        }
    }
}

/// A UTF-8 text file, or its first `characters` characters.
/// - Throws: `FileError.notFound` / `.unreadable`, `TextFileError.notUTF8`, `TextFileError.invalidLength`.
public func readUTF8Text(path: String, characters: Int? = nil) throws -> String {
    if let characters, characters <= 0 { throw TextFileError.invalidLength(characters) }
    let file = try MappedFile(path: path)
    guard let text = String(data: Data(file.bytes), encoding: .utf8) else { throw TextFileError.notUTF8(path: path) }
    return characters.map { String(text.prefix($0)) } ?? text
}
