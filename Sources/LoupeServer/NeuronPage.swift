// The explorer's neuron page, after Neuronpedia's: the tokens a neuron's value vector promotes and suppresses,
// its top examples from a neuron index (`loupe serve --db`), the contexts re-run as one batch to show the
// neuron's activation on every token, and the distribution of those activations.

import Foundation
import LoupeInterp
import LoupeModels
import LoupeStore
import LoupeTensor

extension Analyses {
    func neuron(_ r: NeuronRequest, indexes: [String]) throws -> NeuronResponse {
        let l = try layer(r.layer)
        guard r.neuron >= 0 && r.neuron < config.dMLP else {
            throw APIError.unprocessable("'neuron' \(r.neuron) is out of range: layer \(l) has neurons 0..<\(config.dMLP)")
        }
        let k = try count(r.topK, field: "topK", default: 10)
        let shown = try count(r.examples, field: "examples", default: 20)
        let value = try loaded.model.neuronValues(layer: l, neurons: [r.neuron], k: k)[0]
        // The first served index built for this model's weights at this layer (others are for other models or layers).
        var found: (path: String, examples: [StoredExample])?
        for path in indexes {
            let index: NeuronExampleIndex
            do {
                index = try NeuronExampleIndex(openExisting: path, model: loaded.model, layer: l)
            } catch IndexError.otherModel, IndexError.otherSettings {
                continue
            } catch {
                throw APIError.unprocessable("the neuron index \(URL(fileURLWithPath: path).lastPathComponent) cannot be read: \(error)")
            }
            found = (path, Array(try index.examples(neuron: r.neuron).prefix(shown)))
            break
        }
        var examples: [NeuronResponse.Example] = []
        var all: [Float] = []
        let stored = found?.examples ?? []
        // Every context in one batch (contexts differ in length: padded on the right, which no causal token sees).
        let columns = try loaded.model.neuronActivations(layer: l, neuron: r.neuron, contexts: stored.map(\.context))
        for (e, column) in zip(stored, columns) {
            all += column
            examples.append(.init(activation: e.activation, document: e.document, position: e.position, tokens: info(e.context),
                                  activations: column, focus: e.focus))
        }
        return NeuronResponse(model: name, layer: l, neuron: r.neuron,
                              inputOutputCosine: try loaded.model.neuronInputOutputCosines(layer: l)[r.neuron],
                              promoted: valueCandidates(value.promoted), suppressed: valueCandidates(value.suppressed),
                              index: found.map { URL(fileURLWithPath: $0.path).lastPathComponent }, examples: examples,
                              histogram: Self.histogram(all, bins: 20))
    }

    /// `bins` equal bins from the lowest to the highest finite value (nil for none).
    static func histogram(_ all: [Float], bins: Int) -> NeuronResponse.Histogram? {
        let values = all.filter(\.isFinite)
        guard let lo = values.min(), let hi = values.max(), bins > 0 else { return nil }
        var counts = [Int](repeating: 0, count: bins)
        let width = (hi - lo) / Float(bins)
        for v in values {
            let b = width > 0 ? min(bins - 1, Int((v - lo) / width)) : 0
            counts[b] += 1
        }
        return .init(lower: lo, upper: hi, counts: counts)
    }
}
