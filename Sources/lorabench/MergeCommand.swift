import ArgumentParser
import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop
import LoRABenchExperiments
import LoRABenchPlotting
import LoRABenchReport
import LoRABenchAnalysis
import LoRABenchBench

/// `lorabench merge ADAPTER --out DIR`: the adapter folded into its base model, written as a
/// plain model folder that the base architecture loads (`BertModel.from_pretrained(DIR)`,
/// `LlamaForCausalLM.from_pretrained(DIR)`).
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Fold a peft-layout adapter into its base model and write a plain model folder.",
        discussion: """
            An encoder's adapter: DIR gets model.safetensors (every tensor of the base file under its own \
            name, the adapted Linears merged as peft's merge_and_unload does), the base's config.json and \
            vocab.txt, and, when the adapter carries a trained head (modules_to_save: classifier), \
            classifier.safetensors.

            A decoder's adapter: DIR gets model.safetensors, every weight in float32 under transformers' \
            LlamaForCausalLM names (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, …, \
            model.norm.weight; no lm_head, which is tied to the embedding), the adapted Linears merged, and \
            a config.json for LlamaForCausalLM.from_pretrained(DIR) with the model file's token ids. The \
            tokenizer stays in the model's GGUF file.
            """
    )

    @Argument(help: "The adapter folder (adapter_model.safetensors + adapter_config.json), e.g. results/sst2-ranks/runs/<id>/adapter.")
    var adapter: String

    @Option(help: "The folder to write; it must not exist yet, or be empty.")
    var out: String

    @Option(help: "The base model, when the adapter's base_model_name_or_path is not one LoRABench knows.")
    var model: ModelChoice?

    @Flag(help: "Load an adapter holding NaN or infinite values (a diverged run's), for inspection; refused otherwise.")
    var allowNonFinite = false

    @Option(help: "Hold the base's weights as fp32, nf4 (QLoRA) or gguf (a GGUF model's Linears in the file's blocks) instead of as in training (the adapter's metadata says which).")
    var base: BaseWeightFormat?

    func run() throws {
        let fileManager = FileManager.default
        if let existing = try? fileManager.contentsOfDirectory(atPath: out), !existing.isEmpty {
            throw CommandError("\(out) already holds files; choose an empty or new --out folder")
        }
        if try ModelFamilyRegistry.family(ofAdapter: adapter, model: model?.family) is any LlamaFamily {
            try mergeDecoder()
        } else {
            try mergeEncoder()
        }
    }

    private func mergeEncoder() throws {
        let (adapted, files) = try AdaptedModel.open(adapter, model: model?.family, allowNonFinite: allowNonFinite, baseFormat: base)
        if let warning = adapted.baseFormatWarning { standardError(warning + "\n") }
        try FileSystem.createDirectory(out)
        let merged = try adapted.mergedTensors(base: SafetensorsFile(path: files.weightsPath))
        try Safetensors.write(merged, to: "\(out)/model.safetensors")
        for name in ["config.json", "vocab.txt"] {
            try AtomicFile.write(Data(contentsOf: URL(fileURLWithPath: "\(files.directory)/\(name)")), to: "\(out)/\(name)")
        }
        if let head = adapted.headTensors { try Safetensors.write(head, to: "\(out)/classifier.safetensors") }
        printMerged(adapted.adapters.count, into: files.family, baseFormat: adapted.baseFormat)
        print("  \(out)/model.safetensors (\(merged.count) tensors), config.json, vocab.txt"
              + (adapted.hasHead ? ", classifier.safetensors" : ""))
    }

    private func mergeDecoder() throws {
        let (adapted, files) = try AdaptedDecoder.open(adapter, model: model?.family, allowNonFinite: allowNonFinite, baseFormat: base)
        if let warning = adapted.baseFormatWarning { standardError(warning + "\n") }
        try FileSystem.createDirectory(out)
        let count = try adapted.writeMergedModel(to: out, specialTokens: ByteLevelBPE.SpecialTokens(gguf: GGUFFile(path: files.weightsPath)))
        printMerged(adapted.adapters.count, into: files.family, baseFormat: adapted.baseFormat)
        print("  \(out)/\(AdaptedDecoder.mergedWeightsFile) (\(count) float32 tensors), \(AdaptedDecoder.mergedConfigFile)")
    }

    private func printMerged(_ count: Int, into family: any ModelFamily, baseFormat: BaseWeightFormat) {
        print("merged \(count) adapted modules of \(adapter) into \(family.directoryName)")
        if baseFormat != .float32 {
            print("  the base was \(baseFormat): the model is written in float32, every Linear its dequantized W0 (+ ΔW where adapted)")
        }
    }
}
