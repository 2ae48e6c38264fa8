// main.js — eddy's live dashboard (docs/dashboard.md). Everything live arrives
// over one WebSocket (/ws, conn.js): the four stores of monitoring.json and the
// instance's health ("health:instance", the /api/health body). The topology is
// read once per connection from GET /api/topology. There is no polling loop:
// the page redraws when a message arrives.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { Conn } from './conn.js';
import { renderTopology } from './topology.js';

// Okabe–Ito, with grey for black on the dark background; the later series also
// get dashes so that no two series differ by colour alone.
const PALETTE = ['#e69f00', '#56b4e9', '#009e73', '#f0e442', '#cc79a7', '#d55e00', '#0072b2', '#bbbbbb'];
const DASHES = [null, null, null, null, [6, 3], [6, 3], [2, 3], [2, 3]];
const STATUS_COLOURS = { 2: '#009e73', 3: '#56b4e9', 4: '#e69f00', 5: '#d55e00' };
const MIN = 60000;

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const nf0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const fmtInt = (v) => (v == null ? '—' : nf0.format(v));
const fmtCompact = (v) => {
  if (v == null) return '—';
  const a = Math.abs(v);
  if (a >= 1e9) return nf1.format(v / 1e9) + ' G';
  if (a >= 1e6) return nf1.format(v / 1e6) + ' M';
  if (a >= 1e4) return nf1.format(v / 1e3) + ' k';
  return nf0.format(v);
};
const fmtMs = (v) => (v == null ? '—' : v >= 1000 ? nf1.format(v / 1000) + ' s' : v >= 10 ? nf0.format(v) + ' ms' : nf1.format(v) + ' ms');
const fmtPct = (v) => (v == null ? '—' : v === 0 ? '0 %' : v < 0.001 ? '<0.1 %' : nf1.format(v * 100) + ' %');
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const hmFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fmtTime = (ms) => (ms == null ? '—' : timeFmt.format(new Date(ms)));
const fmtHM = (ms) => hmFmt.format(new Date(ms));

// --- state ------------------------------------------------------------------------------
const st = {
  health: null,
  streamTime: null, // largest stream time over the partitions (event time, ms)
  rate: { t: [], v: [] }, // events/s samples (client time, s)
  lastProcessed: null,
  stores: {}, // name -> last body
  errors: {}, // name -> message
  subs: [],
  subscribedAt: null,
  lastMessage: null,
};

// --- panels: state helpers ---------------------------------------------------------------
function panelState(id, state, message) {
  const p = $(id);
  p.dataset.state = state;
  if (message) p.querySelector('.empty').textContent = message;
}
function coverageBadge(id, body) {
  const b = $(id).querySelector('.badge');
  if (body && body.complete === false) {
    const r = body.restoring || [];
    b.textContent = body.held
      ? 'waiting for partitions · last data shown'
      : r.length
        ? `partial · restoring ${r.length} partition${r.length > 1 ? 's' : ''}`
        : 'partial · not every partition read';
    b.hidden = false;
  } else b.hidden = true;
}

// --- charts -------------------------------------------------------------------------------
function axisStyle() {
  return { stroke: '#8b96a7', grid: { stroke: '#232b36', width: 1 }, ticks: { stroke: '#232b36', width: 1 }, font: '12px system-ui, sans-serif' };
}
// Time axes in the viewer's local time: whole minutes for the trends, seconds
// for the engine's rate; never more labels than fit.
const X_MINUTES = { space: 70, incrs: [60, 120, 300, 600, 900, 1800, 3600], values: (u, ts) => ts.map((t) => fmtHM(t * 1000)) };
const X_SECONDS = { space: 110, incrs: [5, 10, 15, 30, 60, 120], values: (u, ts) => ts.map((t) => fmtTime(t * 1000)) };
function makeChart(host, series, yLabel, yFmt, xAxis = X_MINUTES) {
  const opts = {
    width: host.clientWidth || 600,
    height: host.clientHeight || 240,
    padding: [8, 40, 0, 0], // room for the last time label, centred on the right edge
    legend: { show: false },
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.12 : 1] } },
    axes: [
      { ...axisStyle(), ...xAxis },
      { ...axisStyle(), size: 60, label: yLabel, labelSize: 18, labelFont: '12px system-ui, sans-serif', values: (u, vals) => vals.map(yFmt) },
    ],
    series: [{}, ...series],
  };
  const u = new uPlot(opts, [[], ...series.map(() => [])], host);
  new ResizeObserver(() => u.setSize({ width: host.clientWidth, height: host.clientHeight })).observe(host);
  return u;
}

