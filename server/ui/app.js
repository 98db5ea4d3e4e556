// Quiver's search page: plain JavaScript over the server's REST API (same origin, no libraries).
'use strict';

const KEY_STORE = 'quiver-api-key';
const $ = (id) => document.getElementById(id);

const state = {
  // name -> `GET /collections/{name}` result
  collections: new Map(),
  models: [],
  // { name, base64, url } while an image is the query
  image: null,
  generation: 0,
};

/** An API failure with a message meant for the reader. */
class ApiError extends Error {
  constructor(kind, message, status) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

/**
 * JSON with integers beyond 2^53 kept exactly, as strings: point ids made by `quiver ingest` are
 * 63-bit hashes that a plain `JSON.parse` would round. Browsers without the reviver's source text
 * fall back to the rounded number.
 */
function parseJson(text) {
  return JSON.parse(text, (_key, value, context) => {
    if (typeof value === 'number' && !Number.isSafeInteger(value)
        && context && /^-?\d+$/.test(context.source)) {
      return context.source;
    }
    return value;
  });
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** One API call; every failure becomes an ApiError whose message says what happened and what to do. */
async function api(method, path, body) {
  const key = sessionStorage.getItem(KEY_STORE);
  const headers = {};
  if (key) headers['api-key'] = key;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError('unreachable',
      `Cannot reach the Quiver server at ${location.origin}: is it still running? (${err.message})`);
  }
  const text = await response.text();
  let json = null;
  try {
    json = parseJson(text);
  } catch {
    // Not JSON (a proxy's page, say): the text itself is shown below.
  }
  if (response.ok) {
    return json && 'result' in json && 'status' in json ? json.result : json;
  }
  const said = (json && (json.status && json.status.error || json.error || json.message))
    || text.trim().slice(0, 300) || response.statusText;
  const status = response.status;
  if (status === 401) {
    throw new ApiError('auth', key
      ? 'The API key was not accepted. Enter a valid key.'
      : 'This server needs an API key.', status);
  }
  if (status === 403) throw new ApiError('forbidden', `Not allowed with this key: ${said}`, status);
  if (status === 429) {
    const retry = Number.parseInt(response.headers.get('retry-after') || '', 10);
    const when = Number.isFinite(retry) ? `Try again in ${plural(retry, 'second', 'seconds')}.`
      : 'Try again shortly.';
    throw new ApiError('busy',
      `The server is busy (its embedding queue is full). ${when} Server said: ${said}`, status);
  }
  if (status === 503) throw new ApiError('unavailable', `The server is not ready: ${said}`, status);
  if (status === 404) throw new ApiError('not-found', `Not found: ${said}`, status);
  if (status === 400 || status === 413 || status === 422) {
    throw new ApiError('invalid', `The server refused the request: ${said}`, status);
  }
  throw new ApiError('server', `The server answered ${status}: ${said}`, status);
}

// ---- messages -----------------------------------------------------------------------------------

function showMessage(text, kind = 'error') {
  const box = $('message');
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
}

function clearMessage() {
  const box = $('message');
  box.textContent = '';
  box.hidden = true;
  delete box.dataset.kind;
}

/** Shows an error; a 401 also opens the key form. */
function showError(err) {
  if (!(err instanceof ApiError)) {
    showMessage(`Unexpected error in the page: ${err && err.message ? err.message : err}`);
    return;
  }
  if (err.kind === 'auth') {
    askForKey(err.message);
    return;
  }
  showMessage(err.message);
}

/** Shows only the key form (the views need the API) with the reason, announced as an alert. */
function askForKey(why) {
  clearMessage();
  $('key-why').textContent = why;
  $('key-form').hidden = false;
  $('view-collections').hidden = true;
  $('view-search').hidden = true;
  $('key-input').value = '';
  $('key-input').focus();
}

// ---- collections --------------------------------------------------------------------------------

/** Vector name -> params, for the unnamed vector (`""`) or named vectors. */
function vectorsOf(info) {
  const vectors = info.config.params.vectors;
  return typeof vectors.size === 'number' ? { '': vectors } : vectors;
}

/** The collection's model binding (vector name -> { model, task, dims }), or null when unbound. */
function bindingOf(info) {
  const embedding = info.config.embedding;
  return embedding && Object.keys(embedding).length > 0 ? embedding : null;
}

function vectorLabel(name) {
  return name === '' ? '(unnamed)' : name;
}

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

async function loadCollections() {
  const list = await api('GET', '/collections');
  const names = list.collections.map((c) => c.name).sort();
  const infos = await Promise.all(names.map((n) => api('GET', `/collections/${encodeURIComponent(n)}`)));
  state.collections = new Map(names.map((n, i) => [n, infos[i]]));
}

async function loadModels() {
  try {
    const models = await api('GET', '/v1/models');
    state.models = models.data.map((m) => m.id);
  } catch (err) {
    if (err.kind === 'auth' || err.kind === 'unreachable') throw err;
    state.models = [];
  }
}

const COLUMNS = ['Model', 'Vectors (dims)', 'Multivector', 'Points', 'Segments', 'Deleted', 'Disk', 'Index'];

function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  // The phone layout shows each row as a card, labelled from here.
  td.dataset.label = COLUMNS[row.cells.length - 1];
  if (className) td.className = className;
  row.append(td);
  return td;
}

