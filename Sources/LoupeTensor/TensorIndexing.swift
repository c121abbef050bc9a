// Slicing and assignment, numpy- and TransformerLens-style: `z[.all, .all, 3] = 0` ablates head 3 of a
// `[batch, pos, head_index, d_head]` activation; `pattern[0, 5]` is head 5's `[query_pos, key_pos]`
// pattern; `resid[..., 0..<3, .all]` the first three positions.
//
// An entry is an `Int` (one position; the axis is dropped; negative counts from the end), a range
// (`1..<4`, `2...`, `..<3`, `1...2`, or `stride(from:to:by:)`), `.all` (`:`), or `.ellipsis` / a leading
// `...` (as many `.all` as the rank needs). Missing trailing entries mean `.all`. Out-of-range entries
// are errors, not clamped as Python clamps them.
//
// Reading copies the selected elements into a new tensor (runs that are contiguous in memory are copied
// whole); assigning writes through to this tensor's storage. Subscripts trap on a bad index as Swift's
// arrays do; `selecting(_:)`, `assign(_:at:)` and `fill(_:at:)` throw `TensorError` instead, for indices that
// come from user input.

/// One entry of a tensor subscript. Build one with an `Int`, a range, `.all` or `.ellipsis`.
public enum TensorIndex: Sendable, Equatable {
    /// One position; the axis is dropped. Negative counts from the end.
    case single(Int)
    /// Positions `lower, lower + step, …` below `upper` (nil: the axis's ends); `step` > 0.
    case span(lower: Int?, upper: Int?, step: Int)
    /// Every position of the axis (`:`).
    case whole
    /// As many whole axes as the tensor's rank leaves over (`...`).
    case rest
}

/// Something that can stand in a tensor subscript: `Int`, the integer ranges, `StrideTo<Int>`,
/// `.all`, `.ellipsis`.
public protocol TensorIndexExpression {
    var tensorIndex: TensorIndex { get }
}

extension TensorIndex: TensorIndexExpression { public var tensorIndex: TensorIndex { self } }
extension Int: TensorIndexExpression { public var tensorIndex: TensorIndex { .single(self) } }
extension Range<Int>: TensorIndexExpression {
    public var tensorIndex: TensorIndex { .span(lower: lowerBound, upper: upperBound, step: 1) }
}
extension ClosedRange<Int>: TensorIndexExpression {
    public var tensorIndex: TensorIndex { .span(lower: lowerBound, upper: upperBound == -1 ? nil : upperBound + 1, step: 1) }
}
extension PartialRangeFrom<Int>: TensorIndexExpression {
    public var tensorIndex: TensorIndex { .span(lower: lowerBound, upper: nil, step: 1) }
}
extension PartialRangeUpTo<Int>: TensorIndexExpression {
    public var tensorIndex: TensorIndex { .span(lower: nil, upper: upperBound, step: 1) }
}
extension PartialRangeThrough<Int>: TensorIndexExpression {
    public var tensorIndex: TensorIndex { .span(lower: nil, upper: upperBound == -1 ? nil : upperBound + 1, step: 1) }
}
extension StrideTo<Int>: TensorIndexExpression {
    /// `stride(from: a, to: b, by: s)` with `s` > 0 (Python's `a:b:s`).
    public var tensorIndex: TensorIndex {
        // StrideTo keeps its bounds private; its first element and count give them back.
        let items = Array(self)
        guard let first = items.first, let last = items.last else { return .span(lower: 0, upper: 0, step: 1) }
        let step = items.count > 1 ? items[1] - first : 1
        // A negative step walks backwards, which a span cannot: the step check then reports it.
        return step > 0 ? .span(lower: first, upper: last + 1, step: step) : .span(lower: last, upper: first + 1, step: step)
    }
}

extension TensorIndexExpression where Self == TensorIndex {
    /// Every position of an axis (Python's `:`).
    public static var all: TensorIndex { .whole }
    /// As many whole axes as needed (Python's `...`).
    public static var ellipsis: TensorIndex { .rest }
}

