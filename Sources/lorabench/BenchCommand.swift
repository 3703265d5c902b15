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

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure adapter and model speed against this machine's sgemm throughput.",
        subcommands: [Layer.self, Attention.self, Model.self, Generate.self],
        defaultSubcommand: Layer.self
    )

    struct Layer: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One adapted linear layer, forward + backward, per variant (median of repeated runs).")

        @Option(help: "Input and output features of the square layer.") var features = 768
        @Option(help: "Token rows per batch.") var batch = 2048
        @Option(help: "Adapter rank.") var rank = 8
        @Option(help: "Timed repetitions (after warm-up).") var repeats = 20
        @Option(help: "Untimed warm-up repetitions.") var warmup = 3
        @Option(help: "OpenBLAS threads.") var threads = 2
        @Option(help: "Variants to time, by manifest name.") var variants: [String] = ["lora", "dora"]

        func run() throws {
            BLASThreads.set(threads)
            let rows = try LayerBenchmark(features: features, batch: batch, rank: rank, warmup: warmup, repeats: repeats,
                                          variants: variants).run()
            let sgemm = rows[0]
            print("layer \(features)x\(features), batch \(batch), r = \(rank), \(threads) BLAS threads, median of \(repeats) after \(warmup) warm-up")
            print("name".padding(toLength: 34, withPad: " ", startingAt: 0) + "  median ms     GFLOP/s  vs sgemm  vs frozen")
            for row in rows {
                let line = row.name.padding(toLength: 34, withPad: " ", startingAt: 0)
                    + String(format: "  %9.2f  %10.1f  %7.0f%%  %8.2fx", row.timing.median * 1e3, row.gflops,
                             100 * row.gflops / sgemm.gflops, row.timing.median / rows[1].timing.median)
                print(line)
            }
        }
    }

    struct Attention: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "BERT's multi-head attention alone, forward + backward (the model bench's batch and MiniLM's shape).")

        @Option(help: "Sequences per batch.") var batch = 32
        @Option(help: "Tokens per sequence.") var sequence = 64
        @Option(help: "Hidden width.") var width = 384
        @Option(help: "Heads.") var heads = 12
        @Option(help: "Timed repetitions (after warm-up).") var repeats = 20
        @Option(help: "Untimed warm-up repetitions.") var warmup = 3
        @Option(help: "OpenBLAS threads.") var threads = 2

        func validate() throws {
            guard heads >= 1, width % heads == 0 else { throw ValidationError("--width must be a multiple of --heads (≥ 1)") }
        }

        func run() {
            BLASThreads.set(threads)
            let benchmark = AttentionBenchmark(batch: batch, sequence: sequence, width: width, heads: heads, warmup: warmup, repeats: repeats)
            let timing = benchmark.run()
            print("attention, \(heads) heads over \(batch) x \(sequence) tokens x \(width), \(threads) BLAS threads, median of \(repeats) after \(warmup) warm-up")
            let q = quartiles(timing.seconds)
            print(String(format: "forward+backward %.2f ms (IQR %.2f–%.2f), %.1f GFLOP/s", q.median * 1e3, q.q1 * 1e3, q.q3 * 1e3,
                         benchmark.flops / q.median / 1e9))
        }
    }

    struct Model: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One training step of a model (forward + backward + AdamW), rank-r adapters on every Linear of every layer.",
            discussion: """
            --model picks the model (\(ModelFamilyRegistry.names.joined(separator: ", "))): an encoder trains as a two-label \
            classifier, a decoder as a causal LM (--loss-positions: every next token, or the last). Ours and PyTorch + peft \
            (when .venv-reference exists: Benchmarks/setup_reference_env.sh) run as child processes, \
            alternating within each round so that the machine's drift hits both; the table gives medians over rounds, \
            their interquartile range and the ratio to ours, and a line gives each of our variants against the first \
            in the same round. One more child per round interleaves our variants' steps in one process (A, B, C, A, …); \
            the last line gives their ratios per cycle of steps, which the machine's drift moves far less. PyTorch runs with the attention a user gets by default (SDPA); \
            --eager adds eager attention as a labelled extra row.
            """)

        @Option(help: "The model to train (\(ModelFamilyRegistry.names.joined(separator: ", "))).") var model = "minilm"
        @Option(help: "Sequences per batch (default: 32 for an encoder, 8 for a decoder).") var batch: Int?
        @Option(help: "Tokens per sequence (default: 64 for an encoder, 128 for a decoder).") var sequence: Int?
        @Option(help: "Adapter rank.") var rank = 8
        @Option(help: "peft target_modules, in every layer (default: every Linear).") var targetModules: [String] = []
        @Option(help: "A decoder's loss positions: all (every next token) or last.") var lossPositions: LossPositions = .all
        @Option(help: "Rounds: each child runs once per variant per round.") var rounds = 5
        @Option(help: "Timed steps per child (after warm-up).") var repeats = 3
        @Option(help: "Untimed warm-up steps per child.") var warmup = 2
        @Option(help: "OpenBLAS threads (PyTorch gets the same count).") var threads = 2
        @Option(help: ArgumentHelp("Variants to time, by manifest name (\(VariantRegistry.variants.map { $0.name }.joined(separator: ", ")); "
            + "default: lora, dora, adalora for an encoder, lora for a decoder)."))
        var variants: [String] = []
        @Flag(help: "Also time PyTorch with eager attention (an extra, labelled row).") var eager = false
        @Flag(help: "Skip the PyTorch + peft reference even when its environment exists.") var noReference = false
        @Option(help: "nf4: also time ours on an NF4 (QLoRA) base, beside the float32 one, in the same rounds.")
        var base: BaseWeightFormat = .float32
        /// A child: time this one variant in this process and print a StepMeasurement as JSON.
        @Option(help: .hidden) var variant: String?
        /// A child: interleave these variants' steps in this process and print an InterleavedMeasurement.
        @Option(help: .hidden) var interleave: [String] = []

        func validate() throws {
            let known = VariantRegistry.variants.map { $0.name }
            for name in variants + interleave + (variant.map { [$0] } ?? []) where !known.contains(name) {
                throw ValidationError("unknown variant '\(name)' for --variants; allowed: \(known.joined(separator: ", ")) "
                    + "(repeat the option for several: --variants lora --variants dora)")
            }
            guard let family = ModelFamilyRegistry.family(named: model) else {
                throw ValidationError("unknown model '\(model)' for --model; allowed: \(ModelFamilyRegistry.described().joined(separator: ", "))")
            }
            let architecture = try BenchArchitecture(family)
            for name in targetModules where !architecture.allLinearTargets.contains(name) {
                throw ValidationError("--target-modules \(name) is not a Linear of \(model); "
                    + "allowed: \(architecture.allLinearTargets.joined(separator: ", "))")
            }
        }

        func run() throws {
            BLASThreads.set(threads)
            // validate() has resolved the name.
            let family = ModelFamilyRegistry.family(named: model)!
            let files = try ModelStore.default.locate(family)
            let benchmark = ModelBenchmark(architecture: try BenchArchitecture(family), batch: batch, sequence: sequence, rank: rank,
                                           warmup: warmup, repeats: repeats, targetModules: targetModules.isEmpty ? nil : targetModules,
                                           lossPositions: lossPositions)
            if let variant {
                let row = try benchmark.run(variant, files: files, base: base)
                let measurement = StepMeasurement(implementation: "LoRABench", attention: nil, variant: variant, seconds: row.timing.seconds,
                                                  peakResidentMiB: row.peakResidentMiB, frozenLinearMiB: row.frozenLinearMiB)
                print(String(decoding: try JSONEncoder().encode(measurement), as: UTF8.self))
                return
            }
            if !interleave.isEmpty {
                let measurement = InterleavedMeasurement(variants: interleave, seconds: try benchmark.interleaved(interleave, files: files, base: base))
                print(String(decoding: try JSONEncoder().encode(measurement), as: UTF8.self))
                return
            }
            guard let executable = RunCommand.executablePath else { throw CommandError("cannot find this executable to start bench children") }
            let ours = BenchChild(label: "LoRABench", executable: executable,
                                  arguments: ["bench", "model", "--model", family.name, "--batch", "\(benchmark.batch)", "--sequence", "\(benchmark.sequence)",
                                              "--rank", "\(rank)", "--loss-positions", lossPositions.rawValue,
                                              "--repeats", "\(repeats)", "--warmup", "\(warmup)", "--threads", "\(threads)"]
                                      + benchmark.targetModules.flatMap { ["--target-modules", $0] })
            let quantized = base == .float32 ? [] : [BenchChild(label: "LoRABench (\(base) base)", executable: executable,
                                                                 arguments: ours.arguments + ["--base", base.description])]
            let references = noReference ? [] : BenchChild.references(projectRoot: FileManager.default.currentDirectoryPath, files: files,
                                                                       benchmark: benchmark, threads: threads, eager: eager)
            let variants = variants.isEmpty ? benchmark.architecture.defaultVariants : variants
            let children = [ours] + quantized + references
            print("\(family.directoryName) training step, batch \(benchmark.batch) x \(benchmark.sequence) tokens, r = \(rank) on "
                + "\(benchmark.targetModules.joined(separator: ", "))\(lossDescription(benchmark)), \(threads) threads; "
                + "\(rounds) rounds alternating \(children.map(\.label).joined(separator: ", ")); each child: \(repeats) timed steps after \(warmup) warm-up")
            let comparison = AlternatingComparison(children: children, rounds: rounds, interleaves: true)
            let (cells, sgemm, interleaved) = try comparison.run(variants: variants) { benchmark.sgemmGFLOPS() }
            print(AlternatingComparison.table(cells, sgemmGFLOPS: sgemm, stepFLOPs: benchmark.stepFLOPs))
            if let line = InterleavedMeasurement.ratioLine(interleaved) { print(line) }
            print("floor share = step FLOPs / the round's sgemm throughput / the round's step time, median over rounds; peak MiB is each child's own (one variant per process); "
                + "frozen MiB: what the frozen Linears keep (weights and biases; NF4 with its scales)")
            if references.isEmpty, !noReference { print("(no PyTorch reference: .venv-reference is missing; Benchmarks/setup_reference_env.sh makes it)") }
        }

        private func lossDescription(_ benchmark: ModelBenchmark) -> String {
            guard case .decoder = benchmark.architecture else { return "" }
            return lossPositions == .all ? ", causal-LM loss on every position" : ", causal-LM loss on the last position"
        }
    }
}

