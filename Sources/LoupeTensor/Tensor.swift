// Tensor: a dense Float32 array with a shape, row-major, copy-on-write (through Swift's Array).
//
// Dimension names follow TransformerLens: batch, pos, head_index, d_head, d_model, d_mlp, d_vocab.

import Foundation

/// A dense, row-major Float32 tensor. A value type: copies share storage until one is written.
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
    /// The size of each dimension, outermost first. `[]` is a scalar.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `scalars.count == shape.product`.
    public var scalars: [Float]

    /// Makes a tensor from a shape and its row-major elements.
    /// - Throws: `TensorError.elementCount` when the shape does not hold exactly `scalars.count` elements,
    ///   `TensorError.invalidShape` for a negative dimension.
    public init(shape: [Int], scalars: [Float]) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw TensorError.invalidShape(shape) }
        guard shape.reduce(1, *) == scalars.count else {
            throw TensorError.elementCount(shape: shape, expected: shape.reduce(1, *), found: scalars.count)
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// Makes a tensor whose element count the caller guarantees (code that computed `scalars` for
    /// `shape` itself). User-supplied data goes through the throwing `init(shape:scalars:)`.
    public init(unchecked shape: [Int], _ scalars: [Float]) {
        precondition(shape.reduce(1, *) == scalars.count, "shape \(shape) for \(scalars.count) elements")
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.scalars = [Float](repeating: 0, count: shape.reduce(1, *))
    }

    /// A tensor filled with one value.
    public init(repeating value: Float, shape: [Int]) {
        self.shape = shape
        self.scalars = [Float](repeating: value, count: shape.reduce(1, *))
    }

    /// A 1-D tensor.
    public init(_ values: [Float]) {
        self.shape = [values.count]
        self.scalars = values
    }

    /// A scalar (0-D) tensor.
    public init(scalar: Float) {
        self.shape = []
        self.scalars = [scalar]
    }

    /// The number of dimensions.
    public var rank: Int { shape.count }
    /// The number of elements.
    public var count: Int { scalars.count }

    /// The same elements under another shape with the same element count; one dimension may be -1.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var dims = newShape
        if let inferred = dims.firstIndex(of: -1) {
            let known = dims.enumerated().filter { $0.offset != inferred }.map(\.element).reduce(1, *)
            guard known > 0, count % known == 0 else {
                throw TensorError.reshape(from: shape, to: newShape)
            }
            dims[inferred] = count / known
        }
        guard dims.allSatisfy({ $0 >= 0 }), dims.reduce(1, *) == count else {
            throw TensorError.reshape(from: shape, to: newShape)
        }
        return Tensor(unchecked: dims, scalars)
    }

    /// Reads one element by its full index.
    public func item(_ index: [Int]) throws -> Float {
        scalars[try flatIndex(index)]
    }

    /// The flat (row-major) offset of a full index.
    public func flatIndex(_ index: [Int]) throws -> Int {
        guard index.count == shape.count else {
            throw TensorError.indexRank(shape: shape, index: index)
        }
        var offset = 0
        for (i, dim) in zip(index, shape) {
            guard i >= 0 && i < dim else { throw TensorError.indexOutOfRange(shape: shape, index: index) }
            offset = offset * dim + i
        }
        return offset
    }

    /// The sub-tensor at `index` along the first dimension (`t[i]` in numpy).
    public func slice(_ index: Int) throws -> Tensor {
        guard let first = shape.first else { throw TensorError.indexRank(shape: shape, index: [index]) }
        guard index >= 0 && index < first else {
            throw TensorError.indexOutOfRange(shape: shape, index: [index])
        }
        let inner = Array(shape.dropFirst())
        let n = inner.reduce(1, *)
        return Tensor(unchecked: inner, Array(scalars[(index * n)..<((index + 1) * n)]))
    }

    /// Rows `range` along the first dimension.
    public func slice(_ range: Range<Int>) throws -> Tensor {
        guard let first = shape.first else { throw TensorError.indexRank(shape: shape, index: []) }
        guard range.lowerBound >= 0 && range.upperBound <= first else {
            throw TensorError.indexOutOfRange(shape: shape, index: [range.lowerBound, range.upperBound])
        }
        var inner = shape
        inner[0] = range.count
        let n = shape.dropFirst().reduce(1, *)
        return Tensor(unchecked: inner, Array(scalars[(range.lowerBound * n)..<(range.upperBound * n)]))
    }

    public var description: String {
        let head = scalars.prefix(8).map { String(format: "%.5g", Double($0)) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(count > 8 ? ", …" : "")])"
    }
}

/// An array of `count` floats left uninitialized, for a caller that overwrites every element before
/// reading any (a GEMM output with beta 0, a copy, a gather). Saves the zero-fill of large buffers.
@inline(__always)
public func uninitializedFloats(_ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { _, n in n = count }
}

extension Array where Element == Int {
    /// The product of the elements (the element count of a shape).
    @inlinable public var product: Int { reduce(1, *) }
}
