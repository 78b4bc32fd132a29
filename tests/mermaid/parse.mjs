// Parse a Mermaid diagram read from standard input with Mermaid itself; exit 1, printing why, if it does not parse.
// Mermaid wants a DOM even to parse: jsdom gives it one. Used by tests/commands/test_graph.py.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!DOCTYPE html><body></body>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");

try {
  const result = await mermaid.parse(readFileSync(0, "utf8"));
  console.log(result.diagramType);
} catch (error) {
  console.log(error.message);
  process.exit(1);
}
