import LoRABenchKernels
import LoRABenchAdapters

extension LlamaDecoder {
    /// Every Linear's frozen base under its peft module name, adapted or not, in model order (an
    /// adapted Linear's is its adapter's base).
    public var linears: [(name: String, base: FrozenLinear)] {
        let bases = layers.flatMap { [$0.query, $0.key, $0.value, $0.attentionOutput, $0.gate, $0.up, $0.down] }.map(\.base)
        return zip(config.modules.map(\.name), bases).map { ($0, $1) }
    }

    /// One tensor of transformers' `LlamaForCausalLM` state dict.
    public struct HuggingFaceTensor {
        public let name: String
        public let shape: [Int]
        /// The adapted Linear (peft module name) whose update this weight holds, or nil.
        public let adaptedModule: String?
        /// The values, formed when called, so that a writer holds one merged weight at a time.
        public let values: () -> Matrix
    }

    /// This decoder's weights under transformers' `LlamaForCausalLM` names, in model order:
    /// `model.embed_tokens.weight`, per layer `input_layernorm`, the attention Linears,
    /// `post_attention_layernorm` and the MLP Linears, then `model.norm.weight`; no `lm_head.weight`,
    /// the head being tied to the embedding. Each Linear is the weight the decoder computes with,
    /// with its adapter's update folded in (peft's `merge_and_unload`): W0 + ΔW, W0 dequantized when
    /// held in NF4, and the merged weight itself when the adapter is merged already. Q and K rows are
    /// in Hugging Face order, as the decoder holds them. The decoder is left as it is.
    public var huggingFaceTensors: [HuggingFaceTensor] {
        let width = config.hiddenSize
        func norm(_ name: String, _ norm: RMSNorm) -> HuggingFaceTensor {
            HuggingFaceTensor(name: name, shape: [width], adaptedModule: nil) { norm.weight }
        }
        let adapted = Dictionary(uniqueKeysWithValues: adapters.map { ($0.name, $0.adapter) })
        func linear(_ module: String, _ base: FrozenLinear) -> HuggingFaceTensor {
            let shape = [base.outFeatures, base.inFeatures]
            guard let adapter = adapted[module] else {
                return HuggingFaceTensor(name: module + ".weight", shape: shape, adaptedModule: nil) { base.weight }
            }
            return HuggingFaceTensor(name: module + ".weight", shape: shape, adaptedModule: module) {
                var merged = adapter.base.weight
                if !adapter.isMerged { axpy(1, adapter.deltaWeight(), &merged) }
                return merged
            }
        }
        let linears = self.linears, perLayer = LlamaConfig.linearNames.count
        var tensors = [HuggingFaceTensor(name: "model.embed_tokens.weight", shape: embedding.shape, adaptedModule: nil) { self.embedding }]
        for (index, layer) in layers.enumerated() {
            let prefix = "model.layers.\(index)."
            // `linearNames` order: the attention's q, k, v and o, then the MLP's gate, up and down.
            let own = linears[index * perLayer..<(index + 1) * perLayer].map { linear($0.name, $0.base) }
            tensors.append(norm(prefix + "input_layernorm.weight", layer.attentionNorm))
            tensors += own[0..<4]
            tensors.append(norm(prefix + "post_attention_layernorm.weight", layer.feedForwardNorm))
            tensors += own[4...]
        }
        tensors.append(norm("model.norm.weight", finalNorm))
        return tensors
    }
}
