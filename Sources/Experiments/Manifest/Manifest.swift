import Foundation
import Yams
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop

/// An experiment manifest: task, model, training settings and sweep axes, parsed and fully
/// validated — every run resolved — before any work, so a bad manifest fails in milliseconds
/// with an error naming the file, line and key. The schema is documented in Experiments/README.md.
public struct Manifest {
    public static let keys = ["experiment", "description", "task", "model", "training", "sweep", "selection"]
    public static let requiredKeys = ["task", "training", "sweep"]
    private static let nameAllowed = "a name of letters, digits, '.', '_' and '-' (it names the results directory)"

    /// The path the manifest was read from (as given), used in error messages.
    public let file: String
    /// The manifest's text, copied next to the results for provenance.
    public let text: String
    /// Names the results directory (`results/<experiment>`); defaults to the file's stem.
    public let experiment: String
    public let description: String
    public let task: any TaskSettings
    public let model: String
    public let training: TrainingSettings
    public let sweep: SweepAxes
    /// How a setting is chosen per cell (`selection:`); nil: every setting is reported.
    public let selection: SelectionSettings?
    /// Whether some variant trains at more than one learning rate (a `learning_rate` column).
    public let hasLearningRateAxis: Bool
    /// The expanded grid, in run order.
    public let runs: [RunSpec]

    /// `defaultBLASThreads` is `blas_threads` when the manifest does not set it (a Slurm
    /// submission makes it the task's CPUs).
    public static func load(path: String, defaultBLASThreads: Int = 1) throws -> Manifest {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ManifestError(file: path, line: nil, column: nil, keyPath: "", found: "no readable UTF-8 file",
                                allowed: "a path to a YAML manifest")
        }
        return try Manifest(yaml: text, file: path, defaultBLASThreads: defaultBLASThreads)
    }

    public init(yaml: String, file: String, defaultBLASThreads: Int = 1) throws {
        self.file = file
        self.text = yaml
        let root = ManifestNode(node: try Self.compose(yaml, file: file), keyPath: "", file: file)
        let block = try root.mapping(keys: Self.keys)

        if let node = block.optional("experiment") {
            let name = try node.string(allowed: Self.nameAllowed)
            guard Self.isValidName(name) else { throw node.error(allowed: Self.nameAllowed) }
            experiment = name
        } else {
            let stem = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
            guard Self.isValidName(stem) else {
                throw ManifestError(file: file, line: nil, column: nil, keyPath: "experiment",
                                    found: "no key, and the file name gives '\(stem)'",
                                    allowed: Self.nameAllowed + "; set `experiment:` or rename the file")
            }
            experiment = stem
        }
        description = try block.optional("description").map { try $0.string(allowed: "text") } ?? ""

        task = try TaskCatalog.parse(block.required("task", allowed: "a task: " + TaskCatalog.available.joined(separator: ", ")),
                                     model: ModelSettings.name(in: block.optional("model")))
        let modelSettings = try ModelSettings(block.optional("model"), task: task)
        model = modelSettings.name
        training = try TrainingSettings(block.required("training", allowed: "a mapping with keys " + TrainingSettings.keys.joined(separator: ", ")),
                                        defaultBLASThreads: defaultBLASThreads)
        sweep = try SweepAxes(block.required("sweep", allowed: "a mapping with keys " + SweepAxes.keys.joined(separator: ", ")),
                              modules: task.modules, model: modelSettings)
        hasLearningRateAxis = Grid.hasLearningRateAxis(training: training, sweep: sweep)
        let (task, training) = (self.task, self.training)
        let candidates = sweep.variants.map { ($0.learningRates ?? training.learningRates).count }.max() ?? 1
        selection = try block.optional("selection").map { try SelectionSettings($0, task: task, training: training, candidates: candidates) }
        runs = try Grid.expand(experiment: experiment, task: task, model: model, training: training, sweep: sweep)
    }

    /// The axis columns of metrics.csv and summary.csv (with `base` for a quantized base and
    /// `learning_rate` when it is an axis).
    public var axisColumns: [String] { RunSpec.axisColumns(showingBase: sweep.showsBase, learningRateAxis: hasLearningRateAxis) }

    private static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    /// The YAML document's root node; syntax errors keep their line and column.
    private static func compose(_ yaml: String, file: String) throws -> Node {
        func located(_ mark: Mark?, _ problem: String) -> ManifestError {
            ManifestError(file: file, line: mark?.line, column: mark?.column, keyPath: "", found: problem,
                          allowed: "a YAML mapping with keys " + keys.joined(separator: ", "))
        }
        do {
            guard let node = try Yams.compose(yaml: yaml) else { throw located(nil, "an empty file") }
            return node
        } catch let error as YamlError {
            switch error {
            case let .scanner(_, problem, mark, _), let .parser(_, problem, mark, _), let .composer(_, problem, mark, _):
                throw located(mark, "invalid YAML (\(problem))")
            case let .duplicatedKeysInMapping(duplicates, context):
                throw located(context.mark, "invalid YAML (the key '\(duplicates.joined(separator: "', '"))' appears twice)")
            default:
                throw located(nil, "invalid YAML (\(error))")
            }
        }
    }
}

