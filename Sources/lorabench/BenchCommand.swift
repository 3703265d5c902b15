import ArgumentParser
import Foundation
import LoRABench

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure adapter and model speed against this machine's sgemm throughput.",
        subcommands: [Layer.self],
        defaultSubcommand: Layer.self
    )

    struct Layer: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One adapted linear layer, forward + backward, LoRA vs DoRA (median of repeated runs).")

        @Option(help: "Input and output features of the square layer.") var features = 768
        @Option(help: "Token rows per batch.") var batch = 2048
        @Option(help: "Adapter rank.") var rank = 8
        @Option(help: "Timed repetitions (after warm-up).") var repeats = 20
        @Option(help: "Untimed warm-up repetitions.") var warmup = 3
        @Option(help: "OpenBLAS threads.") var threads = 2

        func run() throws {
            BLASThreads.set(threads)
            let rows = try LayerBenchmark(features: features, batch: batch, rank: rank, warmup: warmup, repeats: repeats).run()
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
}
