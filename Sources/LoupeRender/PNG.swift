// PNG images (ISO/IEC 15948): 8-bit RGB or RGBA, non-interlaced, one IDAT chunk deflated by the system's
// zlib. The decoder reads back what the encoder writes (and other 8-bit RGB/RGBA files with any filter),
// so that tests, and anyone without an image viewer, can check the pixels.

import CZlib
import Foundation

/// A raster image of 8-bit channels, row-major from the top-left corner.
public struct PNGImage: Sendable, Equatable {
    public enum ColorType: UInt8, Sendable {
        case rgb = 2
        case rgba = 6

        /// Bytes per pixel.
        public var channels: Int { self == .rgb ? 3 : 4 }
    }

    public let width: Int, height: Int
    public let colorType: ColorType
    /// `height × width × channels` bytes.
    public let pixels: [UInt8]

    /// - Throws: `RenderError.shape` unless the size is positive and there are `width × height × channels` bytes.
    public init(width: Int, height: Int, colorType: ColorType = .rgb, pixels: [UInt8]) throws {
        guard width > 0, height > 0, width <= 1 << 24, height <= 1 << 24 else {
            throw RenderError.shape("a PNG needs a width and height between 1 and 2^24; found \(width) × \(height)")
        }
        guard pixels.count == width * height * colorType.channels else {
            throw RenderError.shape("a \(width) × \(height) \(colorType) image needs \(width * height * colorType.channels) bytes; found \(pixels.count)")
        }
        self.width = width; self.height = height; self.colorType = colorType; self.pixels = pixels
    }

    /// The channels of the pixel at `x`, `y` (3 or 4 values).
    public func pixel(x: Int, y: Int) -> [UInt8] {
        let c = colorType.channels, start = (y * width + x) * c
        return Array(pixels[start..<(start + c)])
    }

    /// The PNG file: signature, IHDR, one IDAT (each row with filter 0, deflated at level 9), IEND.
    public func encoded() throws -> Data {
        let rowBytes = width * colorType.channels
        var raw = [UInt8](repeating: 0, count: height * (rowBytes + 1))   // [height, 1 + width · channels]
        pixels.withUnsafeBufferPointer { src in
            for y in 0..<height {
                for i in 0..<rowBytes { raw[y * (rowBytes + 1) + 1 + i] = src[y * rowBytes + i] }
            }
        }
        var out = Data(PNGImage.signature)
        var header = Data()
        header.appendBigEndian(UInt32(width)); header.appendBigEndian(UInt32(height))
        header.append(contentsOf: [8, colorType.rawValue, 0, 0, 0])   // bit depth, colour type, deflate, filter set 0, no interlace
        out.appendChunk("IHDR", header)
        out.appendChunk("IDAT", try zlibCompress(raw))
        out.appendChunk("IEND", Data())
        return out
    }