// Dots while a series has too few points for a line (the first minutes).
const fewPoints = (u, si) => u.data[si].filter((v) => v != null).length < 4;
let trendChart = null;
let trendKeys = [];
function renderTrends() {
  const body = st.stores.requests_per_endpoint;
  if (st.errors.requests_per_endpoint) return panelState('p-trends', 'error', `requests_per_endpoint: ${st.errors.requests_per_endpoint}`);
  if (!body || !body.windows.length) return panelState('p-trends', 'empty', 'No windows in requests_per_endpoint yet: is anything writing to the source topic?');
  const now = st.streamTime ?? Math.max(...body.windows.map((w) => w.start + MIN));
  const from = now - 30 * MIN;
  const ws = body.windows.filter((w) => w.start >= from - MIN);
  const keys = [...new Set(ws.map((w) => w.key))].sort();
  const starts = [...new Set(ws.map((w) => w.start))].sort((a, b) => a - b);
  const idx = new Map(starts.map((s, i) => [s, i]));
  const cols = keys.map(() => starts.map(() => null));
  const kidx = new Map(keys.map((k, i) => [k, i]));
  for (const w of ws) {
    let v = w.count;
    // The current minute is still filling: show its rate so far, per minute.
    const elapsed = now - w.start;
    if (elapsed < MIN) v = elapsed >= 2000 ? (w.count * MIN) / elapsed : null;
    cols[kidx.get(w.key)][idx.get(w.start)] = v;
  }
  if (!trendChart || keys.join() !== trendKeys.join()) {
    if (trendChart) trendChart.destroy();
    const host = $('chart-trends');
    host.textContent = '';
    panelState('p-trends', 'data');
    trendChart = makeChart(
      host,
      keys.map((k, i) => ({ label: k, stroke: PALETTE[i % 8], width: 2, dash: DASHES[i % 8] || undefined, points: { show: fewPoints, size: 7, fill: PALETTE[i % 8] }, spanGaps: false, value: (u, v) => fmtInt(v) })),
      'requests / min',
      fmtCompact,
    );
    trendKeys = keys;
    const leg = $('legend-trends');
    leg.textContent = '';
    keys.forEach((k, i) => {
      const it = el('span', 'it');
      const sw = el('span', 'sw');
      sw.style.borderTopColor = PALETTE[i % 8];
      if (DASHES[i % 8]) sw.style.borderTopStyle = 'dashed';
      it.append(sw, el('span', null, k), el('span', 'val'));
      it.dataset.key = k;
      leg.append(it);
    });
  }
  panelState('p-trends', 'data');
  trendChart.setData([starts.map((s) => s / 1000), ...cols]);
  // Up to 30 minutes; less while there is less history (but at least 3).
  const xmin = Math.min(now - 3 * MIN, Math.max(from, starts[0]));
  trendChart.setScale('x', { min: xmin / 1000, max: now / 1000 });
  // legend: last complete minute per endpoint
  const last = starts.filter((s) => now - s >= MIN).pop();
  for (const it of $('legend-trends').children) {
    const i = kidx.get(it.dataset.key);
    const v = last != null ? cols[i][idx.get(last)] : null;
    it.querySelector('.val').textContent = v == null ? '' : `${fmtInt(v)}/min`;
  }
  coverageBadge('p-trends', body);
}

let rateChart = null;
function renderRate() {
  if (!rateChart) rateChart = makeChart($('chart-events'), [{ label: 'events/s', stroke: '#56b4e9', width: 2, fill: 'rgba(86,180,233,0.12)', points: { show: false } }], 'events / s', fmtCompact, X_SECONDS);
  rateChart.setData([st.rate.t, st.rate.v]);
  if (st.rate.t.length) {
    const last = st.rate.t[st.rate.t.length - 1];
    rateChart.setScale('x', { min: Math.min(last - 60, st.rate.t[0]), max: last });
  }
}