/// The manifest's `model:` block: `minilm`, or `{name: minilm, base: nf4, block_size: 64,
/// double_quant: true}` for a QLoRA base (Dettmers et al. 2023, §3: W0 frozen in 4-bit
/// NormalFloat, blocks of 64, the block scales quantized again), or for a model whose file holds
/// quantized blocks `{name: smollm2, base: gguf}`: the Linears kept in those blocks.
public struct ModelSettings {
    public static let keys = ["name", "base", "block_size", "double_quant"]

    public var name: String
    /// The base format of every run, unless the sweep has a `base` axis.
    public var base: BaseWeightFormat = .float32
    /// NF4 with this block's settings: what `base: nf4` means here and in the sweep's `base` axis.
    public var quantized: BaseWeightFormat = .qlora

    /// The model's name as written, unchecked (nil: no `model:`, or no name in it): what the task
    /// is parsed for before this block is checked against the task's models.
    package static func name(in node: ManifestNode?) -> String? {
        guard let node else { return nil }
        if case let .mapping(mapping) = node.node { return mapping["name"]?.scalar?.string }
        return node.node.scalar?.string
    }

    /// Defaults to the task's first model and a float32 base.
    package init(_ node: ManifestNode?, task: any TaskSettings) throws {
        guard let node else {
            name = task.models[0]
            return
        }
        var nameNode = node
        var block: ManifestMapping?
        if case .mapping = node.node {
            block = try node.mapping(keys: Self.keys)
            nameNode = try block!.required("name", allowed: task.models.joined(separator: ", "))
        }
        name = try nameNode.string(allowed: task.models.joined(separator: ", "))
        guard task.models.contains(name) else {
            throw nameNode.error(allowed: "for task \(task.name): " + task.models.joined(separator: ", "),
                                 suggestion: closestMatch(to: name, in: task.models))
        }
        guard let block else { return }
        var blockSize = NF4.defaultBlockSize, doubleQuant = true
        if let value = block.optional("block_size") {
            let allowed = "an NF4 block size: " + NF4.allowedBlockSizes.map(String.init).joined(separator: ", ")
            blockSize = try value.int(allowed: allowed)
            guard NF4.allowedBlockSizes.contains(blockSize) else { throw value.error(allowed: allowed) }
        }
        if let value = block.optional("double_quant") { doubleQuant = try value.bool() }
        quantized = .nf4(blockSize: blockSize, doubleQuant: doubleQuant)
        if let value = block.optional("base") { base = try format(value.choice(baseChoices)) }
    }

    /// The `base` values this model takes: `gguf` only for a family whose file holds quantized blocks.
    package var baseChoices: [String] {
        ["fp32", "nf4"] + (ModelFamilyRegistry.family(named: name)?.storesQuantizedBlocks == true ? ["gguf"] : [])
    }

    /// The format a `base` value (one of `baseChoices`) names.
    package func format(_ choice: String) -> BaseWeightFormat {
        switch choice {
        case "nf4": quantized
        case "gguf": .stored
        default: .float32
        }
    }
}
