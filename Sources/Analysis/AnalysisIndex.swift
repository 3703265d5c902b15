import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchVariants
import LoRABenchInterop
import LoRABenchPlotting

/// The analysis report: `index.html` in an analysis folder, every figure in it (in name order)
/// with the CSV files beside them, rebuilt after each `lorabench analyze` command.
public enum AnalysisIndex {
    public static func write(directory: String) throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        let escape = SVGPlot.SVGWriter.escape
        var html = """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>LoRABench analyses</title>
        <style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
        figure{margin:2em 0}img{max-width:100%}figcaption{color:#555;font-size:0.9em}</style></head><body>
        <h1>Analyses of trained adapters</h1>
        <p>Written by <code>lorabench analyze</code>: subspace similarity and ΔW statistics (LoRA paper, section 7),
        magnitude and direction changes (DoRA paper, section 2.2) and AdaLoRA's rank allocation.</p>
        <h2>Data</h2><ul>

        """
        for name in names where name.hasSuffix(".csv") { html += "<li><a href=\"\(escape(name))\">\(escape(name))</a></li>\n" }
        html += "</ul>\n<h2>Figures</h2>\n"
        for name in names where name.hasSuffix(".svg") {
            html += "<figure><img src=\"\(escape(name))\" alt=\"\(escape(name))\"><figcaption>\(escape(name))</figcaption></figure>\n"
        }
        html += "</body></html>\n"
        try AtomicFile.write(html, to: "\(directory)/index.html")
    }
}