/// Which elements a list of subscript entries selects: for each axis of the source, the positions taken
/// and whether the axis stays in the result.
struct TensorSelection {
    var positions: [[Int]]
    var kept: [Bool]
    /// The result's shape.
    var shape: [Int] { zip(positions, kept).compactMap { $1 ? $0.count : nil } }

    init(_ entries: [TensorIndex], shape: [Int]) throws {
        let rests = entries.filter { $0 == .rest }.count
        guard rests <= 1 else { throw TensorError.invalidArgument("a tensor subscript may hold at most one ellipsis (...), found \(rests)") }
        let explicit = entries.count - rests
        guard explicit <= shape.count else {
            throw TensorError.invalidArgument("a tensor subscript with \(explicit) entries does not fit a tensor of rank \(shape.count) (shape \(shape))")
        }
        var expanded: [TensorIndex] = []
        for e in entries {
            if e == .rest { expanded += Array(repeating: .whole, count: shape.count - explicit) } else { expanded.append(e) }
        }
        expanded += Array(repeating: .whole, count: shape.count - expanded.count)
        positions = []
        kept = []
        for (axis, (entry, dim)) in zip(expanded, shape).enumerated() {
            func resolve(_ i: Int, upper: Bool) throws -> Int {
                let r = i < 0 ? i + dim : i
                guard r >= 0 && (upper ? r <= dim : r < dim) else {
                    throw TensorError.invalidArgument("index \(i) is out of range for axis \(axis) (size \(dim)) of shape \(shape)")
                }
                return r
            }
            switch entry {
            case .single(let i):
                positions.append([try resolve(i, upper: false)])
                kept.append(false)
            case .span(let lower, let upper, let step):
                guard step > 0 else { throw TensorError.invalidArgument("a slice step must be positive, found \(step) (axis \(axis))") }
                let lo = try lower.map { try resolve($0, upper: true) } ?? 0
                let hi = try upper.map { try resolve($0, upper: true) } ?? dim
                positions.append(lo < hi ? Array(stride(from: lo, to: hi, by: step)) : [])
                kept.append(true)
            case .whole, .rest:
                positions.append(Array(0..<dim))
                kept.append(true)
            }
        }
    }

    /// Calls `body(sourceOffset, resultOffset, runLength)` for each run of elements that is contiguous
    /// in both the source (of `shape`) and the result, in the result's order.
    func forEachRun(shape: [Int], _ body: (Int, Int, Int) -> Void) {
        let rank = shape.count
        // The trailing axes taken whole form one contiguous run.
        var inner = 1, split = rank
        while split > 0 && positions[split - 1].count == shape[split - 1] && kept[split - 1] {
            inner *= shape[split - 1]
            split -= 1
        }
        if positions.contains(where: \.isEmpty) || inner == 0 { return }
        var strides = [Int](repeating: 1, count: rank)
        for a in stride(from: rank - 2, through: 0, by: -1) { strides[a] = strides[a + 1] * shape[a + 1] }
        var counter = [Int](repeating: 0, count: split)
        var result = 0
        while true {
            var src = 0
            for a in 0..<split { src += positions[a][counter[a]] * strides[a] }
            body(src, result, inner)
            result += inner
            var a = split - 1
            while a >= 0 {
                counter[a] += 1
                if counter[a] < positions[a].count { break }
                counter[a] = 0
                a -= 1
            }
            if a < 0 { return }
        }
    }
}

