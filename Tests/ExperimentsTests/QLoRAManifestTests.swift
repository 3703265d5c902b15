import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchAdapters
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchInterop
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// The base's weight format as a manifest setting and a sweep axis: ids, columns, errors, and a
/// sweep that trains on an NF4 base and records it in the saved adapter.
@Suite struct QLoRAManifestTests {
    static func manifest(model: String = "", sweep: String = "  variants: [lora, dora]\n  ranks: [4]") -> String {
        ExperimentSupport.manifest(steps: 40, sweep: sweep).replacingOccurrences(of: "training:", with: model + "training:")
    }

    @Test func aBaseAxisDoublesTheRunsAndAddsABaseColumnWhileFloat32RunsKeepTheirIDs() throws {
        let plain = try Manifest(yaml: Self.manifest(), file: "m.yaml")
        let both = try Manifest(yaml: Self.manifest(sweep: "  variants: [lora, dora]\n  ranks: [4]\n  base: [fp32, nf4]"), file: "m.yaml")
        #expect(both.runs.count == 2 * plain.runs.count)
        #expect(both.runs.filter { $0.base == .float32 }.map(\.id) == plain.runs.map(\.id))
        let quantized = both.runs.filter { $0.base == .qlora }
        #expect(quantized.count == 2 && quantized.allSatisfy { $0.id.contains("-nf4-s0-") })
        #expect(!plain.sweep.showsBase && RunSpec.axisColumns(showingBase: plain.sweep.showsBase).last == "use_rslora")
        #expect(both.sweep.showsBase && quantized[0].axisValues.last == "nf4")
        #expect(quantized[0].settingsYAML.contains("base: nf4"))
    }

    @Test func theModelBlockSetsTheBaseAndItsQuantization() throws {
        let single = try Manifest(yaml: Self.manifest(model: "model: {name: synthetic, base: nf4, block_size: 128, double_quant: false}\n"), file: "m.yaml")
        #expect(single.runs.allSatisfy { $0.base == .nf4(blockSize: 128, doubleQuant: false) })
        #expect(single.runs[0].id.contains("-nf4-b128-single-s0-"))
        let axis = try Manifest(yaml: Self.manifest(model: "model: {name: synthetic, block_size: 32}\n",
                                                    sweep: "  variants: [lora]\n  ranks: [4]\n  base: [nf4]"), file: "m.yaml")
        #expect(axis.runs.map(\.base) == [.nf4(blockSize: 32, doubleQuant: true)])
    }

    @Test func badBaseSettingsNameTheKeyAndWhatIsAllowed() {
        func message(_ yaml: String) -> String {
            do {
                _ = try Manifest(yaml: yaml, file: "m.yaml")
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(message(Self.manifest(model: "model: {name: synthetic, block_size: 100}\n"))
            .contains("model.block_size: found '100'; allowed: an NF4 block size: 32, 64, 128, 256, 512, 1024, 2048, 4096"))
        #expect(message(Self.manifest(model: "model: {name: synthetic, base: int8}\n")).contains("model.base: found 'int8'; allowed: fp32, nf4"))
        // Only a model whose file holds quantized blocks takes `gguf`.
        #expect(message(Self.manifest(model: "model: {name: synthetic, base: gguf}\n")).contains("model.base: found 'gguf'; allowed: fp32, nf4"))
        #expect(message(Self.manifest(sweep: "  variants: [lora]\n  ranks: [4]\n  base: [nf4, nf4]")).contains("distinct values"))
    }

    /// A sweep on both bases: the NF4 runs train, differ from the float32 ones, and the CSVs and
    /// the saved adapters say which base each had.
    @Test func aSweepOnBothBasesTrainsAndRecordsTheBase() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: Self.manifest(sweep: "  variants: [lora, dora]\n  ranks: [4]\n  base: [fp32, nf4]"), file: "m.yaml")
        let outcomes = try ExperimentSupport.run(manifest, into: directory)
        #expect(outcomes.allSatisfy { $0.status == .completed })
        let summary = try CSVTable(contentsOf: "\(directory)/results/summary.csv", producer: "test")
        let base = try summary.column("base"), loss = try summary.column("final_eval_loss")
        #expect(summary.records.map { $0.fields[base] } == ["fp32", "nf4", "fp32", "nf4"])
        #expect(summary.records[0].fields[loss] != summary.records[1].fields[loss])
        #expect(try CSVTable(contentsOf: "\(directory)/results/metrics.csv", producer: "test").column("base") == 9)
        let layout = ResultsLayout(root: "\(directory)/results")
        for run in manifest.runs {
            let adapter = try SafetensorsFile(path: layout.adapterFile(run.id))
            #expect(adapter.metadata[PeftCheckpoint.baseWeightsKey] == run.base.description)
        }
    }
}
