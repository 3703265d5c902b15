import ArgumentParser
import LoRABenchVariants

/// `lorabench variants`: what the registry holds, with each entry's manifest keys.
struct VariantsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "variants",
        abstract: "List the registered variants, optimizer policies and initialisations with their manifest keys.")

    func run() {
        print(VariantRegistry.catalog)
    }
}
