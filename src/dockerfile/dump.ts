/**
 * Render a parse tree in BuildKit's dump format (the `result` files of its
 * parser testfiles): one `(keyword ["--flag" …] "arg" …)` line per
 * instruction, keyword lower-cased, strings quoted like Go's strconv.Quote.
 */
import type { DockerfileNode, ParseResult } from './parser.js';
import { goQuote, trimSpace } from './text.js';

export function dumpNode(node: DockerfileNode): string {
  let s = node.keyword.toLowerCase();
  if (node.flags.length > 0) s += ' [' + node.flags.map(goQuote).join(' ') + ']';
  if (node.onbuild) s += ' (' + dumpNode(node.onbuild) + ')';
  for (const a of node.args) s += ' ' + goQuote(a);
  return trimSpace(s);
}

/** The whole tree, newline-terminated (BuildKit's `Dump() + "\n"`). */
export function dumpParseResult(result: Pick<ParseResult, 'nodes'>): string {
  return result.nodes.map((n) => '(' + dumpNode(n) + ')').join('\n') + '\n';
}