function renderCollections() {
  const body = $('collections-table').querySelector('tbody');
  body.replaceChildren();
  for (const [name, info] of state.collections) {
    const vectors = vectorsOf(info);
    const binding = bindingOf(info);
    const row = document.createElement('tr');
    row.dataset.collection = name;
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = name;
    row.append(th);
    if (binding) {
      cell(row, [...new Set(Object.values(binding).map((b) => b.model))].join(', '));
    } else {
      cell(row, 'none (vectors sent by clients)', 'muted');
    }
    const dims = Object.entries(vectors).map(([v, p]) => {
      const bound = binding && binding[v];
      const hnsw = bound && bound.dims && bound.dims !== p.size ? `, HNSW on ${bound.dims}` : '';
      return `${vectorLabel(v)}: ${p.size}${hnsw}`;
    });
    cell(row, dims.join('; '));
    const multi = Object.entries(vectors).filter(([, p]) => p.multivector_config).map(([v]) => vectorLabel(v));
    cell(row, multi.length ? `on (${multi.join(', ')})` : 'off');
    cell(row, info.points_count.toLocaleString('en'), 'num');
    cell(row, String(info.segments_count), 'num');
    cell(row, info.deleted_points_count.toLocaleString('en'), 'num');
    cell(row, bytes(info.disk_bytes), 'num');
    const ready = info.status === 'green' ? 'ready' : 'optimizing';
    cell(row, `${ready}; ${info.indexed_vectors_count.toLocaleString('en')} of `
      + `${info.points_count.toLocaleString('en')} points in graphs`);
    body.append(row);
  }
  $('collections-empty').hidden = state.collections.size > 0;
}

// ---- search form --------------------------------------------------------------------------------

function option(select, value, text) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  select.append(o);
}

function renderCollectionSelect() {
  const select = $('collection');
  const previous = select.value;
  select.replaceChildren();
  for (const name of state.collections.keys()) option(select, name, name);
  if (state.collections.has(previous)) select.value = previous;
  select.disabled = state.collections.size === 0;
  renderModelSelect();
  onCollectionChange();
}

function renderModelSelect() {
  const select = $('model');
  select.replaceChildren();
  for (const m of state.models) option(select, m, m);
  select.disabled = state.models.length === 0;
}

