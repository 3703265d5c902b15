import ArgumentParser
import LoRABenchKernels

/// `lorabench blas-kernels`: the OpenBLAS kernel set runs use here, after `BLASCore`'s correction.
struct BLASKernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blas-kernels",
        abstract: "Print the OpenBLAS kernel set that runs use on this machine (recorded in each run's outcome.json).")

    func run() {
        print(BLASCore.loaded)
    }
}
