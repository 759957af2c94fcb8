// Parse LogQL expressions with Grafana's own grammar (@grafana/lezer-logql).
// stdin: a JSON list of expressions; stdout: a JSON list of
// {expr, error, streamLabels, lineFilters, labelFilters, parsers, rangeOps}:
// streamLabels: the label names used in stream selectors `{...}`, not in later label filters;
// lineFilters: each line filter's text (`|= "x"`); labelFilters: each label filter's text (`request_id="x"`);
// parsers: the parser stages (`json`, `logfmt`...); rangeOps: the range functions (`count_over_time`, `rate`...).
// Run with NODE_PATH pointing at the node_modules that holds @grafana/lezer-logql.
const { parser } = require('@grafana/lezer-logql');

let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const results = JSON.parse(input).map((expr) => {
    const tree = parser.parse(expr);
    let error = null;
    const streamLabels = [];
    const lineFilters = [];
    const labelFilters = [];
    const parsers = [];
    const rangeOps = [];
    let inSelector = 0;
    tree.iterate({
      enter(node) {
        const text = expr.slice(node.from, node.to);
        if (node.type.isError && error === null) error = `syntax error at offset ${node.from}`;
        if (node.name === 'Selector') inSelector += 1;
        if (inSelector && node.name === 'Matcher') {
          const ident = node.node.getChild('Identifier');
          if (ident) streamLabels.push(expr.slice(ident.from, ident.to));
        }
        if (node.name === 'LineFilter') lineFilters.push(text);
        if (node.name === 'LabelFilter') labelFilters.push(text);
        if (node.name === 'LabelParser') parsers.push(text);
        if (node.name === 'RangeOp') rangeOps.push(text);
      },
      leave(node) {
        if (node.name === 'Selector') inSelector -= 1;
      },
    });
    return { expr, error, streamLabels, lineFilters, labelFilters, parsers, rangeOps };
  });
  process.stdout.write(JSON.stringify(results));
});