/** Sets the form up for the chosen collection: bound (server-side funnel) or explicit vectors. */
function onCollectionChange() {
  const info = state.collections.get($('collection').value);
  if (!info) {
    $('funnel-help').textContent = '';
    return;
  }
  // Sparse vectors offer a hybrid search: the query's BM25 fused with the dense search.
  const sparse = Object.keys(info.config.params.sparse_vectors || {}).sort();
  const keywords = $('keywords');
  keywords.replaceChildren();
  option(keywords, '', 'off (dense only)');
  for (const n of sparse) option(keywords, n, `${n} (hybrid, RRF)`);
  keywords.value = sparse[0] ?? '';
  $('field-keywords').hidden = sparse.length === 0;
  const binding = bindingOf(info);
  const bound = Boolean(binding);
  $('field-using').hidden = bound;
  $('field-model').hidden = bound;
  $('funnel-bound').hidden = !bound;
  $('funnel-explicit').hidden = bound;
  const task = $('task');
  if (bound) {
    const first = Object.values(binding)[0];
    if (![...task.options].some((o) => o.value === first.task)) option(task, first.task, first.task);
    task.value = first.task;
    task.disabled = true;
    const models = [...new Set(Object.values(binding).map((b) => b.model))].join(', ');
    $('funnel-help').textContent = `Bound to model ${models} (task ${first.task}): the server embeds the `
      + 'query and runs its own funnel. Leave the depths empty for its defaults.';
    return;
  }
  task.disabled = false;
  const vectors = vectorsOf(info);
  const names = Object.keys(vectors);
  const dense = names.filter((n) => !vectors[n].multivector_config).sort((a, b) => vectors[a].size - vectors[b].size);
  const multi = names.filter((n) => vectors[n].multivector_config);
  const using = $('using');
  using.replaceChildren();
  for (const n of names) {
    const p = vectors[n];
    option(using, n, `${vectorLabel(n)} (${p.size}${p.multivector_config ? ', multivector' : ''})`);
  }
  // The most precise vector answers last; smaller dense vectors feed it candidates.
  using.value = multi[0] ?? dense[dense.length - 1] ?? names[0];
  for (const id of ['stage1-using', 'stage2-using']) {
    const select = $(id);
    select.replaceChildren();
    option(select, '', 'none');
    for (const n of dense) option(select, n, `${vectorLabel(n)} (${vectors[n].size})`);
  }
  const others = dense.filter((n) => n !== using.value);
  $('stage2-using').value = others.length ? others[others.length - 1] : '';
  $('stage1-using').value = others.length > 1 ? others[0] : '';
  $('funnel-help').textContent = 'Without a model binding the page builds the funnel: the first stage '
    + 'finds candidates, the second rescores them, the search vector orders the final k. Stages set to '
    + '"none" are skipped.';
}

function positiveInt(id, label, optional) {
  const raw = $(id).value.trim();
  if (raw === '' && optional) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new ApiError('input', `${label} must be a whole number of at least 1.`);
  return n;
}

/** The Query API body for the form's current settings: the dense search, fused with the text's BM25
 * when a keyword vector is chosen (a text query only: an image has no words). */
function buildQuery(info) {
  const k = positiveInt('k', 'Results (k)');
  const text = $('query-text').value.trim();
  if (!state.image && text === '') throw new ApiError('input', 'Type a query, or drop, paste or choose an image.');
  const sparse = state.image ? '' : $('keywords').value;
  if (sparse && Object.keys(vectorsOf(info)).length === 0) {
    return { query: { text, model: 'qdrant/bm25' }, using: sparse, limit: k, with_payload: true };
  }
  const body = buildDenseQuery(info, k, text);
  if (!sparse) return body;
  // Each list goes deeper than k so that fusion can lift a hit that only one of them ranks high.
  const depth = Math.max(20, 2 * k);
  const dense = { ...body, limit: depth };
  delete dense.with_payload;
  delete dense.funnel;
  if (!dense.using) {
    const vectors = vectorsOf(info);
    const binding = bindingOf(info) || {};
    dense.using = Object.keys(binding).find((n) => vectors[n] && !vectors[n].multivector_config) ?? '';
  }
  return {
    prefetch: [dense, { query: { text, model: 'qdrant/bm25' }, using: sparse, limit: depth }],
    query: { fusion: 'rrf' }, limit: k, with_payload: true,
  };
}

