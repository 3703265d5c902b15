import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO
@testable import LoRABenchAdapters
@testable import LoRABenchTraining
@testable import LoRABenchVariants
@testable import LoRABenchModels
import LoRABenchTestSupport
import Testing

/// Every case under the NF4 fixtures (QLoRA's frozen base as bitsandbytes 0.50.2 computes it on the
/// CPU, with peft 0.21.2 for the adapter), by kind: `quant` (the NF4 state, bit for bit), `layer`
/// (one LoRA layer on an NF4 base) and `train` (the MLP on NF4 bases, 30 AdamW steps).
@Suite struct NF4FixtureTests {
    static let directory = Fixtures.directory(environment: "NF4_FIXTURES_DIR", default: "nf4")
    static let cases = Fixtures.cases(in: directory)

    @Test func fixturesArePresent() {
        #expect(!Self.cases.isEmpty, "no NF4 cases under \(Self.directory.path)")
    }

    @Test(arguments: cases)
    func caseMatchesBitsandbytes(_ folder: URL) throws {
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let tensors = try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path)
        let label = folder.lastPathComponent
        switch settings["kind"] as? String {
        case "quant": try Self.checkQuantization(settings, tensors, label: label)
        case "layer": try Self.checkLayer(settings, tensors, label: label)
        case "train": try Self.checkTraining(settings, tensors, label: label)
        default: Issue.record("\(label): kind \(settings["kind"] ?? "nil") is not one of quant, layer, train")
        }
    }

    static func blockSettings(_ settings: [String: Any]) -> (blockSize: Int, doubleQuant: Bool) {
        (settings["blocksize"] as! Int, settings["double_quant"] as! Bool)
    }

    /// How many entries differ, for messages that say how far from bit-exact a tensor is.
    static func mismatches<T: Equatable>(_ got: [T], _ want: [T]) -> Int {
        got.count == want.count ? zip(got, want).filter { $0 != $1 }.count : max(got.count, want.count)
    }

    /// packed, the codes, absmax (the scales dequantization uses: with double quantization
    /// nested_code[absmax_q]·nested_absmax + offset), absmax_q, nested_absmax and offset bit-exact;
    /// dequantized within the case's rtol.
    static func checkQuantization(_ settings: [String: Any], _ tensors: SafetensorsFile, label: String) throws {
        let (blockSize, doubleQuant) = blockSettings(settings)
        let rtol = settings["rtol"] as! Double
        let weight = try tensors.matrix("weight")
        #expect(NF4.code.map(\.bitPattern) == (try tensors.floats("code")).map(\.bitPattern), "\(label): NF4 code values")

        let quantized = try NF4Matrix(quantizing: weight, blockSize: blockSize, doubleQuant: doubleQuant)
        let packedWant = try tensors.ints("packed")
        let packedMismatches = mismatches(quantized.packed.map(Int.init), packedWant)
        #expect(packedMismatches == 0, "\(label): \(packedMismatches) of \(packedWant.count) packed bytes differ")
        let absmaxWant = try tensors.floats("absmax")
        let absmaxMismatches = mismatches(quantized.blockAbsmax.map(\.bitPattern), absmaxWant.map(\.bitPattern))
        #expect(absmaxMismatches == 0, "\(label): \(absmaxMismatches) of \(absmaxWant.count) block absmax values differ")

        var summary = "packed \(packedWant.count - packedMismatches)/\(packedWant.count) bytes, "
            + "absmax \(absmaxWant.count - absmaxMismatches)/\(absmaxWant.count)"
        if doubleQuant {
            guard case let .doubleQuantized(scales) = quantized.scales else {
                Issue.record("\(label): double quantization kept float32 scales")
                return
            }
            #expect(NF4.dynamicMap.map(\.bitPattern) == (try tensors.floats("nested_code")).map(\.bitPattern),
                    "\(label): the dynamic map differs from nested_code")
            let codesWant = try tensors.ints("absmax_q")
            let codesMismatches = mismatches(scales.quantized.map(Int.init), codesWant)
            #expect(codesMismatches == 0, "\(label): \(codesMismatches) of \(codesWant.count) absmax_q differ")
            #expect(scales.nestedAbsmax.map(\.bitPattern) == (try tensors.floats("nested_absmax")).map(\.bitPattern),
                    "\(label): nested_absmax")
            let offsetWant = try tensors.floats("offset")[0]
            #expect(scales.offset.bitPattern == offsetWant.bitPattern, "\(label): offset \(scales.offset) vs \(offsetWant)")
            summary += ", absmax_q \(codesWant.count - codesMismatches)/\(codesWant.count)"
        }
        let dequantized = quantized.dequantized(), want = try tensors.floats("dequantized")
        let error = relativeError(dequantized.storage, want)
        #expect(error <= rtol, "\(label): dequantized differs by \(error) (rtol \(rtol))")
        let worst = zip(dequantized.storage, want).map { abs($0 - $1) }.max() ?? 0
        print("nf4 \(label): \(summary), dequantized max |Δ| \(worst), relative error \(error) (rtol \(rtol))")
    }

    /// out = x·dequant(nf4(W0))ᵀ + b + s·(x·Aᵀ)·Bᵀ and its gradients, peft's LoRA on bitsandbytes' Linear4bit.
    static func checkLayer(_ settings: [String: Any], _ tensors: SafetensorsFile, label: String) throws {
        let (blockSize, doubleQuant) = blockSettings(settings)
        let rtol = settings["rtol"] as! Double
        let base = try FrozenLinear(quantizing: tensors.matrix("base.weight"), blockSize: blockSize, doubleQuant: doubleQuant,
                                    bias: tensors.matrix("base.bias"))
        let adapter = try LoRA(base: base, a: tensors.matrix("lora_A"), b: tensors.matrix("lora_B"),
                               scaling: Float(settings["scaling"] as! Double))
        var results = [("dequantized_weight", base.weight.storage)]
        results.append(("out", try adapter.forward(tensors.matrix("x"), training: true).storage))
        results.append(("grad_x", try adapter.backward(tensors.matrix("grad_out")).storage))
        for parameter in adapter.parameters { results.append(("grad_" + parameter.name, parameter.grad.storage)) }
        #expect(Set(results.map(\.0)).isSuperset(of: tensors.names.filter { $0.hasPrefix("grad_") && $0 != "grad_out" }),
                "\(label): a gradient of the fixture is not compared")
        #expect(base.isQuantized, "\(label): the base left NF4")
        try ParityTraining.compare(results, with: tensors, rtol: rtol, label: label)
    }

    /// bitsandbytes 0.50.2's AVX-512 CPU `dequantize_4bit` (`dequantizeBlockwise4bitCpu` in
    /// csrc/cpu_ops.cpp), used when cols is a multiple of 16, takes the scale of row r, column c from
    /// absmax[r·(cols / blockSize) + c / blockSize] with integer divisions: the scale of the value's
    /// own block only when cols is a multiple of the block size. nil where it computes code·absmax
    /// of the flat block, as `dequantize(into:)` does.
    static func avx512Dequantization(_ quantized: NF4Matrix) -> Matrix? {
        guard quantized.cols % 16 == 0, quantized.cols % quantized.blockSize != 0 else { return nil }
        let absmax = quantized.blockAbsmax, blocksPerRow = quantized.cols / quantized.blockSize
        var output = Matrix(rows: quantized.rows, cols: quantized.cols)
        for r in 0..<quantized.rows {
            for c in 0..<quantized.cols {
                let i = r * quantized.cols + c, byte = quantized.packed[i / 2]
                output[r, c] = NF4.code[Int(i % 2 == 0 ? byte >> 4 : byte & 0x0F)] * absmax[r * blocksPerRow + c / quantized.blockSize]
            }
        }
        return output
    }

    /// The NF4 weight a train case's layer trains on: the quantization of `base.<name>.weight`, whose
    /// dequantization must be the fixture's `<name>.dequantized_weight` bit for bit. When the
    /// fixture's weight is instead bitsandbytes' AVX-512 artefact of that quantization (fc1 of
    /// train-qlora: 32 columns, blocks of 64, so every row used absmax[0]), peft trained on the
    /// artefact: the layer then holds its NF4 re-quantization (single scales), which is lossless
    /// because every flat block of the artefact has one scale and holds a ±1 code.
    static func trainedWeight(_ name: String, _ settings: [String: Any], _ tensors: SafetensorsFile, label: String) throws -> NF4Matrix {
        let (blockSize, doubleQuant) = blockSettings(settings)
        let quantized = try NF4Matrix(quantizing: tensors.matrix("base.\(name).weight"), blockSize: blockSize, doubleQuant: doubleQuant)
        let fixtureWeight = try tensors.matrix("\(name).dequantized_weight")
        if quantized.dequantized() == fixtureWeight { return quantized }
        let difference = zip(quantized.dequantized().storage, fixtureWeight.storage).map { abs($0 - $1) }.max() ?? 0
        #expect(avx512Dequantization(quantized) == fixtureWeight,
                "\(label): \(name).dequantized_weight is neither our dequantization of base.\(name).weight (max |Δ| \(difference)) nor bitsandbytes' AVX-512 one")
        let requantized = try NF4Matrix(quantizing: fixtureWeight, blockSize: blockSize, doubleQuant: false)
        #expect(requantized.dequantized() == fixtureWeight, "\(label): re-quantizing \(name).dequantized_weight is not lossless")
        print("nf4 \(label): \(name).dequantized_weight is bitsandbytes' AVX-512 dequantization (row-aligned block scales, "
              + "\(quantized.cols) columns, blocks of \(blockSize)); \(name) trains on its NF4 re-quantization")
        return requantized
    }

    /// y = fc2(tanh(fc1(x))) with LoRA on NF4 bases, AdamW as case.json says, against peft's losses
    /// and final factors.
    static func checkTraining(_ settings: [String: Any], _ tensors: SafetensorsFile, label: String) throws {
        let rtol = settings["rtol"] as! Double
        let scaling = Float(settings["lora_alpha"] as! Double) / Float(settings["r"] as! Int)
        let buffer = DequantizationBuffer()
        var layers: [NamedAdapter] = []
        for name in ParityTraining.layerNames(tensors) {
            let base = try FrozenLinear(packed: trainedWeight(name, settings, tensors, label: label),
                                        bias: tensors.matrix("base.\(name).bias"), buffer: buffer)
            let layer = try LoRA(base: base, a: tensors.matrix("init.\(name).lora_A.weight"), b: tensors.matrix("init.\(name).lora_B.weight"),
                                 scaling: scaling)
            layers.append(NamedAdapter(name: name, adapter: layer))
        }
        let model = AdaptedMLP(layers: layers)
        let losses = try ParityTraining.train(model, optimizer: ParityTraining.adamW(settings, parameters: model.parameters),
                                              settings: settings, tensors: tensors)
        var results = [("losses", losses)]
        for layer in layers {
            let lora = layer.adapter as! LoRA
            #expect(lora.base.isQuantized, "\(label): \(layer.name)'s base left NF4")
            results += [("final.\(layer.name).lora_A.weight", lora.a.value.storage), ("final.\(layer.name).lora_B.weight", lora.b.value.storage)]
        }
        try ParityTraining.compare(results, with: tensors, rtol: rtol, label: label)
    }
}
