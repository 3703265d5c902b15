import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchModels
import LoRABenchInterop

/// Greedy generation speed of a Llama decoder, ours against transformers' `generate`: one prompt
/// (batch 1) continued by exactly `maxNewTokens` tokens through the KV cache, each call timed whole
/// (the prompt's forward pass and every new token's), optionally with rank-r LoRA adapters on every
/// Linear.
///
/// No end token stops either side, so both generate the same count and every token is the plain
/// argmax: transformers' `min_new_tokens` would instead mask the end token's logit, and change the
/// token wherever the end token would have won.
public struct GenerationBenchmark: Sendable {
    /// The default prompt, rendered with the model's chat template: a request whose answer runs
    /// past 64 tokens.
    public static let defaultPrompt = "Write a short story about a lighthouse keeper who finds a message in a bottle."

    public var maxNewTokens: Int
    public var warmup: Int
    public var repeats: Int
    /// Rank-r LoRA (α = 2r) on every Linear, as initialised (B = 0: the base's tokens at the
    /// adapter's cost, unmerged); nil for the base alone.
    public var loraRank: Int?
    /// BLAS threads (PyTorch's torch threads).
    public var threads: Int

    /// Settings as the command line gives them; a value out of range is an error naming its option.
    public init(maxNewTokens: Int = 64, warmup: Int = 1, repeats: Int = 3, loraRank: Int? = nil, threads: Int = 2) throws {
        for (option, value, minimum) in [("--max-new-tokens", maxNewTokens, 1), ("--warmup", warmup, 0), ("--repeats", repeats, 1),
                                         ("--threads", threads, 1), ("--lora-rank", loraRank ?? 1, 1)] where value < minimum {
            throw BenchError.invalidOption(option, value: "\(value)", allowed: "an integer ≥ \(minimum)")
        }
        self.maxNewTokens = maxNewTokens
        self.warmup = warmup
        self.repeats = repeats
        self.loraRank = loraRank
        self.threads = threads
    }

    /// The registered decoder called `name`; anything else is an error listing the decoders.
    public static func decoder(named name: String) throws -> any LlamaFamily {
        let decoders = ModelFamilyRegistry.families.filter { $0 is any LlamaFamily }
        guard let family = ModelFamilyRegistry.family(named: name) as? any LlamaFamily else {
            throw BenchError.invalidOption("--model", value: name,
                                           allowed: "a decoder: " + ModelFamilyRegistry.described(decoders).joined(separator: ", "))
        }
        return family
    }

    /// Whether `promptIDs` and the new tokens fit: a non-empty prompt whose length plus
    /// `maxNewTokens` is within the model's context.
    public func check(promptIDs: [Int], config: LlamaConfig) throws {
        guard !promptIDs.isEmpty else { throw BenchError.invalidOption("--prompt", value: "\"\"", allowed: "a text of at least one token") }
        guard promptIDs.count + maxNewTokens <= config.contextLength else {
            throw BenchError.invalidOption("--max-new-tokens", value: "\(maxNewTokens)",
                                           allowed: "at most \(config.contextLength - promptIDs.count): the prompt's \(promptIDs.count) "
                                               + "tokens and the new ones must fit the model's context of \(config.contextLength)")
        }
    }

    /// What a comparison times: the base alone, then with LoRA when `loraRank` is set.
    public var settings: [GenerationBenchmark] {
        var base = self
        base.loraRank = nil
        return [base] + (loraRank == nil ? [] : [self])
    }

    /// The name of what runs on the base: `base`, or `lora r=8`.
    public var adapterLabel: String { loraRank.map { "lora r=\($0)" } ?? "base" }

    /// Our generation in this process: `warmup` untimed calls, then `repeats` timed ones, each
    /// continuing `promptIDs` by `maxNewTokens` tokens from a fresh KV cache. The ids are the
    /// last call's.
    public func run(weights: LlamaWeights, promptIDs: [Int]) throws -> GenerationMeasurement {
        try check(promptIDs: promptIDs, config: weights.config)
        let decoder = try makeDecoder(weights)
        var tokenIDs: [Int] = []
        let timing = try Timing.measure(warmup: warmup, repeats: repeats) {
            tokenIDs = try decoder.generateGreedy(prompts: [promptIDs], maxNewTokens: maxNewTokens)[0]
        }
        return GenerationMeasurement(implementation: "LoRABench", attention: nil, promptTokens: promptIDs.count, tokenIDs: tokenIDs,
                                     seconds: timing.seconds, peakResidentMiB: ModelBenchmark.peakResidentMiB())
    }