// --- latency ------------------------------------------------------------------------------
function renderLatency() {
  const body = st.stores.endpoint_stats;
  if (st.errors.endpoint_stats) return panelState('p-latency', 'error', `endpoint_stats: ${st.errors.endpoint_stats}`);
  if (!body || !body.windows.length) return panelState('p-latency', 'empty', 'No windows in endpoint_stats yet: is anything writing to the source topic?');
  panelState('p-latency', 'data');
  const now = st.streamTime ?? Math.max(...body.windows.map((w) => w.start + MIN));
  // One minute for the whole table: the current one once every endpoint has
  // enough requests in it for its percentiles to mean something, else the one before.
  const curStart = Math.floor(now / MIN) * MIN;
  const cur = body.windows.filter((w) => w.start === curStart);
  const keysAll = new Set(body.windows.map((w) => w.key));
  const useCur = cur.length === keysAll.size && cur.every((w) => w.count >= 100);
  const pick = useCur ? curStart : Math.max(...body.windows.filter((w) => w.start < curStart).map((w) => w.start), -Infinity);
  const rows = (pick === -Infinity ? cur : body.windows.filter((w) => w.start === pick)).sort((a, b) => (a.key < b.key ? -1 : 1));
  const maxP99 = Math.max(1, ...rows.map((r) => r.p99 || 0));
  const tb = $('latency-table').querySelector('tbody');
  tb.textContent = '';
  let worst = null;
  for (const r of rows) {
    const tr = el('tr');
    const elapsed = Math.min(MIN, Math.max(1000, now - r.start));
    tr.append(el('td', 'l', r.key), el('td', null, fmtInt((r.count * MIN) / elapsed)), el('td', null, fmtMs(r.p50)), el('td', null, fmtMs(r.p95)), el('td', null, fmtMs(r.p99)));
    const bars = el('td', 'bars');
    const lb = el('div', 'latbar');
    for (const [q, cls] of [['p99', 'b99'], ['p95', 'b95'], ['p50', 'b50']]) {
      const s = el('span', cls);
      s.style.width = `${(100 * (r[q] || 0)) / maxP99}%`;
      lb.append(s);
    }
    bars.append(lb);
    const er = r.error_rate;
    const cls = er == null ? '' : er >= 0.05 ? 'bad' : er >= 0.01 ? 'warn' : '';
    const rate = el('span', `rate ${cls}`);
    if (cls) rate.append(el('span', 'ic', cls === 'bad' ? '▲' : '△'));
    rate.append(el('span', null, fmtPct(er)));
    const td = el('td');
    td.append(rate);
    tr.append(bars, td);
    tb.append(tr);
    if (r.p99 != null && (!worst || r.p99 > worst.p99)) worst = r;
  }
  const current = useCur || pick === -Infinity;
  $('latency-range').innerHTML = '';
  $('latency-range').append(`P50 · P95 · P99 · 5xx rate · ${current ? 'current minute' : 'latest minute'} · `, el('code', null, 'endpoint_stats'));
  const k = $('kpi-p99');
  k.querySelector('.v').textContent = worst ? fmtMs(worst.p99) : '—';
  $('kpi-p99-sub').textContent = worst ? worst.key : 'current minute';
  coverageBadge('p-latency', body);
}

