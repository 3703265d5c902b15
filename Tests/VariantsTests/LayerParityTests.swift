import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO
@testable import LoRABenchAdapters
@testable import LoRABenchVariants
import LoRABenchTestSupport
import Testing

/// Every `layer` case under the peft fixtures: one nn.Linear adapted by peft, compared tensor by
/// tensor (output, every gradient, merged weight and output) within the case's rtol.
@Suite struct LayerParityTests {
    static let directory = Fixtures.directory(environment: "PEFT_FIXTURES_DIR", default: "peft")
    /// VeRA and OLoRA cases are read by VeRAParityTests and OLoRAParityTests.
    static let variants: Set<String> = ["lora", "loraplus", "dora", "adalora"]
    static let layerCases = Fixtures.cases(in: directory, kind: "layer", variants: variants)

    @Test func fixturesArePresent() {
        #expect(!Self.layerCases.isEmpty, "no layer cases under \(Self.directory.path)")
    }

    @Test(arguments: layerCases)
    func layerMatchesPeft(_ folder: URL) throws {
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let tensors = try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path)
        let rtol = settings["rtol"] as! Double
        let scaling = Float(settings["scaling"] as! Double)
        let variant = settings["variant"] as! String
        let base = try FrozenLinear(weight: tensors.matrix("base.weight"), bias: tensors.matrix("base.bias"))
        let a = try tensors.matrix("lora_A"), b = try tensors.matrix("lora_B")

        let adapter: any Adapter
        switch variant {
        case _ where settings["use_dora"] as? Bool == true, "dora":
            adapter = try DoRA(base: base, a: a, b: b, magnitude: tensors.matrix("magnitude"), scaling: scaling)
        case "lora", "loraplus":
            adapter = try LoRA(base: base, a: a, b: b, scaling: scaling)
        case "adalora":
            let alpha = Float(settings["lora_alpha"] as! Double)
            adapter = try AdaLoRALayer(base: base, a: a, b: b, e: tensors.matrix("lora_E"), alpha: alpha,
                                       initialRank: settings["r"] as! Int)
        default:
            Issue.record("\(folder.lastPathComponent): unknown variant \(variant)")
            return
        }
        #expect(abs(adapter.scaling - scaling) <= 1e-6 * scaling, "\(folder.lastPathComponent): scaling")

        let out = try adapter.forward(tensors.matrix("x"), training: true)
        let gradX = try adapter.backward(tensors.matrix("grad_out"))
        var results: [(String, Matrix)] = [("out", out), ("grad_x", gradX)]
        for parameter in adapter.parameters {
            results.append((parameter.name == "lora_magnitude_vector" ? "grad_magnitude" : "grad_" + parameter.name, parameter.grad))
        }
        adapter.merge()
        results.append(("merged_weight", adapter.base.weight))
        results.append(("merged_out", try adapter.forward(tensors.matrix("x"), training: false)))
        var worst = (name: "", error: 0.0)
        for (name, got) in results {
            let error = relativeError(got.storage, try tensors.floats(name))
            #expect(error <= rtol, "\(folder.lastPathComponent): \(name) differs from peft by \(error) (rtol \(rtol))")
            if error >= worst.error { worst = (name, error) }
        }
        print("peft parity \(folder.lastPathComponent): worst relative error \(worst.error) in \(worst.name) (rtol \(rtol))")
    }
}

