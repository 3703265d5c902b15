import LoRABenchAdapters
import LoRABenchModels
import LoRABenchTensorIO

/// A BERT encoder in Hugging Face's safetensors layout: `model.safetensors`, `vocab.txt` (WordPiece)
/// and `config.json`. The GLUE classifiers fine-tune any family of this kind.
public protocol BertFamily: TextClassifierFamily {
    /// The architecture its modules are resolved for; a task checks the fetched config.json against it.
    var architecture: BertConfig { get }
}

extension BertFamily {
    /// LoRABench's encoder adapters have always been saved with `task_type: null` (the head goes
    /// in `modules_to_save`), and their folders must not change.
    public var peftTaskType: String? { nil }
    public var weightsFileName: String { "model.safetensors" }
    public var fileNames: [String] { [weightsFileName, "vocab.txt", "config.json"] }
    /// The six Linears of every layer under their peft module names, in model order.
    public var modules: [ModuleShape] { BertEncoder.modules(of: architecture) }

    public func checkWeightsFile(at path: String) throws { _ = try SafetensorsFile(path: path) }
}

extension ModelFiles {
    /// A BERT family's WordPiece vocabulary.
    public var vocabularyPath: String { directory + "/vocab.txt" }
    /// A BERT family's Hugging Face config.
    public var configPath: String { directory + "/config.json" }
}