function buildDenseQuery(info, k, text) {
  const content = state.image ? { image: state.image.base64 } : { text };
  if (bindingOf(info)) {
    const body = { query: content, limit: k, with_payload: true };
    const funnel = {};
    const hnsw = positiveInt('hnsw-limit', 'HNSW candidates', true);
    const rescore = positiveInt('rescore-limit', 'Rescored candidates', true);
    if (hnsw !== undefined) funnel.hnsw_limit = hnsw;
    if (rescore !== undefined) funnel.rescore_limit = rescore;
    if (Object.keys(funnel).length) body.funnel = funnel;
    return body;
  }
  if (state.models.length === 0) {
    throw new ApiError('input', 'No embedding model is loaded: start the server with --model NAME=DIR '
      + 'to search by text or image.');
  }
  const doc = { ...content, model: $('model').value, options: { task: $('task').value } };
  let prefetch;
  for (const [usingId, limitId, label] of [['stage1-using', 'stage1-limit', 'First stage candidates'],
    ['stage2-using', 'stage2-limit', 'Second stage candidates']]) {
    const using = $(usingId).value;
    if (!using) continue;
    const stage = { query: doc, using, limit: positiveInt(limitId, label) };
    if (prefetch) stage.prefetch = prefetch;
    prefetch = stage;
  }
  const body = { query: doc, using: $('using').value, limit: k, with_payload: true };
  if (prefetch) body.prefetch = prefetch;
  return body;
}

// ---- image input --------------------------------------------------------------------------------

function setImage(file) {
  if (!file) return;
  if (!file.type.startsWith('image/')) {
    showMessage(`${file.name || 'The pasted item'} is not an image (${file.type || 'unknown type'}).`);
    return;
  }
  const reader = new FileReader();
  reader.onerror = () => showMessage(`Cannot read ${file.name}: ${reader.error}`);
  reader.onload = () => {
    const url = String(reader.result);
    state.image = { name: file.name || 'pasted image', base64: url.slice(url.indexOf(',') + 1), url };
    $('image-preview-img').src = url;
    $('image-preview-img').alt = `Query image ${state.image.name}`;
    $('image-preview-name').textContent = `Searching by image: ${state.image.name}`;
    $('image-preview').hidden = false;
    $('query-text').disabled = true;
    clearMessage();
  };
  reader.readAsDataURL(file);
}

function clearImage() {
  state.image = null;
  $('query-image').value = '';
  $('image-preview').hidden = true;
  $('image-preview-img').removeAttribute('src');
  $('query-text').disabled = false;
  $('query-text').focus();
}

// ---- results ------------------------------------------------------------------------------------

/** `text` with the query's words marked (case-insensitive, whole text kept). */
function highlighted(text, query) {
  const span = document.createElement('span');
  const words = [...new Set(query.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 1))];
  if (words.length === 0) {
    span.textContent = text;
    return span;
  }
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp(`(${escaped.join('|')})`, 'giu');
  text.split(pattern).forEach((part, i) => {
    if (i % 2 === 1) {
      const mark = document.createElement('mark');
      mark.textContent = part;
      span.append(mark);
    } else if (part) {
      span.append(part);
    }
  });
  return span;
}

const IMAGE_PATH = /\.(png|jpe?g|webp|gif)$/i;

