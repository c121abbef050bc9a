// Reverse-mode automatic differentiation: every operation on `Variable`s records how to send its
// output's gradient back to its inputs; `backward()` on a scalar visits the recorded graph in reverse
// topological order (as in PyTorch's autograd or Karpathy's micrograd, on whole tensors).
//
// Variables are reference types: the graph is the set of variables reachable from the loss through
// `parents`. A variable that is a constant (`requiresGrad == false`) stops the graph; operations whose
// inputs are all constants record nothing.

import Foundation

/// A tensor in a computation whose gradient can be taken.
public final class Variable: @unchecked Sendable {
    /// The value computed in the forward pass.
    public let value: Tensor
    /// Whether gradients flow into this variable (parameters, and anything computed from them).
    public let requiresGrad: Bool
    /// d(loss)/d(value), same shape as `value`, after `backward()`; nil when nothing flowed here.
    public private(set) var gradScalars: [Float]?
    /// The inputs of the operation that made this variable.
    let parents: [Variable]
    /// Sends `gradScalars` to the parents (accumulating into theirs).
    let backwardFn: ((Variable) -> Void)?
    /// A name for error messages and debugging (`blocks.0.attn.W_Q`, `hook_z`, …).
    public var name: String?

    /// A leaf: a parameter when `requiresGrad`, else a constant.
    public init(_ value: Tensor, requiresGrad: Bool = false, name: String? = nil) {
        self.value = value
        self.requiresGrad = requiresGrad
        self.parents = []
        self.backwardFn = nil
        self.name = name
    }

    /// The result of an operation. Records its backward only when some parent needs a gradient.
    init(_ value: Tensor, parents: [Variable], backward: @escaping (Variable) -> Void) {
        self.value = value
        let needs = parents.contains { $0.requiresGrad }
        self.requiresGrad = needs
        self.parents = needs ? parents : []
        self.backwardFn = needs ? backward : nil
    }

    public var shape: [Int] { value.shape }

    /// The gradient as a tensor (zeros when nothing flowed here).
    public var grad: Tensor {
        Tensor(unchecked: value.shape, gradScalars ?? [Float](repeating: 0, count: value.count))
    }

    /// Adds `g` (same element count as the value) to this variable's gradient.
    func accumulate(_ g: [Float]) {
        guard requiresGrad else { return }
        if gradScalars == nil {
            gradScalars = g
        } else {
            gradScalars!.withUnsafeMutableBufferPointer { dst in
                g.withUnsafeBufferPointer { Kernels.add(dst.baseAddress!, $0.baseAddress!, count: dst.count) }
            }
        }
    }

    /// Adds `g` through a closure writing into the gradient buffer (avoids a temporary array).
    func accumulate(_ write: (_ grad: UnsafeMutablePointer<Float>, _ first: Bool) -> Void) {
        guard requiresGrad else { return }
        let first = gradScalars == nil
        if first { gradScalars = [Float](repeating: 0, count: value.count) }
        gradScalars!.withUnsafeMutableBufferPointer { write($0.baseAddress!, first) }
    }

    /// Forgets this variable's gradient (parameters between steps).
    public func zeroGrad() { gradScalars = nil }

    /// Back-propagates from this scalar (or from `seed`, d(loss)/d(self), for a non-scalar).
    /// - Throws: `TensorError.shapeMismatch` when a non-scalar has no seed, or the seed has another shape.
    public func backward(seed: Tensor? = nil) throws {
        // Reverse topological order: a node runs after every node that uses it.
        var order: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Variable, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            let id = ObjectIdentifier(node)
            if visited.contains(id) { continue }
            visited.insert(id)
            stack.append((node, true))
            for p in node.parents where p.requiresGrad && !visited.contains(ObjectIdentifier(p)) { stack.append((p, false)) }
        }
        // Leaves (parameters) accumulate across calls, as in PyTorch; results of operations hold the
        // gradient of this call only.
        for node in order where node.backwardFn != nil { node.gradScalars = nil }
        if let seed {
            guard seed.shape == value.shape else {
                throw TensorError.shapeMismatch(operation: "backward seed", expected: value.shape, found: seed.shape)
            }
            accumulate(seed.scalars)
        } else {
            guard value.count == 1 else {
                throw TensorError.shapeMismatch(operation: "backward (a loss must be a scalar; pass a seed otherwise)",
                                                expected: [], found: value.shape)
            }
            accumulate([1])
        }
        for node in order.reversed() where node.gradScalars != nil {
            node.backwardFn?(node)
        }
    }

    /// The gradient buffer, for backward closures (present when they run).
    var g: [Float] { gradScalars ?? [Float](repeating: 0, count: value.count) }
}
