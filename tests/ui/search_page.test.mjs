// End-to-end test of the search page in a real headless Chromium, driven by playwright-core.
// scripts/run-ui-test.sh starts the server (tiny random model, an API key), creates the collections and
// ingests the corpus, then runs this with:
//   QUIVER_URL, QUIVER_API_KEY, QUIVER_PID  the server
//   CHROMIUM                                 the browser binary
//   UI_ARTEFACTS                             where screenshots go
//   IMAGE_QUERY, IMAGE_DROP                  PNG files that were ingested
// The tiny model is random, so every expected top hit is what the REST API answers for the same query.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (run scripts/run-ui-test.sh)`);
  return value;
};
const URL = env('QUIVER_URL');
const KEY = env('QUIVER_API_KEY');
const PID = Number(env('QUIVER_PID'));
const ARTEFACTS = env('UI_ARTEFACTS');
const IMAGE_QUERY = env('IMAGE_QUERY');
const IMAGE_DROP = env('IMAGE_DROP');
mkdirSync(ARTEFACTS, { recursive: true });

const TEXT_QUERY = 'Which city is the capital of Germany?';

/** A REST call with the admin key; the raw text is kept so 63-bit ids are not rounded. */
async function rest(method, path, body) {
  const response = await fetch(URL + path, {
    method,
    headers: { 'api-key': KEY, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `${method} ${path}: ${text}`);
  return text;
}

/** The first hit's id as written in the response (an integer of any size, or a UUID). */
function topId(text) {
  const m = text.match(/"points"\s*:\s*\[\s*\{\s*"id"\s*:\s*("[^"]*"|-?\d+)/);
  assert.ok(m, `no hits in ${text}`);
  return m[1].replace(/"/g, '');
}

/** The funnel the page builds by default for `docs`: small → full → colbert (MaxSim). */
function funnel(doc, k, first, second) {
  return {
    prefetch: { prefetch: { query: doc, using: 'small', limit: first }, query: doc, using: 'full', limit: second },
    query: doc, using: 'colbert', limit: k, with_payload: true,
  };
}

const profile = mkdtempSync(join(tmpdir(), 'quiver-ui-chromium-'));
// launchPersistentContext takes the fresh profile directory Chromium's --user-data-dir would.
const context = await chromium.launchPersistentContext(profile, {
  executablePath: env('CHROMIUM'),
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
});
const page = context.pages()[0] ?? await context.newPage();
const pageErrors = [];
page.on('pageerror', (err) => pageErrors.push(err.message));
page.on('console', (msg) => {
  if (msg.type() === 'error' && !/status of (401|429|422|400)/.test(msg.text())) {
    // Failed fetches the test provokes log here too; anything else is a page bug.
    if (!/Failed to load resource|ERR_CONNECTION_REFUSED/.test(msg.text())) pageErrors.push(msg.text());
  }
});

const shot = (name) => page.screenshot({ path: join(ARTEFACTS, `${name}.png`), fullPage: true });
const message = () => page.locator('#message');

/** Clicks Search and waits for the page to finish that search (success or error). */
async function runSearch() {
  const before = await page.locator('#results').getAttribute('data-generation');
  await page.locator('#search-button').click();
  await page.waitForFunction(
    (b) => document.getElementById('results').dataset.generation !== b, before, { timeout: 60_000 });
}

async function expectMessage(pattern) {
  await message().waitFor({ state: 'visible', timeout: 10_000 });
  const text = await message().textContent();
  assert.match(text, pattern);
  return text;
}

let step = 'start';
try {
  step = 'the root redirects a browser to the page';
  const response = await page.goto(`${URL}/`);
  assert.equal(response.status(), 200);
  assert.ok(page.url().endsWith('/ui/'), page.url());

  step = 'a server with a key: the page asks for it';
  await page.locator('#key-form').waitFor({ state: 'visible' });
  assert.match(await page.locator('#key-why').textContent(), /needs an API key/);
  assert.ok(await page.locator('#view-search').isHidden());
  await page.getByLabel('API key', { exact: true }).fill('wrong-key');
  await page.getByRole('button', { name: 'Use key' }).click();
  await page.getByText('The API key was not accepted').waitFor();
  await shot('api-key');
  await page.getByLabel('API key', { exact: true }).fill(KEY);
  await page.keyboard.press('Enter');
  await page.waitForSelector('body[data-loaded="true"]');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('quiver-api-key')), KEY);
  assert.ok(await page.locator('#key-form').isHidden());

  step = 'collections view';
  await page.getByRole('link', { name: 'Collections' }).click();
  const docsRow = page.locator('tr[data-collection="docs"]');
  await docsRow.waitFor();
  const info = JSON.parse(await rest('GET', '/collections/docs')).result;
  const cells = await docsRow.locator('td').allTextContents();
  assert.equal(cells[3], String(info.points_count), `points: ${cells}`);
  assert.match(cells[1], /colbert: 16; full: 64; small: 16/);
  assert.match(cells[2], /on \(colbert\)/);
  const emptyCells = await page.locator('tr[data-collection="empty"] td').allTextContents();
  assert.equal(emptyCells[3], '0');
  await shot('collections');

  step = 'text search';
  await page.getByRole('link', { name: 'Search' }).click();
  await page.getByLabel('Collection', { exact: true }).selectOption('docs');
  assert.equal(await page.getByLabel('Search vector', { exact: true }).inputValue(), 'colbert');
  assert.equal(await page.getByLabel('First stage vector', { exact: true }).inputValue(), 'small');
  assert.equal(await page.getByLabel('Second stage vector', { exact: true }).inputValue(), 'full');
  await page.getByLabel('Results (k)', { exact: true }).fill('3');
  await page.getByLabel('First stage candidates', { exact: true }).fill('6');
  await page.getByLabel('Second stage candidates', { exact: true }).fill('4');
  await page.getByLabel('Query text', { exact: true }).fill(TEXT_QUERY);
  await runSearch();
  const textDoc = { text: TEXT_QUERY, model: 'tiny', options: { task: 'retrieval' } };
  const expectedText = topId(await rest('POST', '/collections/docs/points/query', funnel(textDoc, 3, 6, 4)));
  assert.equal(await page.locator('#results li').count(), 3);
  assert.equal(await page.locator('#results li .id').first().textContent(), expectedText);
  assert.ok(!(await message().isVisible()), await message().textContent());
  const timings = await page.locator('#timings dt').allTextContents();
  // Nine points in the appendable segment, which has no graph: the first stage is a scan.
  assert.deepEqual(timings, ['embedding', 'exact scan (small)', 'rescore (full)', 'MaxSim (colbert)', 'total']);
  assert.match(await page.locator('#search-status').textContent(), /3 results/);
  await shot('search-text');

  step = 'image search (file picker)';
  await page.locator('#query-image').setInputFiles(IMAGE_QUERY);
  await page.locator('#image-preview').waitFor({ state: 'visible' });
  assert.ok(await page.getByLabel('Query text', { exact: true }).isDisabled());
  await runSearch();
  const imageDoc = {
    image: readFileSync(IMAGE_QUERY).toString('base64'), model: 'tiny', options: { task: 'retrieval' },
  };
  const expectedImage = topId(await rest('POST', '/collections/docs/points/query', funnel(imageDoc, 3, 6, 4)));
  assert.equal(await page.locator('#results li .id').first().textContent(), expectedImage);
  // An ingested image's payload is its path: the page names the file.
  const hitPaths = await page.locator('#results .image-path').allTextContents();
  assert.ok(hitPaths.some((t) => t.endsWith(basename(IMAGE_QUERY))), `${hitPaths}`);
  // The server runs with --image-dir on the corpus: every image hit shows its file.
  const thumbs = page.locator('#results img.thumbnail');
  await page.waitForFunction(
    (n) => document.querySelectorAll('#results img.thumbnail').length === n, hitPaths.length);
  assert.ok(await thumbs.first().evaluate((img) => img.complete && img.naturalWidth > 0), 'thumbnail decoded');
  await shot('search-image');

  step = 'image by drop and by paste';
  const bytes = [...readFileSync(IMAGE_DROP)];
  for (const how of ['drop', 'paste']) {
    await page.getByRole('button', { name: 'Remove image' }).click();
    assert.ok(await page.locator('#image-preview').isHidden());
    await page.evaluate(({ bytes: b, how: h, name }) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(b)], name, { type: 'image/png' }));
      const event = h === 'drop'
        ? new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true })
        : new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true });
      (h === 'drop' ? document.getElementById('drop-zone') : document.body).dispatchEvent(event);
    }, { bytes, how, name: basename(IMAGE_DROP) });
    await page.locator('#image-preview').waitFor({ state: 'visible' });
    assert.match(await page.locator('#image-preview-name').textContent(), new RegExp(basename(IMAGE_DROP)));
  }
  await runSearch();
  const dropDoc = { image: readFileSync(IMAGE_DROP).toString('base64'), model: 'tiny', options: { task: 'retrieval' } };
  const expectedDrop = topId(await rest('POST', '/collections/docs/points/query', funnel(dropDoc, 3, 6, 4)));
  assert.equal(await page.locator('#results li .id').first().textContent(), expectedDrop);
  await page.getByRole('button', { name: 'Remove image' }).click();

  step = 'a validation error from the server';
  await page.getByLabel('Results (k)', { exact: true }).fill('20000');
  await runSearch();
  await expectMessage(/The server refused the request: .*limit/i);
  await page.getByLabel('Results (k)', { exact: true }).fill('3');

  step = 'an empty collection';
  await page.getByLabel('Collection', { exact: true }).selectOption('empty');
  await runSearch();
  await expectMessage(/"empty" is empty/);
  assert.equal(await page.locator('#results li').count(), 0);
  await shot('empty-collection');
  await page.getByLabel('Collection', { exact: true }).selectOption('docs');

  step = '429 (the route answers as the server does when its embedding queue is full)';
  // A real 429 needs the model's queue to be full at the instant of the click, which a test cannot
  // time; the server's own 429 (status, Retry-After, body) is checked by the Rust tests.
  const isQuery = (url) => url.pathname.endsWith('/points/query');
  const busy = (route) => route.fulfill({
    status: 429,
    headers: { 'retry-after': '7', 'content-type': 'application/json' },
    body: JSON.stringify({ status: { error: 'the model queue is full' }, time: 0 }),
  });
  await page.route(isQuery, busy);
  await runSearch();
  await expectMessage(/busy .*Try again in 7 seconds/);
  await shot('busy-429');
  await page.unroute(isQuery, busy);

  step = 'phone width';
  await page.setViewportSize({ width: 390, height: 844 });
  await runSearch();
  assert.equal(await page.locator('#results li .id').first().textContent(), expectedText);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= 390, `the page is ${overflow} px wide at 390`);
  await shot('phone-search');
  await page.getByRole('link', { name: 'Collections' }).click();
  await shot('phone-collections');
  await page.getByRole('link', { name: 'Search' }).click();
  await page.setViewportSize({ width: 1280, height: 900 });

  step = 'a collection bound to the model: plain queries, the server runs its funnel';
  // The page sends the plain form (no vector, no model) with the funnel depths, and shows the stages
  // the server ran; the top hit must be the REST API's for the same body.
  let sent;
  const spy = async (route) => {
    sent = route.request().postDataJSON();
    await route.continue();
  };
  await page.route(isQuery, spy);
  await page.getByRole('link', { name: 'Collections' }).click();
  await page.getByRole('button', { name: 'Refresh' }).click();
  const boundRow = page.locator('tr[data-collection="bound"]');
  await boundRow.locator('td', { hasText: 'tiny' }).waitFor();
  assert.match(await boundRow.textContent(), /dense: 64, HNSW on 16/);
  await page.getByRole('link', { name: 'Search' }).click();
  await page.getByLabel('Collection', { exact: true }).selectOption('bound');
  assert.ok(await page.getByLabel('Search vector', { exact: true }).isHidden());
  assert.ok(await page.getByLabel('Model', { exact: true }).isHidden());
  assert.equal(await page.getByLabel('Task', { exact: true }).inputValue(), 'retrieval');
  assert.ok(await page.getByLabel('Task', { exact: true }).isDisabled());
  await page.getByLabel('Results (k)', { exact: true }).fill('3');
  await page.getByLabel('HNSW candidates', { exact: true }).fill('6');
  await page.getByLabel('Rescored candidates', { exact: true }).fill('4');
  await page.getByLabel('Query text', { exact: true }).fill(TEXT_QUERY);
  await runSearch();
  const plain = { query: { text: TEXT_QUERY }, limit: 3, with_payload: true, funnel: { hnsw_limit: 6, rescore_limit: 4 } };
  assert.deepEqual(sent, plain);
  const expectedBound = topId(await rest('POST', '/collections/bound/points/query', plain));
  assert.equal(await page.locator('#results li .id').first().textContent(), expectedBound);
  assert.deepEqual(await page.locator('#timings dt').allTextContents(),
    ['embedding', 'exact scan (dense, 16 d)', 'rescore (dense)', 'MaxSim (colbert)', 'total']);
  await shot('bound-collection');
  await page.unroute(isQuery, spy);
  await page.reload();
  await page.waitForSelector('body[data-loaded="true"]');

  step = 'hybrid: a sparse vector adds the query\'s BM25, fused with the dense search by RRF';
  let hybridSent;
  const hybridSpy = async (route) => {
    hybridSent = route.request().postDataJSON();
    await route.continue();
  };
  await page.route(isQuery, hybridSpy);
  await page.getByLabel('Collection', { exact: true }).selectOption('hybrid');
  assert.equal(await page.getByLabel('Keyword vector (BM25)', { exact: true }).inputValue(), 'bm25');
  await page.getByLabel('Model', { exact: true }).selectOption('tiny');
  await page.getByLabel('Results (k)', { exact: true }).fill('3');
  await page.getByLabel('Query text', { exact: true }).fill('fox at night');
  await runSearch();
  const hybridBody = {
    prefetch: [
      { query: { text: 'fox at night', model: 'tiny', options: { task: 'retrieval' } }, using: 'dense', limit: 20 },
      { query: { text: 'fox at night', model: 'qdrant/bm25' }, using: 'bm25', limit: 20 },
    ],
    query: { fusion: 'rrf' }, limit: 3, with_payload: true,
  };
  assert.deepEqual(hybridSent, hybridBody);
  assert.equal(await page.locator('#results li .id').first().textContent(),
    topId(await rest('POST', '/collections/hybrid/points/query', hybridBody)));
  const hybridStages = await page.locator('#timings dt').allTextContents();
  assert.ok(hybridStages.includes('sparse (inverted index) (bm25)') && hybridStages.includes('fusion'),
    hybridStages.join(', '));
  await shot('hybrid');
  await page.getByLabel('Keyword vector (BM25)', { exact: true }).selectOption('');
  await runSearch();
  assert.deepEqual(hybridSent, { query: { text: 'fox at night', model: 'tiny', options: { task: 'retrieval' } },
    using: 'dense', limit: 3, with_payload: true });
  await page.unroute(isQuery, hybridSpy);

  step = 'one result per document: the chunks of a document grouped by doc_id';
  let grouped;
  const isGroups = (url) => url.pathname.endsWith('/points/query/groups');
  const groupSpy = async (route) => {
    grouped = route.request().postDataJSON();
    await route.continue();
  };
  await page.route(isGroups, groupSpy);
  await page.getByLabel('Collection', { exact: true }).selectOption('manuals');
  await page.getByLabel('Results (k)', { exact: true }).fill('10');
  await page.getByLabel('Query text', { exact: true }).fill('When should the oven be cleaned?');
  await runSearch();
  const chunks = await page.locator('#results li').count();
  assert.ok(chunks > 2, `manuals should hold more chunks than documents, got ${chunks}`);
  assert.equal(grouped, undefined, 'without the option the page sends a plain query');
  await page.getByLabel('One result per document', { exact: true }).check();
  await runSearch();
  const perDoc = { query: { text: 'When should the oven be cleaned?' }, limit: 10, with_payload: true,
    group_by: 'doc_id', group_size: 1 };
  assert.deepEqual(grouped, perDoc);
  assert.equal(await page.locator('#results li').count(), 2);
  assert.match(await page.locator('#search-status').textContent(), /^2 documents in/);
  const groups = JSON.parse(await rest('POST', '/collections/manuals/points/query/groups', perDoc)).result.groups;
  assert.deepEqual(await page.locator('#results li .id').allTextContents(),
    groups.map((g) => String(g.hits[0].id)));
  const sources = (await page.locator('#results li .source').allTextContents()).map((t) => t.split(',')[0]);
  assert.deepEqual(sources.sort(), ['garden.md', 'oven.md']);
  await shot('per-document');
  await page.getByLabel('One result per document', { exact: true }).uncheck();
  await page.unroute(isGroups, groupSpy);

  step = 'a 401 mid-session (the key was revoked) asks for the key again';
  await page.evaluate(() => sessionStorage.setItem('quiver-api-key', 'revoked'));
  await runSearch();
  assert.ok(await page.locator('#key-form').isVisible());
  assert.match(await page.locator('#key-why').textContent(), /not accepted/);
  await page.getByLabel('API key', { exact: true }).fill(KEY);
  await page.getByRole('button', { name: 'Use key' }).click();
  await page.locator('#key-form').waitFor({ state: 'hidden' });

  step = 'an unreachable server';
  process.kill(PID, 'SIGTERM');
  // Gone means exited (a zombie until the script reaps it), so no socket of it is left open.
  const exited = () => {
    try {
      return readFileSync(`/proc/${PID}/stat`, 'utf8').split(') ')[1].startsWith('Z');
    } catch {
      return true;
    }
  };
  for (let i = 0; !exited(); i += 1) {
    assert.ok(i < 300, 'the server did not stop within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  await runSearch();
  await expectMessage(/Cannot reach the Quiver server/);
  await shot('unreachable');

  assert.deepEqual(pageErrors, []);
  console.log(`ui test passed; screenshots in ${ARTEFACTS}`);
} catch (err) {
  await shot('failure').catch(() => {});
  console.error(`ui test failed at: ${step}`);
  throw err;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
