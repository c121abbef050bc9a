// Colour maps shared by every renderer (SVG, PNG, HTML, terminal), so that one value has one colour
// whichever way it is looked at.

import Foundation

/// An 8-bit RGB colour.
public struct RGB: Sendable, Equatable, Hashable, CustomStringConvertible {
    public let r: UInt8, g: UInt8, b: UInt8

    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }

    /// `#rrggbb`.
    public var hex: String { String(format: "#%02x%02x%02x", r, g, b) }
    public var description: String { hex }

    /// Relative luminance in 0…1 (Rec. 709 weights on the 8-bit values), to pick black or white text.
    public var luminance: Double { (0.2126 * Double(r) + 0.7152 * Double(g) + 0.0722 * Double(b)) / 255 }

    /// Linear interpolation from `self` to `other`, `t` clamped to 0…1, rounded to the nearest level.
    public func mixed(with other: RGB, _ t: Double) -> RGB {
        let t = min(max(t.isFinite ? t : 0, 0), 1)
        func channel(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8((Double(a) + (Double(b) - Double(a)) * t).rounded()) }
        return RGB(channel(r, other.r), channel(g, other.g), channel(b, other.b))
    }

    public static let white = RGB(255, 255, 255)
    public static let black = RGB(0, 0, 0)
    /// The colour of missing values (NaN, ±∞).
    public static let missing = RGB(204, 204, 204)
    /// The ends of the scales (ColorBrewer RdBu's outer colours).
    public static let red = RGB(178, 24, 43)
    public static let blue = RGB(33, 102, 172)
}

/// A map from numbers to colours over a fixed range.
public struct ColorScale: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Blue (negative) – white (0) – red (positive), symmetric around 0: for effects with a sign.
        case diverging
        /// White (minimum) to blue (maximum): for probabilities and attention.
        case sequential
    }

    public let kind: Kind
    /// The values drawn in the end colours: `-m…m` for diverging scales, `min…max` for sequential ones.
    public let lower: Float, upper: Float

    /// A scale spanning `lower…upper` (for diverging scales, give `-m…m`).
    public init(kind: Kind, lower: Float, upper: Float) {
        self.kind = kind; self.lower = lower; self.upper = upper
    }

    /// The scale that spans the finite `values`: `±max|v|` (diverging) or `min…max` (sequential).
    public init<S: Sequence>(fitting values: S, kind: Kind) where S.Element == Float {
        var lo = Float.infinity, hi = -Float.infinity
        for v in values where v.isFinite { lo = min(lo, v); hi = max(hi, v) }
        if lo > hi { lo = 0; hi = 0 }
        switch kind {
        case .diverging:
            let m = max(Swift.abs(lo), Swift.abs(hi))
            self.init(kind: kind, lower: -m, upper: m)
        case .sequential:
            self.init(kind: kind, lower: lo, upper: hi)
        }
    }

    /// The colour of `v`; values beyond the range take the end colours, non-finite ones `RGB.missing`.
    public func color(_ v: Float) -> RGB {
        guard v.isFinite else { return .missing }
        switch kind {
        case .diverging:
            let m = Double(max(Swift.abs(lower), Swift.abs(upper)))
            guard m > 0 else { return .white }
            return v >= 0 ? RGB.white.mixed(with: .red, Double(v) / m) : RGB.white.mixed(with: .blue, Double(-v) / m)
        case .sequential:
            guard upper > lower else { return .white }
            return RGB.white.mixed(with: .blue, Double(v - lower) / Double(upper - lower))
        }
    }

    /// `count` evenly spaced values from `lower` to `upper`, for legends.
    public func ticks(_ count: Int) -> [Float] {
        guard count > 1 else { return [lower] }
        return (0..<count).map { lower + (upper - lower) * Float($0) / Float(count - 1) }
    }
}