    /// Writes the PNG file to `path`.
    public func write(to path: String) throws { try writeFile(try encoded(), to: path) }

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Reads an 8-bit RGB or RGBA, non-interlaced PNG, checking every chunk's CRC.
    /// - Throws: `RenderError.png` saying what was expected and what was found.
    public static func decode(_ data: Data) throws -> PNGImage {
        let bytes = [UInt8](data)
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else { throw RenderError.png("not a PNG file (no PNG signature)") }
        var offset = 8
        var width = 0, height = 0, colorType: ColorType?
        var idat: [UInt8] = []
        var sawEnd = false
        func be32(_ at: Int) -> Int { Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]) }
        while offset < bytes.count, !sawEnd {
            guard offset + 12 <= bytes.count else { throw RenderError.png("truncated chunk header at byte \(offset)") }
            let length = be32(offset)
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            guard length >= 0, offset + 12 + length <= bytes.count else {
                throw RenderError.png("chunk \(type) at byte \(offset) claims \(length) bytes; only \(bytes.count - offset - 12) remain")
            }
            let body = Array(bytes[(offset + 8)..<(offset + 8 + length)])
            let stored = UInt32(be32(offset + 8 + length))
            let computed = crc32Of(Array(bytes[(offset + 4)..<(offset + 8 + length)]))
            guard stored == computed else {
                throw RenderError.png("chunk \(type) has CRC \(String(stored, radix: 16)), expected \(String(computed, radix: 16))")
            }
            switch type {
            case "IHDR":
                guard length == 13 else { throw RenderError.png("IHDR has \(length) bytes, expected 13") }
                width = Int(body[0]) << 24 | Int(body[1]) << 16 | Int(body[2]) << 8 | Int(body[3])
                height = Int(body[4]) << 24 | Int(body[5]) << 16 | Int(body[6]) << 8 | Int(body[7])
                guard body[8] == 8, let ct = ColorType(rawValue: body[9]), body[12] == 0 else {
                    throw RenderError.png("only 8-bit RGB/RGBA non-interlaced images are read; found bit depth \(body[8]), colour type \(body[9]), interlace \(body[12])")
                }
                colorType = ct
            case "IDAT": idat += body
            case "IEND": sawEnd = true
            default: break
            }
            offset += 12 + length
        }
        guard let colorType, width > 0, height > 0 else { throw RenderError.png("no IHDR chunk") }
        guard sawEnd else { throw RenderError.png("no IEND chunk") }
        let c = colorType.channels, rowBytes = width * c
        let raw = try zlibDecompress(idat, expected: height * (rowBytes + 1))
        // Undo the per-row filters (none, sub, up, average, Paeth).
        var pixels = [UInt8](repeating: 0, count: height * rowBytes)
        for y in 0..<height {
            let filter = raw[y * (rowBytes + 1)]
            for i in 0..<rowBytes {
                let x = Int(raw[y * (rowBytes + 1) + 1 + i])
                let a = i >= c ? Int(pixels[y * rowBytes + i - c]) : 0
                let b = y > 0 ? Int(pixels[(y - 1) * rowBytes + i]) : 0
                let cc = (i >= c && y > 0) ? Int(pixels[(y - 1) * rowBytes + i - c]) : 0
                let predicted: Int
                switch filter {
                case 0: predicted = 0
                case 1: predicted = a
                case 2: predicted = b
                case 3: predicted = (a + b) / 2
                case 4:
                    let p = a + b - cc, pa = Swift.abs(p - a), pb = Swift.abs(p - b), pc = Swift.abs(p - cc)
                    predicted = pa <= pb && pa <= pc ? a : (pb <= pc ? b : cc)
                default: throw RenderError.png("row \(y) has filter type \(filter); expected 0…4")
                }
                pixels[y * rowBytes + i] = UInt8((x + predicted) & 0xff)
            }
        }
        return try PNGImage(width: width, height: height, colorType: colorType, pixels: pixels)
    }
}

/// CRC-32 (ISO 3309, as PNG chunks use) through zlib.
func crc32Of(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
}

/// A zlib stream (RFC 1950) of `bytes` at the best compression.
func zlibCompress(_ bytes: [UInt8]) throws -> Data {
    var size = compressBound(uLong(bytes.count))
    var out = [UInt8](repeating: 0, count: Int(size))
    let status = bytes.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            compress2(dst.baseAddress, &size, src.baseAddress, uLong(src.count), 9)
        }
    }
    guard status == Z_OK else { throw RenderError.png("zlib compress2 failed with status \(status)") }
    return Data(out[0..<Int(size)])
}

/// Inflates a zlib stream that must hold exactly `expected` bytes.
func zlibDecompress(_ bytes: [UInt8], expected: Int) throws -> [UInt8] {
    var size = uLongf(expected)
    var out = [UInt8](repeating: 0, count: max(expected, 1))
    let status = bytes.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
            uncompress(dst.baseAddress, &size, src.baseAddress, uLong(src.count))
        }
    }
    guard status == Z_OK, Int(size) == expected else {
        throw RenderError.png("image data does not inflate to \(expected) bytes (zlib status \(status), \(size) bytes)")
    }
    return Array(out[0..<expected])
}

extension Data {
    mutating func appendBigEndian(_ v: UInt32) {
        append(contentsOf: [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)])
    }

    /// Length, type, body, and the CRC of type + body.
    mutating func appendChunk(_ type: String, _ body: Data) {
        appendBigEndian(UInt32(body.count))
        let typed = [UInt8](type.utf8) + [UInt8](body)
        append(contentsOf: typed)
        appendBigEndian(crc32Of(typed))
    }
}