    /// The decoder, with LoRA on every Linear when `loraRank` is set.
    private func makeDecoder(_ weights: LlamaWeights) throws -> LlamaDecoder {
        guard let loraRank else { return try LlamaDecoder(weights: weights) }
        let modules = weights.config.modules
        let plan = try VariantRegistry.plan(named: "lora", for: RunShape(rank: loraRank, alpha: Double(2 * loraRank), steps: 1))
        let builder = try plan.layerBuilder(for: modules)
        return try LlamaDecoder(weights: weights) { module, base in
            var rng = SplitMix64(seed: 0).derived("adapter/\(module.name)")
            return try builder?.adapter(for: module, base: base, seed: rng.next())
        }
    }

    /// What a child is told to measure (ours, `lorabench bench generate`, and the PyTorch script
    /// take the same options): the prompt's ids, the counts, the threads and the adapter.
    public func childArguments(promptIDs: [Int]) -> [String] {
        ["--prompt-ids", promptIDs.map(String.init).joined(separator: ","), "--max-new-tokens", "\(maxNewTokens)",
         "--warmup", "\(warmup)", "--repeats", "\(repeats)", "--threads", "\(threads)"]
            + (loraRank.map { ["--lora-rank", "\($0)"] } ?? [])
    }

    /// The ids of `--prompt-ids` (comma-separated integers), as a child reads them.
    public static func promptIDs(argument: String) throws -> [Int] {
        let ids = argument.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard !ids.isEmpty, ids.allSatisfy({ $0 != nil && $0! >= 0 }) else {
            throw BenchError.invalidOption("--prompt-ids", value: argument, allowed: "comma-separated token ids ≥ 0")
        }
        return ids.map { $0! }
    }
}

/// One implementation's generations, as a child prints them (JSON).
public struct GenerationMeasurement: Codable, Sendable {
    /// `LoRABench`, or PyTorch's and transformers' versions.
    public var implementation: String
    /// The attention PyTorch ran (`sdpa`, `eager`); nil for LoRABench.
    public var attention: String?
    public var promptTokens: Int
    /// The new tokens of the last timed call.
    public var tokenIDs: [Int]
    /// Each timed call's wall-clock seconds.
    public var seconds: [Double]
    public var peakResidentMiB: Double

    enum CodingKeys: String, CodingKey {
        case implementation, attention, promptTokens = "prompt_tokens", tokenIDs = "token_ids", seconds, peakResidentMiB = "peak_rss_mib"
    }

    public init(implementation: String, attention: String?, promptTokens: Int, tokenIDs: [Int], seconds: [Double], peakResidentMiB: Double) {
        self.implementation = implementation
        self.attention = attention
        self.promptTokens = promptTokens
        self.tokenIDs = tokenIDs
        self.seconds = seconds
        self.peakResidentMiB = peakResidentMiB
    }
}

extension BenchChild {
    /// The PyTorch children of the generation bench (default attention, then eager when asked) when
    /// the reference environment made by Benchmarks/setup_reference_env.sh exists:
    /// Benchmarks/generate_reference.py, transformers loading the same GGUF file.
    public static func generationReferences(projectRoot: String, files: ModelFiles, eager: Bool) -> [BenchChild] {
        let python = "\(projectRoot)/.venv-reference/bin/python", script = "\(projectRoot)/Benchmarks/generate_reference.py"
        guard FileManager.default.isExecutableFile(atPath: python), FileManager.default.fileExists(atPath: script) else { return [] }
        let common = [script, "--model-dir", files.directory, "--gguf-file", files.family.weightsFileName]
        return [BenchChild(label: "PyTorch (default: sdpa)", executable: python, arguments: common + ["--attention", "default"])]
            + (eager ? [BenchChild(label: "PyTorch (eager)", executable: python, arguments: common + ["--attention", "eager"])] : [])
    }
}

/// Ours against the references, alternating as `AlternatingComparison` does: in each round every
/// child generates once per adapter setting, one after the other, so that the machine's drift
/// hits every implementation alike; the table gives the median over rounds and the ratio to ours
/// per round.
public struct GenerationComparison {
    public struct Cell: Sendable {
        public var label: String
        /// `base`, or `lora r=8`.
        public var adapter: String
        /// The first round's measurement: implementation, prompt length, ids, …
        public var firstRound: GenerationMeasurement
        /// Each round's median call.
        public var roundMedians: [Double]
        /// This child's time over ours, per round (1 for ours).
        public var ratios: [Double]
        public var peakResidentMiB: Double
        /// The rounds (1-based) whose ids differ from the first round's.
        public var roundsWithOtherTokens: [Int]

        public init(label: String, adapter: String, firstRound: GenerationMeasurement, roundMedians: [Double], ratios: [Double],
                    peakResidentMiB: Double, roundsWithOtherTokens: [Int] = []) {
            self.label = label
            self.adapter = adapter
            self.firstRound = firstRound
            self.roundMedians = roundMedians
            self.ratios = ratios
            self.peakResidentMiB = peakResidentMiB
            self.roundsWithOtherTokens = roundsWithOtherTokens
        }
    }

