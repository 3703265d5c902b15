import Testing

/// The pure analysis functions of the LoRA and DoRA papers and their figures; each concept's
/// suite extends this one, so `swift test --filter Analysis` runs them all.
@Suite enum AnalysisTests {}