// --- status codes -------------------------------------------------------------------------
function renderStatus() {
  const body = st.stores.status_codes;
  if (st.errors.status_codes) return panelState('p-status', 'error', `status_codes: ${st.errors.status_codes}`);
  if (!body || !body.windows.length) return panelState('p-status', 'empty', 'No windows in status_codes yet: is anything writing to the source topic?');
  const now = st.streamTime ?? Math.max(...body.windows.map((w) => w.start));
  // The current hopping window: of those holding `now`, the one ending first
  // (as GET /api/metrics/errors picks it).
  const holding = body.windows.filter((w) => w.start <= now && now < w.end);
  const pick = holding.length ? Math.min(...holding.map((w) => w.start)) : Math.max(...body.windows.map((w) => w.start));
  const ws = body.windows.filter((w) => w.start === pick).sort((a, b) => (a.key < b.key ? -1 : 1));
  const total = ws.reduce((s, w) => s + w.count, 0);
  if (!total) return panelState('p-status', 'empty', 'The current 5-minute window has no responses yet.');
  panelState('p-status', 'data');
  const end = ws[0].end;
  $('status-range').innerHTML = '';
  $('status-range').append(`5-min hopping window ${fmtHM(pick)}–${fmtHM(end)} · `, el('code', null, 'status_codes'));
  const byClass = { 2: 0, 3: 0, 4: 0, 5: 0 };
  for (const w of ws) byClass[String(w.key)[0]] = (byClass[String(w.key)[0]] || 0) + w.count;
  const cb = $('status-classes');
  cb.textContent = '';
  for (const c of ['2', '3', '4', '5']) {
    if (!byClass[c]) continue;
    const d = el('div', null, byClass[c] / total > 0.06 ? `${c}xx` : '');
    d.style.flex = String(byClass[c]);
    d.style.background = STATUS_COLOURS[c];
    d.title = `${c}xx: ${fmtInt(byClass[c])} (${fmtPct(byClass[c] / total)})`;
    cb.append(d);
  }
  const rows = $('status-rows');
  rows.textContent = '';
  const failed = (byClass[4] || 0) + (byClass[5] || 0);
  const sum = el('div', 'status-sum');
  sum.innerHTML = '';
  for (const [k, v] of [['responses', fmtInt(total)], ['4xx', fmtPct((byClass[4] || 0) / total)], ['5xx', fmtPct((byClass[5] || 0) / total)]]) {
    const s = el('span', null, `${k} `);
    s.append(el('b', null, v));
    sum.append(s);
  }
  rows.append(sum);
  const max = Math.max(...ws.map((w) => w.count));
  for (const w of ws) {
    const r = el('div', 'row');
    const code = String(w.key);
    const lab = el('span', 'lab', code);
    const tr = el('div', 'track');
    const f = el('div', 'fill');
    f.style.width = `${(100 * w.count) / max}%`;
    f.style.background = STATUS_COLOURS[code[0]] || '#bbbbbb';
    tr.append(f);
    r.append(lab, tr, el('span', 'n', fmtInt(w.count)), el('span', 'p', fmtPct(w.count / total)));
    rows.append(r);
  }
  rows.dataset.failed = failed;
  coverageBadge('p-status', body);
}

// --- regions ------------------------------------------------------------------------------
function renderRegions() {
  const body = st.stores.region_stats;
  if (st.errors.region_stats) return panelState('p-regions', 'error', `region_stats: ${st.errors.region_stats}`);
  if (!body || !body.windows.length) return panelState('p-regions', 'empty', 'No windows in region_stats yet: is anything writing to the source topic?');
  const now = st.streamTime ?? Math.max(...body.windows.map((w) => w.start + MIN));
  const cur = Math.floor(now / MIN) * MIN;
  const by = new Map();
  for (const w of body.windows) {
    if (w.start < cur - 4 * MIN || w.start > cur) continue; // the current minute and the 4 before
    const r = by.get(w.key) || { key: w.key, count: 0, errors: 0, lat: 0 };
    r.count += w.count;
    r.errors += w.errors;
    r.lat += (w.mean_latency_ms || 0) * w.count;
    by.set(w.key, r);
  }
  const rows = [...by.values()].sort((a, b) => b.count - a.count);
  const total = rows.reduce((s, r) => s + r.count, 0);
  if (!total) return panelState('p-regions', 'empty', 'No requests in the last 5 minutes.');
  panelState('p-regions', 'data');
  const host = $('region-rows');
  host.textContent = '';
  const head = el('div', 'row regions head');
  for (const h of ['region', 'share', '', 'req', '5xx', 'mean']) head.append(el('span', h === 'req' || h === '5xx' || h === 'mean' ? 'n' : 'lab', h));
  host.append(head);
  const max = rows[0].count;
  rows.forEach((r, i) => {
    const row = el('div', 'row regions');
    const tr = el('div', 'track');
    const f = el('div', 'fill');
    f.style.width = `${(100 * r.count) / max}%`;
    f.style.background = PALETTE[i % 8];
    tr.append(f);
    const er = r.errors / r.count;
    const ercls = er >= 0.05 ? 'rate bad' : er >= 0.01 ? 'rate warn' : 'rate';
    const ers = el('span', `n ${ercls}`, fmtPct(er));
    row.append(el('span', 'lab', r.key), tr, el('span', 'p', fmtPct(r.count / total)), el('span', 'n', fmtCompact(r.count)), ers, el('span', 'n', fmtMs(r.lat / r.count)));
    host.append(row);
  });
  coverageBadge('p-regions', body);
  // KPIs over the same 5 minutes
  const errs = rows.reduce((s, r) => s + r.errors, 0);
  $('kpi-requests').querySelector('.v').textContent = fmtCompact(total);
  const ke = $('kpi-errors');
  ke.querySelector('.v').textContent = fmtPct(errs / total);
  ke.classList.toggle('warn', errs / total >= 0.01 && errs / total < 0.05);
  ke.classList.toggle('bad', errs / total >= 0.05);
}

