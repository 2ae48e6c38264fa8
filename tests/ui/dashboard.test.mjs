// dashboard.test.mjs EDDY_BIN [SCREENSHOT] — the browser test of the live
// dashboard (docs/dashboard.md), against a real eddy with live input: starts
// `eddy broker`, `eddy gen` and `eddy run` (as scripts/demo does) on free ports
// in a temp dir of its own, opens the page in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core from ui/node_modules) and checks
//   1. every panel renders data (not its empty or error state), the indicator is live;
//   2. the numbers change over time (updates arrive over the WebSocket);
//   3. SIGTERM to `eddy run` turns the indicator to "reconnecting", and a restart
//      on the same port with the same state dir brings it back to "live" with data;
// and saves a screenshot (default docs/dashboard.png). Exit 0 when all pass.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const eddy = process.argv[2] || process.env.EDDY_BIN;
const shot = resolve(process.argv[3] || join(root, 'docs/dashboard.png'));
const dist = process.env.EDDY_UI_DIST || join(dirname(eddy || ''), 'ui/dist');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const topology = join(root, 'topology/examples/monitoring.json');
const t0 = Date.now();
const log = (m) => console.log(`[ui ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function die(msg) {
  console.error(`ui test: FAILED: ${msg}`);
  throw new Error(msg);
}
if (!eddy || !existsSync(eddy)) die(`usage: dashboard.test.mjs EDDY_BIN (got '${eddy}')`);
if (!existsSync(join(dist, 'index.html'))) die(`no built dashboard at ${dist} (cmake --build builds it with npm)`);
if (!existsSync(chromiumPath)) die(`${chromiumPath} is missing: scripts/install-deps installs Debian's chromium`);
let chromium;
try {
  ({ chromium } = createRequire(join(root, 'ui/package.json'))('playwright-core'));
} catch (e) {
  die(`playwright-core is not installed in ui/node_modules (npm ci in ui/): ${e.message}`);
}

const dir = mkdtempSync(join(tmpdir(), 'eddy-ui-test-'));
const procs = new Set();
function start(name, args) {
  const err = openSync(join(dir, `${name}.log`), 'a');
  const p = spawn(eddy, args, { stdio: ['ignore', 'ignore', err] });
  p.name = name;
  p.exited = new Promise((r) => p.on('exit', (code, sig) => r({ code, sig })));
  procs.add(p);
  p.exited.then(() => procs.delete(p));
  return p;
}
function tail(name) {
  try {
    return readFileSync(join(dir, `${name}.log`), 'utf8').split('\n').slice(-8).join('\n');
  } catch {
    return '';
  }
}
async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}
async function until(what, fn, ms) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      if ((last = await fn())) return last;
    } catch (e) {
      last = e.message;
    }
    await sleep(250);
  }
  die(`${what} within ${ms / 1000} s (last: ${JSON.stringify(last)})`);
}

