// JSON written for embedding in HTML: numbers at a fixed precision (pages stay small), non-finite numbers
// as null, and `<`, `>`, `&`, U+2028 and U+2029 escaped so that no string can close the <script> that holds it.

import Foundation

/// A JSON value, written compactly.
public indirect enum JSONText: Sendable, Equatable {
    case null
    case bool(Bool)
    /// Written with `significantDigits` significant digits (`%.Ng`).
    case number(Double, significantDigits: Int = 4)
    case int(Int)
    case string(String)
    case array([JSONText])
    /// Keys in the given order.
    case object([(String, JSONText)])

    public static func == (a: JSONText, b: JSONText) -> Bool { a.text == b.text }

    /// An array of numbers.
    public static func numbers(_ values: [Float], significantDigits: Int = 4) -> JSONText {
        .array(values.map { .number(Double($0), significantDigits: significantDigits) })
    }

    /// An array of strings.
    public static func strings(_ values: [String]) -> JSONText { .array(values.map { .string($0) }) }

    /// The JSON text.
    public var text: String {
        var out = ""
        write(into: &out)
        return out
    }

    func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .number(let v, let digits):
            if v.isFinite {
                if v == v.rounded(), Swift.abs(v) < 1e15 { out += String(Int64(v)) }
                else { out += String(format: "%.\(max(1, digits))g", v) }
            } else {
                out += "null"
            }
        case .string(let s): JSONText.writeString(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (i, (key, value)) in pairs.enumerated() {
                if i > 0 { out += "," }
                JSONText.writeString(key, into: &out)
                out += ":"
                value.write(into: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}":
                out += String(format: "\\u%04x", scalar.value)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f { out += String(format: "\\u%04x", scalar.value) }
                else { out.unicodeScalars.append(scalar) }
            }
        }
        out += "\""
    }
}