function renderResults(points, queryText) {
  const list = $('results');
  list.replaceChildren();
  points.forEach((p, i) => {
    const li = document.createElement('li');
    li.className = 'result';
    const head = document.createElement('div');
    head.className = 'result-head';
    const rank = document.createElement('span');
    rank.className = 'rank';
    rank.textContent = `#${i + 1}`;
    const score = document.createElement('span');
    score.className = 'score';
    score.textContent = `score ${Number(p.score).toFixed(4)}`;
    const id = document.createElement('span');
    id.className = 'id';
    id.textContent = String(p.id);
    const idLabel = document.createElement('span');
    idLabel.className = 'muted';
    idLabel.textContent = 'id ';
    head.append(rank, score, idLabel, id);
    li.append(head);
    const payload = p.payload || {};
    // A chunk names its document: the file ingest read, or the id the documents route was given.
    const source = typeof payload.path === 'string' ? payload.path
      : (payload.doc_id !== undefined && payload.doc_id !== null ? String(payload.doc_id) : null);
    if (typeof payload.text === 'string' && source !== null) {
      const from = document.createElement('p');
      from.className = 'source';
      from.textContent = Number.isInteger(payload.chunk) ? `${source}, chunk ${payload.chunk}` : source;
      li.append(from);
    }
    if (typeof payload.text === 'string') {
      const body = document.createElement('p');
      body.className = 'text';
      const whole = payload.text.trim();
      const text = whole.length > 600 ? `${whole.slice(0, 600)}…` : whole;
      body.append(highlighted(text, queryText));
      li.append(body);
    } else if (typeof payload.path === 'string' && IMAGE_PATH.test(payload.path)) {
      // Ingest stores an image's path, not its pixels: the page names the file, and shows it when the
      // server serves files under --image-dir.
      const body = document.createElement('p');
      body.className = 'image-path';
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.textContent = 'image';
      body.append(badge, ` ${payload.path}`);
      li.append(body);
      showThumbnail(body, payload.path);
    }
    if (Object.keys(payload).length) {
      const details = document.createElement('details');
      const summary = document.createElement('summary');
      summary.textContent = 'Payload';
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify(payload, null, 2);
      details.append(summary, pre);
      li.append(details);
    }
    list.append(li);
  });
}

/** Puts an image hit's file after `after` when the server serves it (`GET /image-files`, only with
 * --image-dir); otherwise, or on any error, the path alone stays. */
async function showThumbnail(after, path) {
  const key = sessionStorage.getItem(KEY_STORE);
  try {
    const response = await fetch(`/image-files?path=${encodeURIComponent(path)}`, {
      headers: key ? { 'api-key': key } : {},
    });
    if (!response.ok) return;
    const img = document.createElement('img');
    img.className = 'thumbnail';
    img.alt = `image ${path}`;
    img.src = URL.createObjectURL(await response.blob());
    after.after(img);
  } catch {
    // The server went away mid-render: the path is already shown.
  }
}

const STAGE_KINDS = {
  hnsw: 'HNSW', exact: 'exact scan', rescore: 'rescore', maxsim: 'MaxSim', token_store: 'token store',
  inverted_index: 'sparse (inverted index)', fusion: 'fusion',
};

/** Names a stage by what it did: the server says so (`kind`); older servers are inferred from the
 * vector: a multivector stage is MaxSim, one over candidates a rescore. */
function stageName(stage, info) {
  if (STAGE_KINDS[stage.kind]) return STAGE_KINDS[stage.kind];
  const params = vectorsOf(info)[stage.using];
  if (params && params.multivector_config) return 'MaxSim';
  return stage.candidates == null ? 'HNSW' : 'rescore';
}

/** ", 16 d" when a stage compared a Matryoshka prefix shorter than the vector. */
function prefixNote(stage, info) {
  const params = vectorsOf(info)[stage.using];
  return params && stage.dims && stage.dims < params.size ? `, ${stage.dims} d` : '';
}

function renderTimings(timings, info) {
  const box = $('timings');
  box.replaceChildren();
  if (!timings) {
    box.hidden = true;
    return;
  }
  const h = document.createElement('h3');
  h.textContent = 'Timings';
  const dl = document.createElement('dl');
  const add = (term, value, title) => {
    const dt = document.createElement('dt');
    dt.textContent = term;
    if (title) dt.title = title;
    const dd = document.createElement('dd');
    dd.textContent = value;
    dl.append(dt, dd);
  };
  const ms = (v) => `${v < 1 ? v.toFixed(2) : v.toFixed(1)} ms`;
  add('embedding', ms(timings.embed_ms));
  for (const s of timings.stages) {
    const name = stageName(s, info);
    const over = s.candidates == null ? '' : ` of ${s.candidates}`;
    // A fusion compares no vector: it merges its prefetches' lists.
    const label = s.kind === 'fusion' ? name : `${name} (${vectorLabel(s.using)}${prefixNote(s, info)})`;
    add(label, `${ms(s.ms)}, top ${s.limit}${over}`,
      name === 'HNSW' ? 'index search: HNSW graphs, or an exact scan of small segments' : undefined);
  }
  add('total', ms(timings.total_ms));
  box.append(h, dl);
  box.hidden = false;
}

