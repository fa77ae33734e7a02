/**
 * Render a parse tree in BuildKit's dump format (the `result` files of its
 * parser testfiles): one `(keyword ["--flag" …] "arg" …)` line per
 * instruction, keyword lower-cased, strings quoted like Go's strconv.Quote.
 */
import type { DockerfileNode, ParseResult } from './parser.js';
import { goQuote, trimSpace } from './text.js';

export function dumpNode(node: DockerfileNode): string {
  // ONBUILD chains can nest thousands deep: build the text from the innermost node outwards.
  const chain: DockerfileNode[] = [];
  for (let n: DockerfileNode | undefined = node; n; n = n.onbuild) chain.push(n);
  let inner = '';
  for (let i = chain.length - 1; i >= 0; i--) {
    const n = chain[i]!;
    let s = n.keyword.toLowerCase();
    if (n.flags.length > 0) s += ' [' + n.flags.map(goQuote).join(' ') + ']';
    if (n.onbuild) s += ' (' + inner + ')';
    for (const a of n.args) s += ' ' + goQuote(a);
    // Only a lone node can start or end with a space (an empty keyword); trimming every
    // level would flatten the growing string each time.
    inner = i === chain.length - 1 ? trimSpace(s) : s;
  }
  return chain.length > 1 ? trimSpace(inner) : inner;
}

/** The whole tree, newline-terminated (BuildKit's `Dump() + "\n"`). */
export function dumpParseResult(result: Pick<ParseResult, 'nodes'>): string {
  return result.nodes.map((n) => '(' + dumpNode(n) + ')').join('\n') + '\n';
}