// --- engine -------------------------------------------------------------------------------
function onHealth(h) {
  const nowS = Date.now() / 1000;
  st.health = h;
  const times = h.partitions.map((p) => p.stream_time).filter((t) => t != null);
  if (times.length) st.streamTime = Math.max(...times);
  // Every record taken from the input, dead-lettered ones included.
  const processed = h.totals.consumed;
  if (st.lastProcessed) {
    const dt = nowS - st.lastProcessed.t;
    const dn = processed - st.lastProcessed.n;
    // A rebalance restarts the per-task counters: skip that sample.
    if (dt > 0.2 && dn >= 0) {
      st.rate.t.push(nowS);
      st.rate.v.push(dn / dt);
    }
  }
  st.lastProcessed = { t: nowS, n: processed };
  while (st.rate.t.length && st.rate.t[0] < nowS - 300) {
    st.rate.t.shift();
    st.rate.v.shift();
  }
  renderEngine();
}

function fact(k, v, title) {
  const f = el('div', 'fact');
  f.append(el('span', 'k', k), el('span', 'v', v));
  if (title) f.title = title;
  return f;
}
function renderEngine() {
  const h = st.health;
  if (st.errors.health) return panelState('p-engine', 'error', `health: ${st.errors.health}`);
  if (!h) return panelState('p-engine', 'empty', 'Waiting for the engine’s health…');
  panelState('p-engine', 'data');
  $('app-name').textContent = `${h.application_id} · ${h.source_topic}`;
  renderRate();
  const lastRate = st.rate.v.length ? st.rate.v[st.rate.v.length - 1] : null;
  $('kpi-events').querySelector('.v').textContent = lastRate == null ? '—' : fmtCompact(lastRate);
  // lag per partition (every source partition; those owned elsewhere are grey)
  const byP = new Map(h.partitions.map((p) => [p.partition, p]));
  const host = $('lag-bars');
  host.textContent = '';
  const lags = h.partitions.map((p) => p.lag ?? 0);
  const maxLag = Math.max(1, ...lags);
  let totalLag = 0;
  for (let p = 0; p < h.source_partitions; p++) {
    const part = byP.get(p);
    const c = el('div', 'c');
    const lag = part ? part.lag : null;
    if (lag != null) totalLag += lag;
    const bar = el('div', `bar${!part ? ' none' : part.state === 'restoring' ? ' restoring' : ''}`);
    bar.style.height = part && lag != null ? `${Math.max(1, (85 * lag) / maxLag)}%` : '2px';
    c.title = !part ? `partition ${p}: owned by another instance` : `partition ${p}: lag ${fmtInt(lag)} records, ${part.state}, thread ${part.thread}`;
    c.append(el('span', 'lv', !part ? '' : lag == null ? '?' : fmtCompact(lag)), bar, el('span', 'pl', String(p)));
    host.append(c);
  }
  const kl = $('kpi-lag');
  kl.querySelector('.v').textContent = fmtCompact(totalLag);
  kl.classList.toggle('warn', totalLag >= 1000 && totalLag < 100000);
  kl.classList.toggle('bad', totalLag >= 100000);
  // facts
  const t = h.totals;
  const owned = h.partitions.length;
  const facts = $('engine-facts');
  facts.textContent = '';
  const others = h.source_partitions - owned;
  facts.append(
    fact('Commit latency P50 / P99', `${fmtMs(t.commit_ms.p50)} / ${fmtMs(t.commit_ms.p99)}`, `max ${fmtMs(t.commit_ms.max)} over ${fmtInt(t.commits)} commits`),
    fact('Commits', fmtInt(t.commits)),
    fact('Guarantee', h.processing_guarantee.replace(/_/g, ' ')),
    fact('Instances', others > 0 ? `this + others (${others} partitions)` : '1 (owns all)', others > 0 ? `${others} of ${h.source_partitions} partitions are owned by other instances of ${h.application_id}` : `this instance owns all ${h.source_partitions} partitions`),
    fact('Stream threads', `${h.threads}`),
    fact('Late · dead-lettered', `${fmtCompact(t.late)} · ${fmtCompact(t.dead_lettered)}`, 'late: updates dropped because their window had closed; dead-lettered: bad records sent to the dead-letter topic'),
  );
  $('kpi-commit').querySelector('.v').textContent = fmtMs(t.commit_ms.p99);
  $('kpi-commit-sub').textContent = `P50 ${fmtMs(t.commit_ms.p50)} · ${fmtCompact(t.commits)} commits`;
  // tasks
  const running = h.partitions.filter((p) => p.state === 'running');
  const restoring = h.partitions.filter((p) => p.state === 'restoring');
  const failed = h.partitions.filter((p) => p.state === 'error');
  const tasks = $('tasks');
  tasks.textContent = '';
  const sum = el('div', 'summary');
  const pr = el('span', 'pill');
  const ir = el('i');
  ir.style.background = '#009e73';
  pr.append(ir, el('b', null, String(running.length)), ' running');
  const ps = el('span', 'pill');
  const is = el('i');
  is.style.background = '#e69f00';
  ps.append(is, el('b', null, String(restoring.length)), ' restoring');
  sum.append(pr, ps);
  if (failed.length) {
    const pf = el('span', 'pill');
    const ie = el('i');
    ie.style.background = '#d55e00';
    pf.append(ie, el('b', null, String(failed.length)), ' in error');
    pf.title = failed.map((p) => `partition ${p.partition}: ${p.error ? p.error.reason : 'error'}`).join('\n');
    sum.append(pf);
  }
  sum.append(el('span', 'muted', h.status === 'running' ? `tasks, one per partition` : `status: ${h.status.replace(/_/g, ' ')}`));
  tasks.append(sum);
  for (const p of restoring) {
    const g = el('div', 'prog');
    const tr = el('div', 'track');
    const f = el('div', 'fill');
    f.style.width = `${p.restore ? p.restore.percent : 0}%`;
    tr.append(f);
    g.append(el('span', null, `partition ${p.partition}`), tr, el('span', 'num', p.restore ? `${nf0.format(p.restore.percent)} %` : '…'));
    g.title = p.restore ? `${fmtInt(p.restore.records)} of ${fmtInt(p.restore.total)} changelog records` : '';
    tasks.append(g);
  }
  const tg = el('div', 'taskgrid');
  for (const p of [...h.partitions].sort((a, b) => a.partition - b.partition)) {
    const s = el('span', p.state === 'running' ? '' : p.state, `p${p.partition}·t${p.thread}`);
    s.title = `partition ${p.partition} on stream thread ${p.thread}: ${p.state}${p.error ? ` (${p.error.reason}, after ${p.error.failed_commits} failed commits)` : ''}, ${fmtInt(p.processed)} records processed`;
    tg.append(s);
  }
  tasks.append(tg);
  $('stream-time').textContent = fmtTime(st.streamTime);
}