function finishSearch() {
  state.generation += 1;
  $('results').dataset.generation = String(state.generation);
  $('search-button').disabled = false;
}

async function search(event) {
  event.preventDefault();
  clearMessage();
  const name = $('collection').value;
  if (!name) {
    showMessage('There is no collection to search yet: create one, then load data with quiver ingest.');
    finishSearch();
    return;
  }
  $('search-button').disabled = true;
  $('search-status').textContent = 'Searching…';
  $('results').replaceChildren();
  renderTimings(null);
  try {
    // Fresh counters: an empty collection gets a message rather than a silent empty list.
    const info = await api('GET', `/collections/${encodeURIComponent(name)}`);
    state.collections.set(name, info);
    if (info.points_count === 0) {
      $('search-status').textContent = '';
      showMessage(`Collection "${name}" is empty: there is nothing to search yet. Add points, for example `
        + `with: quiver ingest --collection ${name} FILES…`, 'info');
      return;
    }
    const body = buildQuery(info);
    const perDocument = $('per-document').checked;
    let route = 'query';
    if (perDocument) {
      // Chunks of one document share its doc_id: one group per document, its best chunk only.
      Object.assign(body, { group_by: 'doc_id', group_size: 1 });
      route = 'query/groups';
    }
    const started = performance.now();
    const answer = await api('POST', `/collections/${encodeURIComponent(name)}/points/${route}?timings=true`, body);
    const ms = performance.now() - started;
    const points = perDocument ? answer.groups.map((g) => g.hits[0]) : answer.points;
    renderResults(points, state.image ? '' : $('query-text').value);
    renderTimings(answer.timings, info);
    const unit = perDocument ? ['document', 'documents'] : ['result', 'results'];
    $('search-status').textContent = points.length
      ? `${plural(points.length, ...unit)} in ${ms.toFixed(0)} ms`
      : perDocument
        ? 'No results: no stored point with a doc_id matched this query (chunks from quiver ingest or '
          + 'the documents route carry one).'
        : 'No results: no stored point matched this query (check the search vector and filters).';
  } catch (err) {
    $('search-status').textContent = '';
    showError(err);
  } finally {
    finishSearch();
  }
}

// ---- views and start-up -------------------------------------------------------------------------

function showView() {
  if (!$('key-form').hidden) return;
  const view = location.hash === '#collections' ? 'collections' : 'search';
  $('view-collections').hidden = view !== 'collections';
  $('view-search').hidden = view !== 'search';
  for (const v of ['collections', 'search']) {
    const link = $(`nav-${v}`);
    if (v === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

async function load() {
  $('forget-key').hidden = !sessionStorage.getItem(KEY_STORE);
  try {
    await loadCollections();
    await loadModels();
  } catch (err) {
    showError(err);
    return;
  }
  $('key-form').hidden = true;
  clearMessage();
  showView();
  renderCollections();
  renderCollectionSelect();
  document.body.dataset.loaded = 'true';
}

function start() {
  $('key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('key-input').value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORE, key);
    load();
  });
  $('forget-key').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_STORE);
    location.reload();
  });
  $('refresh-collections').addEventListener('click', () => load());
  $('collection').addEventListener('change', onCollectionChange);
  $('search-form').addEventListener('submit', search);
  $('query-image').addEventListener('change', (e) => setImage(e.target.files[0]));
  $('clear-image').addEventListener('click', clearImage);
  // Dropping anywhere on the page is a query image, never a navigation away from it.
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    $('drop-zone').classList.add('over');
  });
  document.addEventListener('dragleave', () => $('drop-zone').classList.remove('over'));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    $('drop-zone').classList.remove('over');
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) setImage(file);
  });
  document.addEventListener('paste', (e) => {
    const items = e.clipboardData ? [...e.clipboardData.items] : [];
    const image = items.find((i) => i.kind === 'file' && i.type.startsWith('image/'));
    if (image) {
      e.preventDefault();
      setImage(image.getAsFile());
    }
  });
  window.addEventListener('hashchange', showView);
  showView();
  load();
}

start();
