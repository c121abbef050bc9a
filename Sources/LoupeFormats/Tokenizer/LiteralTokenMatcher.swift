// Special and added tokens found literally in text (leftmost match, longest on a tie), and the white space
// that `lstrip`/`rstrip` tokens take with them.

import Foundation

extension BPETokenizer {
    /// Finds special and added tokens in text: leftmost match, longest on a tie.
    struct LiteralTokenMatcher: Sendable {
        struct Entry: Sendable {
            let scalars: [UInt32]
            let id: Int32
            let isSpecial: Bool

            init(text: String, id: Int, isSpecial: Bool) {
                scalars = text.unicodeScalars.map(\.value)
                self.id = Int32(id)
                self.isSpecial = isSpecial
            }
        }

        /// Entries by first scalar, longest first.
        private let byFirst: [UInt32: [Entry]]
        /// Bit `v` is set if some entry starts with ASCII scalar `v`: most positions are rejected without hashing.
        private let asciiFirst: (low: UInt64, high: UInt64)
        private let anyNonASCIIFirst: Bool

        var isEmpty: Bool { byFirst.isEmpty }

        init(_ entries: [Entry]) {
            var byFirst: [UInt32: [Entry]] = [:]
            for entry in entries {
                guard let first = entry.scalars.first else { continue }
                byFirst[first, default: []].append(entry)
            }
            for key in byFirst.keys {
                byFirst[key]?.sort { $0.scalars.count != $1.scalars.count ? $0.scalars.count > $1.scalars.count : $0.id < $1.id }
            }
            self.byFirst = byFirst
            var low: UInt64 = 0, high: UInt64 = 0
            for first in byFirst.keys where first < 128 {
                if first < 64 { low |= 1 << UInt64(first) } else { high |= 1 << UInt64(first - 64) }
            }
            asciiFirst = (low, high)
            anyNonASCIIFirst = byFirst.keys.contains { $0 >= 128 }
        }

        /// The token starting at `scalars[i]`, if any.
        @inline(__always)
        func match(_ scalars: UnsafeBufferPointer<UInt32>, at i: Int, allowSpecial: Bool) -> (id: Int32, length: Int)? {
            let first = scalars[i]
            if first < 128 {
                let word = first < 64 ? asciiFirst.low : asciiFirst.high
                if (word >> UInt64(first & 63)) & 1 == 0 { return nil }
            } else if !anyNonASCIIFirst {
                return nil
            }
            guard let candidates = byFirst[first] else { return nil }
            for entry in candidates where allowSpecial || !entry.isSpecial {
                let length = entry.scalars.count
                guard i + length <= scalars.count else { continue }
                var k = 1
                while k < length && scalars[i + k] == entry.scalars[k] { k += 1 }
                if k == length { return (entry.id, length) }
            }
            return nil
        }
    }

    /// White space as Rust's `char::is_whitespace` (what `tokenizers` strips for `lstrip`/`rstrip`).
    static func isWhiteSpace(_ scalar: UInt32) -> Bool {
        Unicode.Scalar(scalar)?.properties.isWhitespace ?? false
    }
}