extension Tensor {
    /// The elements that `indices` select, as a new tensor (see the file's header for the entries).
    /// - Throws: `TensorError.invalidArgument` for an index out of range, too many entries, or a bad step.
    public func selecting(_ indices: [any TensorIndexExpression]) throws -> Tensor {
        let sel = try TensorSelection(indices.map(\.tensorIndex), shape: shape)
        let outShape = sel.shape
        var out = uninitializedFloats(outShape.product)
        scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                sel.forEachRun(shape: shape) { s, d, n in
                    (dst.baseAddress! + d).update(from: src.baseAddress! + s, count: n)
                }
            }
        }
        return Tensor(unchecked: outShape, out)
    }

    /// The elements that `indices` select, as a new tensor.
    public func selecting(_ indices: any TensorIndexExpression...) throws -> Tensor { try selecting(indices) }

    /// Writes `value`, broadcast to the selection's shape (numpy's rules), into the elements that
    /// `indices` select.
    /// - Throws: `TensorError` for a bad index, or a value whose shape does not broadcast to the selection.
    public mutating func assign(_ value: Tensor, at indices: [any TensorIndexExpression]) throws {
        let sel = try TensorSelection(indices.map(\.tensorIndex), shape: shape)
        let filled = try value.broadcast(to: sel.shape)
        let shape = self.shape
        filled.scalars.withUnsafeBufferPointer { src in
            scalars.withUnsafeMutableBufferPointer { dst in
                sel.forEachRun(shape: shape) { s, d, n in
                    (dst.baseAddress! + s).update(from: src.baseAddress! + d, count: n)
                }
            }
        }
    }

    /// Writes `value`, broadcast to the selection's shape, into the selected elements.
    public mutating func assign(_ value: Tensor, at indices: any TensorIndexExpression...) throws {
        try assign(value, at: indices)
    }

    /// Sets every selected element to `value`.
    public mutating func fill(_ value: Float, at indices: [any TensorIndexExpression]) throws {
        let sel = try TensorSelection(indices.map(\.tensorIndex), shape: shape)
        let shape = self.shape
        scalars.withUnsafeMutableBufferPointer { dst in
            sel.forEachRun(shape: shape) { s, _, n in (dst.baseAddress! + s).update(repeating: value, count: n) }
        }
    }

    /// Sets every selected element to `value`.
    public mutating func fill(_ value: Float, at indices: any TensorIndexExpression...) throws {
        try fill(value, at: indices)
    }

    // MARK: Subscripts (trap on a bad index, as arrays do)

    /// The selected elements; assigning broadcasts the new value into them. `z[.all, .all, 3] = zeros`.
    public subscript(_ indices: any TensorIndexExpression...) -> Tensor {
        get { Self.unwrap { try selecting(indices) } }
        set { Self.unwrap { try assign(newValue, at: indices) } }
    }

    /// The selected elements after a leading ellipsis: `resid[..., 0]`.
    public subscript(_ rest: UnboundedRange, _ indices: any TensorIndexExpression...) -> Tensor {
        get { Self.unwrap { try selecting([TensorIndex.rest] + indices) } }
        set { Self.unwrap { try assign(newValue, at: [TensorIndex.rest] + indices) } }
    }

    /// One element (every entry an `Int`), or, when assigning, every selected element set to one value:
    /// `z[.all, .all, 3] = 0`, `let x: Float = pattern[0, 5, 9, 2]`.
    @_disfavoredOverload
    public subscript(_ indices: any TensorIndexExpression...) -> Float {
        get { Self.unwrap { try element(indices) } }
        set { Self.unwrap { try fill(newValue, at: indices) } }
    }

    /// One element, or every selected element set to one value, after a leading ellipsis.
    @_disfavoredOverload
    public subscript(_ rest: UnboundedRange, _ indices: any TensorIndexExpression...) -> Float {
        get { Self.unwrap { try element([TensorIndex.rest] + indices) } }
        set { Self.unwrap { try fill(newValue, at: [TensorIndex.rest] + indices) } }
    }

    /// The single element a selection holds.
    func element(_ indices: [any TensorIndexExpression]) throws -> Float {
        let t = try selecting(indices)
        guard t.count == 1 else {
            throw TensorError.invalidArgument("a Float subscript needs a selection of one element, but it selects shape \(t.shape)")
        }
        return t.scalars[0]
    }

    private static func unwrap<T>(_ body: () throws -> T) -> T {
        do { return try body() } catch { preconditionFailure("Tensor subscript: \(error)") }
    }
}