extension BenchCommand {
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Greedy generation speed of a decoder (tokens/s), ours against PyTorch's generate.",
            discussion: """
            One prompt (batch 1; by default a fixed request rendered with the model's chat template, --no-chat for the \
            text alone) is encoded once and both sides continue the same ids by exactly --max-new-tokens tokens through \
            a KV cache, greedily and with no end token, so that both generate the same count; each generation is timed \
            whole (the prompt's forward pass included). Ours and PyTorch's `generate` (transformers on the same GGUF \
            file, float32, its default SDPA attention; when .venv-reference exists: Benchmarks/setup_reference_env.sh) \
            run as child processes, alternating within each round so that the machine's drift hits both; the table \
            gives medians over rounds, tokens/s and the ratio to ours, and a line per reference says whether it \
            generated our token ids, or where it first differs. --lora-rank adds rows with rank-r LoRA on every \
            Linear (peft's on the PyTorch side), as initialised: the base's tokens at the adapter's cost.
            """)

        @Option(help: "The decoder (\(ModelFamilyRegistry.names.joined(separator: ", "))).") var model = "smollm2"
        @Option(help: "The prompt.") var prompt = GenerationBenchmark.defaultPrompt
        @Flag(inversion: .prefixedNo, help: "Render the prompt as one user message with the model's chat template.") var chat = true
        @Option(help: "New tokens per generation, exactly (no end token stops it).") var maxNewTokens = 64
        @Option(help: "Also time with rank-r LoRA (alpha = 2r) on every Linear.") var loraRank: Int?
        @Option(help: "Rounds: each child generates once per setting per round.") var rounds = 5
        @Option(help: "Timed generations per child (after warm-up).") var repeats = 3
        @Option(help: "Untimed warm-up generations per child.") var warmup = 1
        @Option(help: "OpenBLAS threads (PyTorch gets the same count).") var threads = 2
        @Flag(help: "Also time PyTorch with eager attention (an extra, labelled row).") var eager = false
        @Flag(help: "Skip the PyTorch reference even when its environment exists.") var noReference = false
        /// A child: generate from these ids in this process and print a GenerationMeasurement as JSON.
        @Option(name: .customLong("prompt-ids"), help: .hidden) var promptIDs: String?

        func run() throws {
            let benchmark = try GenerationBenchmark(maxNewTokens: maxNewTokens, warmup: warmup, repeats: repeats, loraRank: loraRank,
                                                    threads: threads)
            let family = try GenerationBenchmark.decoder(named: model)
            let files = try ModelStore.default.locate(family)
            let file = try GGUFFile(path: files.weightsPath)
            BLASThreads.set(threads)
            if let promptIDs {
                let weights = try LlamaWeights(gguf: file, config: LlamaConfig(gguf: file))
                let measurement = try benchmark.run(weights: weights, promptIDs: try GenerationBenchmark.promptIDs(argument: promptIDs))
                print(String(decoding: try JSONEncoder().encode(measurement), as: UTF8.self))
                return
            }
            let tokenizer = try ByteLevelBPE(gguf: file)
            let ids = TextGenerator.promptTokenIDs(prompt, tokenizer: tokenizer, chatTemplate: chat ? try ChatMLTemplate(gguf: file) : nil)
            try benchmark.check(promptIDs: ids, config: LlamaConfig(gguf: file))
            guard let executable = RunCommand.executablePath else { throw CommandError("cannot find this executable to start bench children") }
            let ours = BenchChild(label: "LoRABench", executable: executable, arguments: ["bench", "generate", "--model", family.name])
            let references = noReference ? [] : BenchChild.generationReferences(projectRoot: FileManager.default.currentDirectoryPath,
                                                                                 files: files, eager: eager)
            let comparison = try GenerationComparison(children: [ours] + references, rounds: rounds)
            print("\(family.directoryName) greedy generation: \(maxNewTokens) new tokens after a \(ids.count)-token prompt "
                + "(\(chat ? "chat template" : "plain text")), batch 1, KV cache, no end token; \(threads) threads; \(rounds) rounds alternating "
                + "\(comparison.children.map(\.label).joined(separator: ", ")); each child: \(repeats) timed generations after \(warmup) warm-up")
            let cells = try comparison.run(benchmark.settings, promptIDs: ids)
            print(GenerationComparison.table(cells))
            for line in GenerationComparison.agreement(cells, text: { ((try? tokenizer.decode([$0])) ?? "?").debugDescription }) { print(line) }
            for implementation in Set(cells.map(\.firstRound.implementation)).sorted() where implementation != "LoRABench" { print("reference: \(implementation)") }
            if references.isEmpty, !noReference { print("(no PyTorch reference: .venv-reference is missing; Benchmarks/setup_reference_env.sh makes it)") }
        }
    }
}

extension LossPositions: ExpressibleByArgument {}
