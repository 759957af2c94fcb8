// Parse LogQL expressions with Grafana's own grammar (@grafana/lezer-logql).
// stdin: a JSON list of expressions; stdout: a JSON list of {expr, error, streamLabels}
// (streamLabels: the label names used in stream selectors `{...}`, not in later label filters).
// Run with NODE_PATH pointing at the node_modules that holds @grafana/lezer-logql.
const { parser } = require('@grafana/lezer-logql');

let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const results = JSON.parse(input).map((expr) => {
    const tree = parser.parse(expr);
    let error = null;
    const streamLabels = [];
    let inSelector = 0;
    tree.iterate({
      enter(node) {
        if (node.type.isError && error === null) error = `syntax error at offset ${node.from}`;
        if (node.name === 'Selector') inSelector += 1;
        if (inSelector && node.name === 'Matcher') {
          const ident = node.node.getChild('Identifier');
          if (ident) streamLabels.push(expr.slice(ident.from, ident.to));
        }
      },
      leave(node) {
        if (node.name === 'Selector') inSelector -= 1;
      },
    });
    return { expr, error, streamLabels };
  });
  process.stdout.write(JSON.stringify(results));
});
