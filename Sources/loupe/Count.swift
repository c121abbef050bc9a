// Counts and sizes on the command line are checked where they are parsed, whatever their spelling
// (`--top -1` and `--top=-1` alike): a negative count must never reach code that sizes buffers by it.

import ArgumentParser
import Foundation

enum Count {
    /// An integer ≥ 0 (`--top 0` lists nothing).
    static func nonNegative(_ text: String) throws -> Int {
        let n = try integer(text)
        guard n >= 0 else { throw ValidationError("expected a count of 0 or more, found \(text)") }
        return n
    }

    /// An integer ≥ 1 (sizes: windows, batches, threads, dimensions).
    static func positive(_ text: String) throws -> Int {
        let n = try integer(text)
        guard n >= 1 else { throw ValidationError("expected a size of 1 or more, found \(text)") }
        return n
    }

    private static func integer(_ text: String) throws -> Int {
        guard let n = Int(text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "")) else {
            throw ValidationError("expected a whole number, found \"\(text)\"")
        }
        return n
    }
}