// --- topology -----------------------------------------------------------------------------
async function loadTopology() {
  try {
    const r = await fetch('/api/topology', { cache: 'no-store' });
    if (!r.ok) throw new Error(`GET /api/topology answered ${r.status}`);
    const topo = await r.json();
    if (!topo.graph || !topo.graph.nodes.length) return panelState('p-topology', 'empty', 'The topology has no nodes.');
    panelState('p-topology', 'data');
    renderTopology($('topology'), topo);
    $('topo-hint').innerHTML = '';
    $('topo-hint').append(`${topo.name} · sources → stores → views / sinks · `, el('code', null, '/api/topology'));
  } catch (e) {
    if ($('p-topology').dataset.state !== 'data') panelState('p-topology', 'error', `Could not load the topology: ${e.message}`);
  }
}

// --- subscriptions ------------------------------------------------------------------------
const STORES = {
  requests_per_endpoint: { back: 31 * MIN, render: renderTrends },
  endpoint_stats: { back: 2 * MIN, render: renderLatency },
  status_codes: { back: 6 * MIN, render: renderStatus },
  region_stats: { back: 5 * MIN, render: renderRegions },
};
let conn = null;
const renderAll = () => Object.values(STORES).forEach((s) => s.render());

function subscribeStores() {
  for (const s of st.subs) conn.unsubscribe(s);
  st.subs = [];
  // Windows are in event time: ask relative to the stream time, not the viewer's clock.
  const ref = st.streamTime ?? Date.now();
  st.subscribedAt = Date.now();
  for (const [name, s] of Object.entries(STORES)) {
    const from = Math.floor((ref - s.back) / MIN) * MIN - 5 * MIN;
    st.subs.push(
      conn.subscribe(
        name,
        { from },
        (data) => {
          const old = st.stores[name];
          // Just after a restart or a rebalance the instance owns no partition
          // yet (or is restoring them): keep the last windows, marked partial,
          // rather than blanking the panel.
          if (!data.windows.length && data.complete === false && old && old.windows.length)
            data = { ...old, partitions: data.partitions, restoring: data.restoring, complete: false, held: true };
          st.stores[name] = data;
          delete st.errors[name];
          touched();
          s.render();
        },
        (msg) => {
          st.errors[name] = msg;
          s.render();
        },
      ),
    );
  }
}

