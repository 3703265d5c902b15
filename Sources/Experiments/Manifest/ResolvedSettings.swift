import Yams
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop

/// Builders for the resolved settings written to settings.yaml. The same text is hashed into
/// run ids, so every value is formatted one way only (`formatNumber`) and keys keep their order.
package enum Settings {
    package static func map(_ pairs: [(String, Node)]) -> Node {
        Node(pairs.map { (Node($0.0), $0.1) })
    }

    package static func text(_ value: String) -> Node { Node(value) }
    package static func number(_ value: Double) -> Node { Node(formatNumber(value)) }
    /// A Float setting in its shortest form (`0.85`, not `0.8500000238418579`).
    package static func float(_ value: Float) -> Node { Node(formatMetric(Double(value))) }
    package static func int(_ value: Int) -> Node { Node(String(value)) }
    package static func bool(_ value: Bool) -> Node { Node(value ? "true" : "false") }
    package static func list(_ values: [String]) -> Node { Node(values.map { Node($0) }, Tag(.seq), .flow) }

    package static func yaml(_ node: Node) throws -> String { try Yams.serialize(node: node, width: -1) }
}
