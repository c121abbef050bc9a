// Neurons over text: each token's background is the neuron's activation there, and the neuron's
// max-activating examples below, the example's token outlined.

import Foundation

/// Activations of one or more neurons over text, with max-activating examples.
public struct NeuronActivationsView: HTMLView {
    /// Tokens with one activation each.
    public struct Text: Sendable {
        public let tokens: [String]
        public let activations: [Float]
        /// - Throws: `RenderError.shape` unless there is one activation per token.
        public init(tokens: [String], activations: [Float]) throws {
            guard tokens.count == activations.count else {
                throw RenderError.shape("neuron text needs one activation per token; found \(tokens.count) tokens and \(activations.count) activations")
            }
            self.tokens = tokens; self.activations = activations
        }
    }

    /// A context around the token where the neuron fired.
    public struct Example: Sendable {
        public let tokens: [String]
        /// The token the example is about (index into `tokens`) and the activation there.
        public let focus: Int
        public let activation: Float
        /// - Throws: `RenderError.shape` unless `focus` indexes `tokens`.
        public init(tokens: [String], focus: Int, activation: Float) throws {
            guard focus >= 0, focus < tokens.count else {
                throw RenderError.shape("example focus \(focus) is outside its \(tokens.count) tokens")
            }
            self.tokens = tokens; self.focus = focus; self.activation = activation
        }
    }

    public struct Neuron: Sendable {
        public let name: String
        /// A line under the name, e.g. the tokens its value vector promotes.
        public let summary: String
        public let text: Text?
        public let examples: [Example]
        public init(name: String, summary: String = "", text: Text? = nil, examples: [Example] = []) {
            self.name = name; self.summary = summary; self.text = text; self.examples = examples
        }

        /// A diverging scale over everything shown for this neuron, so text and examples compare.
        public var scale: ColorScale {
            ColorScale(fitting: (text?.activations ?? []) + examples.map(\.activation), kind: .diverging)
        }
    }

    public let title: String
    public let neurons: [Neuron]

    public init(title: String, neurons: [Neuron]) { self.title = title; self.neurons = neurons }

    public func htmlBody(id: String) -> String {
        var out = "<p class=\"note\">Token backgrounds: the neuron's activation (red positive, blue negative, each neuron on its own scale); hover a token for its value.</p>\n"
        for n in neurons {
            let scale = n.scale
            func span(_ token: String, _ value: Float?, focus: Bool = false) -> String {
                guard let value else { return "<span class=\"tok\">\(xmlEscape(token))</span>" }
                let c = scale.color(value)
                return "<span class=\"tok\(focus ? " focus" : "")\" style=\"background:\(c.hex);color:\(textColor(on: c))\" data-tip=\"\(tipAttribute("\(visible(token)): \(formatValue(value))"))\">\(xmlEscape(token))</span>"
            }
            out += "<div class=\"neuron\"><h3>\(xmlEscape(n.name))</h3>\n"
            if !n.summary.isEmpty { out += "<div class=\"tokens-list\">\(xmlEscape(n.summary))</div>\n" }
            if let text = n.text {
                out += "<div class=\"text\">" + zip(text.tokens, text.activations).map { span($0, $1) }.joined() + "</div>\n"
            }
            if !n.examples.isEmpty {
                out += "<div class=\"note\">max-activating examples</div>\n"
                for e in n.examples {
                    out += "<div class=\"example text\"><span class=\"act\">\(String(format: "%.2f", e.activation))</span>"
                        + e.tokens.enumerated().map { $0.offset == e.focus ? span($0.element, e.activation, focus: true) : span($0.element, nil) }.joined()
                        + "</div>\n"
                }
            }
            out += legendHTML(scale, caption: "activation of \(n.name)") + "</div>\n"
        }
        return out
    }
}