function touched() {
  st.lastMessage = Date.now();
  $('updated').textContent = fmtTime(st.lastMessage);
}

function onConnState(state, c) {
  const b = $('conn');
  b.dataset.state = state;
  const secs = c.retryAt ? Math.max(0, Math.ceil((c.retryAt - Date.now()) / 1000)) : 0;
  $('conn-label').textContent = state === 'live' ? 'live' : state === 'offline' ? 'offline' : state === 'reconnecting' ? 'reconnecting' : 'connecting';
  b.title = state === 'offline' ? 'Offline — click to retry now' : 'WebSocket connection to this eddy instance';
  document.body.classList.toggle('stale', state !== 'live' && st.lastMessage != null);
  const banner = $('banner');
  if (state === 'live' || (state === 'connecting' && st.lastMessage == null && !c.attempt)) {
    banner.hidden = true;
  } else {
    banner.hidden = false;
    banner.classList.toggle('bad', state === 'offline');
    const asOf = st.lastMessage ? ` Showing data as of ${fmtTime(st.lastMessage)}.` : '';
    banner.textContent =
      (state === 'offline' ? 'Offline: cannot reach eddy at ' + location.host + '.' : state === 'reconnecting' ? 'Connection to eddy lost.' : 'Cannot reach eddy at ' + location.host + ' yet.') +
      asOf +
      (c.ws ? ' Connecting…' : ` Retrying in ${secs} s.`);
  }
}

let wasLive = false;
function start() {
  $('tz').textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local';
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  conn = new Conn(`${proto}//${location.host}/ws`, {
    onState: (s, c) => {
      onConnState(s, c);
      if (s === 'live' && !wasLive) loadTopology(); // once per connection
      wasLive = s === 'live';
    },
  });
  let storesSubscribed = false;
  conn.subscribe(
    'health:instance',
    {},
    (h) => {
      delete st.errors.health;
      touched();
      onHealth(h);
      // The store subscriptions start from the stream time, so wait for it once;
      // then slide their `from` every 5 minutes (and redraw the windows meanwhile).
      if (!storesSubscribed || Date.now() - st.subscribedAt > 5 * MIN) {
        storesSubscribed = true;
        subscribeStores();
      } else renderAll();
    },
    (msg) => {
      st.errors.health = msg;
      renderEngine();
      if (!storesSubscribed) {
        storesSubscribed = true;
        subscribeStores();
      }
    },
  );
  $('conn').addEventListener('click', () => conn.retryNow());
}
start();