let browser;
async function main() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  start('broker', ['broker', '--topology', topology, '--application-id', 'eddy-ui', '--bootstrap-file', join(dir, 'bootstrap')]);
  const bootstrap = await until('the broker wrote its bootstrap file', () => existsSync(join(dir, 'bootstrap')) && readFileSync(join(dir, 'bootstrap'), 'utf8').trim().split('=').slice(1).join('='), 15000);
  // Half an hour of history first (event time from 30 minutes ago up to now, at
  // the live rate), so that the trend panels show what an operator sees after
  // the dashboard has been open a while; then the live generator.
  const rate = Number(process.env.EDDY_UI_RATE || '500');
  const historyS = Number(process.env.EDDY_UI_HISTORY_S || '1800');
  if (historyS > 0) {
    const history = start('history', ['gen', '--bootstrap', bootstrap, '--topic', 'log-events', '--rate', '0', '--count', String(rate * historyS), '--start-ts', String(Date.now() - historyS * 1000), '--span', String(historyS), '-q']);
    const { code } = await history.exited;
    if (code !== 0) die(`the history generator failed: ${tail('history')}`);
  }
  start('gen', ['gen', '--bootstrap', bootstrap, '--topic', 'log-events', '--rate', String(rate), '-q']);
  const runArgs = ['run', '--bootstrap', bootstrap, '--topology', topology, '--state-dir', join(dir, 'state'), '--http', `127.0.0.1:${port}`, '--threads', '1', '--application-id', 'eddy-ui', '-X', `http.static.dir=${dist}`];
  let run = start('run', runArgs);
  await until(
    'eddy run committed records',
    async () => {
      if (run.exitCode !== null) die(`eddy run exited: ${tail('run')}`);
      const h = await (await fetch(`${base}/api/health`)).json();
      return h.totals.committed_records > 0;
    },
    30000,
  );
  log(`eddy is up at ${base}`);
  const page0 = await fetch(`${base}/`);
  if (page0.status !== 200 || !(await page0.text()).includes('app.js')) die('GET / does not serve the dashboard');

  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // Chromium logs each refused reconnect attempt; that is the server being away, not a page error.
  page.on('console', (m) => m.type() === 'error' && !/WebSocket connection to .* failed/.test(m.text()) && pageErrors.push(m.text()));
  await page.goto(`${base}/`);

  // 1. Every panel shows data.
  const panels = ['p-trends', 'p-latency', 'p-status', 'p-regions', 'p-engine', 'p-topology'];
  await until('the indicator showed live', () => page.getAttribute('#conn', 'data-state').then((s) => s === 'live'), 20000);
  for (const id of panels)
    await until(`panel ${id} showed data`, async () => {
      const s = await page.getAttribute(`#${id}`, 'data-state');
      if (s === 'error') die(`panel ${id} is in its error state: ${await page.textContent(`#${id} .empty`)}`);
      return s === 'data';
    }, 30000);
  const counts = await page.evaluate(() => ({
    trendSeries: document.querySelectorAll('#legend-trends .it').length,
    latencyRows: document.querySelectorAll('#latency-table tbody tr').length,
    statusRows: document.querySelectorAll('#status-rows .row').length,
    regionRows: document.querySelectorAll('#region-rows .row:not(.head)').length,
    lagBars: document.querySelectorAll('#lag-bars .c').length,
    topoNodes: document.querySelectorAll('#topology .node').length,
    trendCanvas: !!document.querySelector('#chart-trends canvas'),
    rateCanvas: !!document.querySelector('#chart-events canvas'),
  }));
  log(`panels: ${JSON.stringify(counts)}`);
  for (const [k, v] of Object.entries(counts)) if (!v) die(`${k} is empty`);
  if (counts.lagBars !== 12) die(`expected 12 lag bars (one per partition), got ${counts.lagBars}`);

  // 2. Numbers change over time.
  const sample = () =>
    page.evaluate(() => ({
      events: document.querySelector('[data-testid=kpi-events]').textContent,
      requests: document.querySelector('[data-testid=kpi-requests]').textContent,
      responses: document.querySelector('#status-rows .status-sum b')?.textContent,
      lat: document.querySelector('#latency-table tbody')?.textContent,
      tasks: document.querySelector('#tasks')?.textContent,
      updated: document.getElementById('updated').textContent,
    }));
  const before = await sample();
  await until(
    'the numbers changed',
    async () => {
      const now = await sample();
      const changed = ['requests', 'responses', 'lat', 'updated'].filter((k) => now[k] !== before[k]);
      return changed.length >= 3 && now.events !== '—' && changed;
    },
    20000,
  );
  log('numbers change over time');
  await sleep(12000); // some seconds of history in the charts, for the screenshot
  await page.screenshot({ path: shot, fullPage: true });
  log(`screenshot: ${shot}`);

  // 3. The server goes away and comes back.
  run.kill('SIGTERM');
  const ex = await Promise.race([run.exited, sleep(20000).then(() => null)]);
  if (!ex) die('eddy run did not stop within 20 s of SIGTERM');
  log(`eddy run stopped (${ex.sig || ex.code})`);
  await until('the indicator showed reconnecting', () => page.getAttribute('#conn', 'data-state').then((s) => s === 'reconnecting'), 15000);
  const banner = await page.textContent('#banner');
  if (!/lost|Retrying|Connecting/.test(banner)) die(`no banner while reconnecting (got '${banner}')`);
  log('indicator: reconnecting');
  run = start('run', runArgs);
  await until('the indicator came back to live', () => page.getAttribute('#conn', 'data-state').then((s) => s === 'live'), 45000);
  const back = await sample();
  await until('data flowed again after the restart', async () => (await sample()).updated !== back.updated, 20000);
  for (const id of panels) if ((await page.getAttribute(`#${id}`, 'data-state')) !== 'data') die(`panel ${id} lost its data after the restart`);
  // ... and the restarted instance's own windows arrive (no "waiting for partitions").
  await until('the stores answered completely again', () => page.evaluate(() => [...document.querySelectorAll('.panel .badge')].every((b) => b.hidden)), 30000);
  if (!(await page.isHidden('#banner'))) die('the banner is still shown after reconnecting');
  log('indicator: live again, data flowing');
  if (pageErrors.length) die(`the page reported errors: ${pageErrors.join(' | ')}`);
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  if (!String(e.message).startsWith('usage')) console.error(e.stack || e);
  for (const n of ['broker', 'gen', 'run']) console.error(`--- ${n}.log\n${tail(n)}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  // Reverse order, one at a time: the processor commits while the broker is there.
  for (const p of [...procs].reverse()) {
    p.kill('SIGTERM');
    if (!(await Promise.race([p.exited, sleep(8000).then(() => null)]))) p.kill('SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
}
console.log(failed ? 'ui test: 0 passed, 1 failed' : `ui test: 1 passed, 0 failed (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
process.exit(failed ? 1 : 0);
