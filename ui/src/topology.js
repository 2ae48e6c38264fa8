// topology.js — draws GET /api/topology's graph as columns, left to right:
// sources → stores → views and sinks, with curved edges. Plain SVG: the graph is
// small (one source, a handful of stores) and fixed while an instance runs.

const NS = 'http://www.w3.org/2000/svg';
const COLS = [
  ['source', 'sources'],
  ['store', 'stores'],
  ['out', 'views · sinks'],
];

function node(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function dur(ms) {
  if (ms % 3600000 === 0) return `${ms / 3600000}h`;
  if (ms % 60000 === 0) return `${ms / 60000}m`;
  return `${ms / 1000}s`;
}

function subtitle(n, topo) {
  if (n.kind === 'store') {
    const s = (topo.stores || []).find((x) => x.name === n.name);
    if (!s) return '';
    const w = s.window;
    const by = (s.group_by || []).join(', ') || 'all';
    return w.type === 'hopping' ? `by ${by} · hopping ${dur(w.size_ms)}/${dur(w.advance_ms)}` : `by ${by} · ${w.type} ${dur(w.size_ms)}`;
  }
  if (n.kind === 'view') {
    const v = (topo.views || []).find((x) => x.name === n.name);
    return v ? v.route : '';
  }
  if (n.kind === 'source') return topo.source ? `${topo.source.format}` : '';
  return n.kind;
}

export function renderTopology(svg, topo) {
  const { nodes, edges } = topo.graph;
  const colOf = (n) => (n.kind === 'source' ? 0 : n.kind === 'store' ? 1 : 2);
  const cols = [[], [], []];
  for (const n of nodes) cols[colOf(n)].push(n);
  const W = 560;
  const boxW = 168;
  const boxH = 40;
  const gapY = 12;
  const top = 26;
  const rows = Math.max(...cols.map((c) => c.length));
  const H = top + rows * (boxH + gapY);
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.textContent = '';
  const xs = [0, (W - boxW) / 2, W - boxW];
  const pos = new Map();
  cols.forEach((c, ci) => {
    svg.append(node('text', { x: xs[ci] + 2, y: 12, class: 'col' }, COLS[ci][1]));
    const offset = ((rows - c.length) * (boxH + gapY)) / 2;
    c.forEach((n, i) => pos.set(n.id, { x: xs[ci], y: top + offset + i * (boxH + gapY), n }));
  });
  const g = node('g', {});
  for (const e of edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + boxW;
    const y1 = a.y + boxH / 2;
    const x2 = b.x;
    const y2 = b.y + boxH / 2;
    const mx = (x1 + x2) / 2;
    g.append(node('path', { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 4},${y2}` }));
    g.append(node('path', { d: `M${x2 - 9},${y2 - 4} L${x2 - 3},${y2} L${x2 - 9},${y2 + 4}` }));
  }
  svg.append(g);
  for (const { x, y, n } of pos.values()) {
    const grp = node('g', { class: `node ${n.kind}`, transform: `translate(${x},${y})` });
    const title = node('title', {}, `${n.kind}: ${n.name}`);
    grp.append(title, node('rect', { width: boxW, height: boxH, rx: 6 }));
    const name = n.name.length > 24 ? n.name.slice(0, 23) + '…' : n.name;
    grp.append(node('text', { x: 9, y: 17 }, name));
    const sub = subtitle(n, topo);
    grp.append(node('text', { x: 9, y: 31, class: 'sub' }, sub.length > 30 ? sub.slice(0, 29) + '…' : sub));
    svg.append(grp);
  }
}
