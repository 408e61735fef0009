// Parse a Mermaid flowchart (stdin) with mermaid's own parser in Node, a jsdom window standing in for the
// browser (mermaid sanitizes labels with DOMPurify), and print what it understood as JSON on stdout:
// {"ok": true, "type": ..., "vertices": {id: label}, "edges": [[from, to, label]], "subgraphs": [[id, title, [nodes]]]}
// or {"ok": false, "error": ...}. Exit 2 when mermaid or jsdom is not installed.
import { readFileSync } from "node:fs";

let JSDOM;
let mermaid;
try {
  ({ JSDOM } = await import("jsdom"));
  const dom = new JSDOM("<!DOCTYPE html><html><body></body></html>");
  globalThis.window = dom.window;
  globalThis.document = dom.window.document;
  globalThis.DOMParser = dom.window.DOMParser;
  mermaid = (await import("mermaid")).default;
} catch (error) {
  process.stdout.write(JSON.stringify({ ok: false, missing: String(error) }));
  process.exit(2);
}

const text = readFileSync(0, "utf8");
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
try {
  const parsed = await mermaid.parse(text);
  const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
  const db = diagram.db;
  const vertices = {};
  for (const [id, vertex] of db.getVertices()) {
    vertices[id] = vertex.text;
  }
  const edges = db.getEdges().map((edge) => [edge.start, edge.end, edge.text]);
  const subgraphs = db.getSubGraphs().map((graph) => [graph.id, graph.title, graph.nodes]);
  process.stdout.write(JSON.stringify({ ok: true, type: parsed.diagramType, vertices, edges, subgraphs }));
} catch (error) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(error && error.message ? error.message : error) }));
}
