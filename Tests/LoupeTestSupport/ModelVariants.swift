// A model's weights under another attention mask: the same blocks attending both ways (or causally), for
// tests that compare the two. The random fixtures' attention is nearly uniform and their values small, so
// `scalingQKV` can sharpen W_Q, W_K and W_V to make a token elsewhere move a prediction measurably.

import LoupeModels
import LoupeTensor

public func modelVariant(_ model: HookedTransformer, bidirectional: Bool, scalingQKV factor: Float = 1) throws -> HookedTransformer {
    var c = model.config
    c.bidirectional = bidirectional
    var named = Dictionary(uniqueKeysWithValues: model.weights.namedTensors.map { ($0.name, $0.tensor) })
    for (name, t) in named where name.hasSuffix("attn.W_Q") || name.hasSuffix("attn.W_K") || name.hasSuffix("attn.W_V") {
        named[name] = Tensor(unchecked: t.shape, t.scalars.map { $0 * factor })
    }
    return try HookedTransformer(config: c, weights: TransformerWeights(config: c, source: "test") { named[$0] })
}
