import LoRABenchAdapters
import LoRABenchTraining

/// One adapter variant (LoRA, DoRA, AdaLoRA, VeRA, …): how a manifest names and configures it,
/// and what a run of it builds. Each variant is one folder of this target and one line of
/// `VariantRegistry.variants`; the runner, grid, checkpoints, report and CLI only ever talk to it
/// through this protocol and `AdapterPlan`.
public protocol Variant: Sendable {
    /// The manifest's `name:` (`lora`, `dora`, `vera`, …).
    static var name: String { get }
    /// One line for `lorabench variants` and the docs.
    static var summary: String { get }
    /// Every key its manifest entry may hold besides `name`, `label`, `learning_rate` and the
    /// optimizer policies' blocks (`loraplus: {…}`).
    static var keys: [String] { get }
    /// Reads and validates the entry's keys once, filling in defaults.
    init(settings: any SettingsReader) throws
    /// The default `variant` column and the first part of run ids (`adalora-svd-dora`).
    var label: String { get }
    /// The sweep axes that change this variant's runs; the others collapse to one run.
    var axes: VariantAxes { get }
    /// The kind of layer its runs build (`lora`, `dora`, `adalora`, `vera`; `none`), the
    /// `adapter` setting of settings.yaml.
    var layerKind: String { get }
    /// The variant at one point of the sweep, checked against the run's rank and length.
    func plan(for run: RunShape) throws -> any AdapterPlan
}

/// Which sweep axes change a variant's runs. An axis outside the set collapses to a single run
/// and is written `n/a` in the results.
public struct VariantAxes: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let rank = VariantAxes(rawValue: 1 << 0)
    public static let alpha = VariantAxes(rawValue: 1 << 1)
    public static let initialization = VariantAxes(rawValue: 1 << 2)
    public static let rsLoRA = VariantAxes(rawValue: 1 << 3)
    public static let targetModules = VariantAxes(rawValue: 1 << 4)
    public static let dropout = VariantAxes(rawValue: 1 << 5)

    /// A variant with A and B factors scaled by α/r: every axis applies.
    public static let factorAdapter: VariantAxes = [.rank, .alpha, .initialization, .rsLoRA, .targetModules, .dropout]
}

/// One point of a sweep, as a variant sees it.
public struct RunShape: Sendable {
    public var rank: Int
    /// α at this rank (0 when the variant does not use it).
    public var alpha: Double
    public var steps: Int
    /// The run's seed: model-level random state (VeRA's projections) derives from it.
    public var seed: UInt64 = 0
    public var initialization: AdapterInit
    public var useRSLoRA: Bool
    public var dropout: Double
    /// `target_modules` as the manifest wrote them (peft's config records them so).
    public var targetModules: [String]

    public init(rank: Int, alpha: Double, steps: Int, seed: UInt64 = 0, initialization: AdapterInit = .kaiming,
                useRSLoRA: Bool = false, dropout: Double = 0, targetModules: [String] = []) {
        self.rank = rank
        self.alpha = alpha
        self.steps = steps
        self.seed = seed
        self.initialization = initialization
        self.useRSLoRA = useRSLoRA
        self.dropout = dropout
        self.targetModules = targetModules
    }

    /// The settings every LoRA-family layer is built from, at `rank`.
    public func adapterConfig(rank: Int? = nil) -> AdapterConfig {
        AdapterConfig(rank: rank ?? self.rank, alpha: Float(alpha), useRSLoRA: useRSLoRA, initialization: initialization,
                      dropout: Float(dropout))
    }
}

/// A variant resolved for one run: everything needed to build its layers, its model-level
/// method and its peft export.
public protocol AdapterPlan {
    /// The rank the layers are built with (AdaLoRA: init_r); 0 without adapters.
    var adapterRank: Int { get }
    /// The factor on the low-rank product as the layers compute it (0 without adapters).
    var scaling: Float { get }
    /// Whether ranks change during training (the runner then logs `rank/<module>`).
    var changesRank: Bool { get }
    /// Whether the method adds a regulariser to the loss (the runner then logs it).
    var hasRegularizer: Bool { get }
    /// The variant's resolved settings for settings.yaml, defaults filled in.
    var settings: SettingList { get }
    /// Throws when the run's adapters do not fit `modules` (a rank above min(in, out)).
    func validate(_ modules: [ModuleShape]) throws
    /// A builder for one model's layers (`modules` are all that will be adapted, so that state
    /// shared across them can be sized); nil when the variant builds no adapters.
    func layerBuilder(for modules: [ModuleShape]) throws -> (any LayerBuilder)?
    /// The model-level method that runs around each optimizer step.
    func makeMethod(layers: [NamedAdapter]) throws -> any AdaptationMethod
    /// The trained layers in peft's layout; `method` is the one `makeMethod` returned.
    func peftAdapter(layers: [NamedAdapter], method: any AdaptationMethod) throws -> PeftAdapter
}

extension AdapterPlan {
    public func validate(_ modules: [ModuleShape]) throws {
        guard let tight = modules.first(where: { adapterRank > $0.maxRank }) else { return }
        throw AdapterError.invalidRank(rank: adapterRank, inFeatures: tight.inFeatures, outFeatures: tight.outFeatures)
    }

    public var changesRank: Bool { false }
    public var hasRegularizer: Bool { false }
    public func makeMethod(layers: [NamedAdapter]) throws -> any AdaptationMethod { FixedRankMethod(layers: layers) }
}

/// A builder that calls one closure per module: for variants with no model-level state.
public final class ClosureLayerBuilder: LayerBuilder {
    private let build: (ModuleShape, FrozenLinear, UInt64) throws -> any Adapter

    public init(_ build: @escaping (ModuleShape, FrozenLinear, UInt64) throws -> any Adapter) { self.build = build }

    public func adapter(for module: ModuleShape, base: FrozenLinear, seed: UInt64) throws -> any Adapter {
        try build(module, base, seed)
    }
}
