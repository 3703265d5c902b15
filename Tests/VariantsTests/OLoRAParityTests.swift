import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO
@testable import LoRABenchAdapters
@testable import LoRABenchVariants
@testable import LoRABenchModels
import LoRABenchTestSupport
import Testing

/// Every OLoRA case (`variant: olora`): LoRA layers built with `initialization: .olora` from the
/// case's original base weight, compared with peft's factors, residual base, outputs and gradients
/// (layer) or residuals, losses and final factors (train).
///
/// QR is unique only up to the sign of each column of Q (and the matching row of R). LAPACK's
/// geqrf is what torch calls, so the signs should agree; the comparison flips our column k of B and
/// row k of A (and their gradients, and the trained factors) where they do not, prints whether any
/// flip was needed, and checks s·B·A, which no sign choice changes, as it is.
@Suite struct OLoRAParityTests {
    static let directory = Fixtures.directory(environment: "PEFT_FIXTURES_DIR", default: "peft")
    static let variants: Set<String> = ["olora"]
    static let layerCases = Fixtures.cases(in: directory, kind: "layer", variants: variants)
    static let trainCases = Fixtures.cases(in: directory, kind: "train", variants: variants)

    @Test func fixturesArePresent() {
        #expect(!Self.layerCases.isEmpty, "no OLoRA layer cases under \(Self.directory.path)")
        #expect(!Self.trainCases.isEmpty, "no OLoRA train cases under \(Self.directory.path)")
    }

    static func config(_ settings: [String: Any]) -> AdapterConfig {
        AdapterConfig(rank: settings["r"] as! Int, alpha: Float(settings["lora_alpha"] as! Double),
                      useRSLoRA: settings["use_rslora"] as? Bool ?? false, initialization: .olora)
    }

    /// ±1 per rank component: the sign of ⟨our B[:, k], peft's B[:, k]⟩.
    static func signs(_ b: Matrix, _ reference: Matrix) -> [Float] {
        (0..<b.cols).map { k in (0..<b.rows).reduce(Float(0)) { $0 + b[$1, k] * reference[$1, k] } < 0 ? -1 : 1 }
    }

    /// B (or ∂B) with column k multiplied by signs[k].
    static func alignedColumns(_ m: Matrix, _ signs: [Float]) -> [Float] {
        var out = m
        for r in 0..<m.rows { for k in 0..<m.cols { out[r, k] *= signs[k] } }
        return out.storage
    }

    /// A (or ∂A) with row k multiplied by signs[k].
    static func alignedRows(_ m: Matrix, _ signs: [Float]) -> [Float] {
        var out = m
        for k in 0..<m.rows { for c in 0..<m.cols { out[k, c] *= signs[k] } }
        return out.storage
    }

    static func report(_ label: String, _ pairs: [(name: String, ours: Matrix, peft: Matrix)]) {
        let exact = pairs.map { "\($0.name) \(relativeError($0.ours, $0.peft))" }.joined(separator: ", ")
        print("OLoRA \(label): element-wise (no sign alignment) relative error: \(exact)")
    }

    @Test(arguments: layerCases)
    func layerMatchesPeft(_ folder: URL) throws {
        let label = folder.lastPathComponent
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let tensors = try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path)
        let config = Self.config(settings)
        let base = try FrozenLinear(weight: tensors.matrix("base.weight"), bias: tensors.matrix("base.bias"))
        let adapter = try LoRA(base: base, config: config, seed: 0)
        if let scaling = settings["scaling"] as? Double { #expect(abs(Double(adapter.scaling) - scaling) <= 1e-6 * scaling) }

        let peftA = try tensors.matrix("init.lora_A"), peftB = try tensors.matrix("init.lora_B")
        let signs = Self.signs(adapter.b.value, peftB)
        Self.report(label, [("lora_A", adapter.a.value, peftA), ("lora_B", adapter.b.value, peftB)])
        var peftProduct = Matrix.zeros(0, 0)
        gemm(peftB, .n, peftA, .n, into: &peftProduct, alpha: adapter.scaling)

        let x = try tensors.matrix("x")
        let out = try adapter.forward(x, training: true)
        let gradX = try adapter.backward(tensors.matrix("grad_out"))
        #expect(relativeError(out, try tensors.matrix("base_out")) <= settings["rtol"] as! Double, "\(label): output at init is not the base output")
        #expect(relativeError(adapter.deltaWeight(), peftProduct) <= settings["rtol"] as! Double, "\(label): s·B·A differs from peft's")
        try ParityTraining.compare([
            ("init.lora_A", Self.alignedRows(adapter.a.value, signs)),
            ("init.lora_B", Self.alignedColumns(adapter.b.value, signs)),
            ("init.residual_weight", adapter.base.weight.storage),
            ("out", out.storage),
            ("grad_x", gradX.storage),
            ("grad_lora_A", Self.alignedRows(adapter.a.grad, signs)),
            ("grad_lora_B", Self.alignedColumns(adapter.b.grad, signs)),
        ], with: tensors, rtol: settings["rtol"] as! Double, label: label + (signs.contains(-1) ? " (signs aligned: \(signs))" : ""))
    }

    @Test(arguments: trainCases)
    func trajectoryMatchesPeft(_ folder: URL) throws {
        let label = folder.lastPathComponent
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let tensors = try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path)
        let config = Self.config(settings)
        var layers: [NamedAdapter] = [], signs: [String: [Float]] = [:]
        var compared: [(name: String, got: [Float])] = []
        var exact: [(name: String, ours: Matrix, peft: Matrix)] = []
        for name in ParityTraining.layerNames(tensors) {
            let adapter = try LoRA(base: ParityTraining.base(tensors, name), config: config, seed: 0)
            let peftA = try tensors.matrix("init.\(name).lora_A.weight"), peftB = try tensors.matrix("init.\(name).lora_B.weight")
            signs[name] = Self.signs(adapter.b.value, peftB)
            exact += [("\(name).lora_A", adapter.a.value, peftA), ("\(name).lora_B", adapter.b.value, peftB)]
            compared += [("init.\(name).lora_A.weight", Self.alignedRows(adapter.a.value, signs[name]!)),
                         ("init.\(name).lora_B.weight", Self.alignedColumns(adapter.b.value, signs[name]!)),
                         ("init.residual.\(name).weight", adapter.base.weight.storage)]
            layers.append(NamedAdapter(name: name, adapter: adapter))
        }
        Self.report(label, exact)
        let model = AdaptedMLP(layers: layers)
        compared.append(("losses", try ParityTraining.train(model, optimizer: ParityTraining.adamW(settings, parameters: model.parameters),
                                                            settings: settings, tensors: tensors)))
        // A sign flip of component k mirrors its whole trajectory (gradients and Adam steps flip too).
        for layer in layers {
            let lora = layer.adapter as! LoRA
            compared += [("final.\(layer.name).lora_A.weight", Self.alignedRows(lora.a.value, signs[layer.name]!)),
                         ("final.\(layer.name).lora_B.weight", Self.alignedColumns(lora.b.value, signs[layer.name]!))]
        }
        let flipped = signs.values.contains { $0.contains(-1) }
        try ParityTraining.compare(compared, with: tensors, rtol: settings["rtol"] as! Double,
                                   label: label + (flipped ? " (signs aligned: \(signs))" : ""))
    }
}