    /// `children[0]` is ours.
    public var children: [BenchChild]
    public var rounds: Int

    public init(children: [BenchChild], rounds: Int) throws {
        guard rounds >= 1 else { throw BenchError.invalidOption("--rounds", value: "\(rounds)", allowed: "an integer ≥ 1") }
        self.children = children
        self.rounds = rounds
    }

    /// Every setting of `settings` (the base, then LoRA when asked) on every child, round by round.
    public func run(_ settings: [GenerationBenchmark], promptIDs: [Int]) throws -> [Cell] {
        var measurements = [[[GenerationMeasurement]]](repeating: [[GenerationMeasurement]](repeating: [], count: children.count),
                                                         count: settings.count)
        for _ in 0..<rounds {
            for (index, setting) in settings.enumerated() {
                for (childIndex, child) in children.enumerated() {
                    measurements[index][childIndex].append(try child.run(setting.childArguments(promptIDs: promptIDs)))
                }
            }
        }
        return settings.indices.flatMap { index in
            let ours = measurements[index][0].map { Timing(seconds: $0.seconds).median }
            return children.indices.map { childIndex in
                let rounds = measurements[index][childIndex]
                let medians = rounds.map { Timing(seconds: $0.seconds).median }
                return Cell(label: children[childIndex].label, adapter: settings[index].adapterLabel, firstRound: rounds[0], roundMedians: medians,
                            ratios: zip(medians, ours).map { $0 / $1 }, peakResidentMiB: rounds.map(\.peakResidentMiB).max()!,
                            roundsWithOtherTokens: rounds.indices.filter { rounds[$0].tokenIDs != rounds[0].tokenIDs }.map { $0 + 1 })
            }
        }
    }

    /// The table: per adapter setting and implementation, the prompt and new token counts, the
    /// median seconds per generation over rounds and its IQR, tokens/s at that median, the ratio
    /// to ours (median and IQR over rounds) and the peak resident memory.
    public static func table(_ cells: [Cell]) -> String {
        var lines = ["adapter    implementation                 prompt  new  s/generation  IQR            tokens/s  time / ours (IQR)     peak MiB"]
        for cell in cells {
            let time = quartiles(cell.roundMedians), ratio = quartiles(cell.ratios)
            lines.append(cell.adapter.padding(toLength: 9, withPad: " ", startingAt: 0) + "  "
                + cell.label.padding(toLength: 29, withPad: " ", startingAt: 0)
                + String(format: "  %6d  %3d  %12.3f  %5.3f–%5.3f  %8.1f  %5.2fx (%4.2f–%4.2f)  %8.0f", cell.firstRound.promptTokens,
                         cell.firstRound.tokenIDs.count, time.median, time.q1, time.q3, Double(cell.firstRound.tokenIDs.count) / time.median,
                         ratio.median, ratio.q1, ratio.q3, cell.peakResidentMiB))
        }
        return lines.joined(separator: "\n")
    }

    /// Per adapter setting and reference, whether it generated our token ids, else where the two
    /// first differ (`text` shows a token); and any child whose ids changed between rounds.
    public static func agreement(_ cells: [Cell], text: (Int) -> String) -> [String] {
        var lines: [String] = []
        for cell in cells where !cell.roundsWithOtherTokens.isEmpty {
            lines.append("\(cell.adapter), \(cell.label): other token ids in round(s) "
                + cell.roundsWithOtherTokens.map(String.init).joined(separator: ", ") + " than in round 1")
        }
        guard let ours = cells.first?.label else { return lines }
        for adapter in cells.map(\.adapter).uniqued() {
            let group = cells.filter { $0.adapter == adapter }
            guard let reference = group.first(where: { $0.label == ours })?.firstRound.tokenIDs else { continue }
            for cell in group where cell.label != ours {
                let theirs = cell.firstRound.tokenIDs, common = min(reference.count, theirs.count)
                // A shorter continuation differs where it ends.
                guard let index = (0..<common).first(where: { reference[$0] != theirs[$0] }) ?? (reference.count == theirs.count ? nil : common) else {
                    lines.append("\(adapter): \(cell.label) generated the same \(theirs.count) token ids as \(ours)")
                    continue
                }
                func token(_ ids: [Int]) -> String { index < ids.count ? "\(ids[index]) \(text(ids[index]))" : "nothing (\(ids.count) tokens)" }
                lines.append("\(adapter): \(cell.label) first differs from \(ours) at new token \(index + 1) of \(reference.count): "
                    + "\(ours) \(token(reference)), \(cell.label) \(token(theirs))")
            }
        }
        return lines
    }
}

extension Array where Element: Hashable {
    /// The elements in order, each once.
    fileprivate func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
