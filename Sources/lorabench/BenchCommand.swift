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
        subcommands: [Layer.self, Model.self],
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

    struct Model: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One training step of all-MiniLM-L6-v2 (forward + backward + AdamW), rank-r adapters on all six module types.",
            discussion: "Prints PyTorch + peft's time for the same step beside ours when .venv-reference exists (Benchmarks/setup_reference_env.sh).")

        @Option(help: "Sequences per batch.") var batch = 32
        @Option(help: "Tokens per sequence.") var sequence = 64
        @Option(help: "Adapter rank.") var rank = 8
        @Option(help: "Timed steps (after warm-up).") var repeats = 5
        @Option(help: "Untimed warm-up steps.") var warmup = 2
        @Option(help: "OpenBLAS threads (PyTorch gets the same count).") var threads = 2
        @Option(help: "Variants to time, by manifest name (\(VariantRegistry.variants.map { $0.name }.joined(separator: ", "))).")
        var variants: [String] = ["lora", "dora", "adalora"]
        @Flag(help: "Skip the PyTorch + peft reference even when its environment exists.") var noReference = false

        func run() throws {
            BLASThreads.set(threads)
            let files = try ModelStore.default.locate(.minilm)
            let benchmark = ModelBenchmark(batch: batch, sequence: sequence, rank: rank, warmup: warmup, repeats: repeats)
            let config = try BertConfig(contentsOf: URL(fileURLWithPath: files.configPath))
            let sgemm = benchmark.sgemmGFLOPS(config: config)
            let reference = noReference ? nil : PeftReference.locate(projectRoot: FileManager.default.currentDirectoryPath)
            print("all-MiniLM-L6-v2 training step, batch \(batch) x \(sequence) tokens, r = \(rank) on all six module types, \(threads) threads, median of \(repeats) after \(warmup) warm-up")
            print(String(format: "sgemm %.1f GFLOP/s", sgemm))
            print("variant   ours s/step  GFLOP  floor share  alloc share  peak MiB" + (reference == nil ? "" : "  peft s/step  speed-up  peft MiB"))
            for variant in variants {
                let row = try benchmark.run(variant, files: files)
                let seconds = row.timing.median
                var line = variant.padding(toLength: 8, withPad: " ", startingAt: 0)
                    + String(format: "  %11.3f  %5.1f  %10.0f%%  %10.1f%%  %8.0f", seconds,
                                  row.flops / 1e9, 100 * row.flops / 1e9 / sgemm / seconds, 100 * row.allocationSeconds / seconds, row.peakResidentMiB)
                if let reference {
                    let theirs = try reference.run(variant, modelDirectory: files.directory, benchmark: benchmark, threads: threads)
                    line += String(format: "  %11.3f  %7.2fx  %8.0f", theirs.median_seconds, theirs.median_seconds / seconds, theirs.peak_rss_mib)
                }
                print(line)
            }
            print("floor share = step FLOPs / sgemm throughput / step time; peak MiB is this process's so far (the variants run in one process)")
        }
    }
}
